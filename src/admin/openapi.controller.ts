import { Get } from '@nestjs/common';
import { AdminController } from '../core/auth/admin-controller.decorator.js';
import { OpenApiRegistry } from '../core/http/openapi.js';

@AdminController('admin')
export class OpenApiController {
  constructor(private readonly openApi: OpenApiRegistry) {}

  @Get('openapi.json')
  document(): Record<string, unknown> {
    return this.openApi.document();
  }
}
