import { Get } from '@nestjs/common';
import { ApiOkResponse, ApiOperation } from '@nestjs/swagger';
import type { OpenAPIObject } from '@nestjs/swagger';
import { AdminController } from '../core/auth/admin-controller.decorator.js';
import { OpenApiDocument } from '../core/http/openapi.js';

@AdminController('admin')
export class OpenApiController {
  constructor(private readonly openApi: OpenApiDocument) {}

  @Get('openapi.json')
  @ApiOperation({ summary: 'This document (the explorer at /admin/docs reads it)' })
  @ApiOkResponse({ description: 'OpenAPI 3.1', schema: { type: 'object' } })
  document(): OpenAPIObject {
    return this.openApi.document();
  }
}
