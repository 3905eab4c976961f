import { Controller, Get, HttpCode, ServiceUnavailableException } from '@nestjs/common';
import { Engine } from '../core/engine/engine.js';
import { GatewayCatalog } from '../core/ws/gateway-catalog.js';
import { ApiOkResponse, ApiOperation, ApiServiceUnavailableResponse } from '@nestjs/swagger';
import { HttpErrorBody } from '../core/http/http-errors.js';

@Controller('health')
export class HealthController {
  constructor(
    private readonly engine: Engine,
    private readonly catalog: GatewayCatalog,
  ) {}

  /** 200 while the process runs. */
  @Get('live')
  @ApiOperation({ summary: 'Liveness' })
  @ApiOkResponse({ description: 'Running', schema: { type: 'object', properties: { status: { enum: ['ok'] } } } })
  @HttpCode(200)
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }

  /** 200 only when the engine answers and the process is not shutting down. */
  @Get('ready')
  @ApiOperation({ summary: 'Readiness: the engine answers and the process is not shutting down' })
  @ApiOkResponse({
    description: 'Ready',
    schema: { type: 'object', properties: { status: { enum: ['ready'] }, engine: { type: 'string' } } },
  })
  @ApiServiceUnavailableResponse({ description: 'Not ready', type: HttpErrorBody })
  async ready(): Promise<{ status: 'ready'; engine: string }> {
    if (this.catalog.problems.length > 0) {
      throw new ServiceUnavailableException({
        statusCode: 503,
        error: 'Service Unavailable',
        message: this.catalog.problems.join('; '),
      });
    }
    if (this.catalog.shuttingDown) {
      throw new ServiceUnavailableException({
        statusCode: 503,
        error: 'Service Unavailable',
        message: 'shutting down',
      });
    }
    if (!(await this.engine.isReady())) {
      throw new ServiceUnavailableException({
        statusCode: 503,
        error: 'Service Unavailable',
        message: 'redis is not answering',
      });
    }
    return { status: 'ready', engine: this.engine.kind };
  }
}
