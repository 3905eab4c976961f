import { Controller, Get, UseGuards } from '@nestjs/common';
import { AdminGuard } from '../core/auth/admin.guard.js';
import { OpenApiRegistry } from '../core/http/openapi.js';

@Controller('admin')
@UseGuards(AdminGuard)
export class OpenApiController {
  constructor(private readonly openApi: OpenApiRegistry) {}

  @Get('openapi.json')
  document(): Record<string, unknown> {
    return this.openApi.document();
  }
}
