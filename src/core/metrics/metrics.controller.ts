import { Controller, Get, Req, Res, UnauthorizedException } from '@nestjs/common';
import type { Request, Response } from 'express';
import { AppConfig } from '../../config/app-config.js';
import { Metrics } from './metrics.js';
import { scrapeAllowed } from './metrics-auth.js';
import { ApiOkResponse, ApiOperation, ApiSecurity, ApiUnauthorizedResponse } from '@nestjs/swagger';
import { HttpErrorBody } from '../http/http-errors.js';
import { METRICS_SCHEME } from '../http/openapi.js';

/** `GET /metrics` on the main port: the Prometheus text format, behind `METRICS_TOKEN` when it is set. */
@Controller('metrics')
export class MetricsController {
  constructor(
    private readonly metrics: Metrics,
    private readonly config: AppConfig,
  ) {}

  @Get()
  @ApiOperation({
    summary: 'Prometheus metrics (text format 0.0.4); on METRICS_PORT instead when it is set',
    description:
      'Bearer METRICS_TOKEN when it is set, else open. Absent with METRICS_ENABLED=false. ' +
      'The families are listed in docs/operations.md.',
  })
  @ApiSecurity({})
  @ApiSecurity(METRICS_SCHEME)
  @ApiOkResponse({ description: 'The exposition', content: { 'text/plain': { schema: { type: 'string' } } } })
  @ApiUnauthorizedResponse({
    description: 'METRICS_TOKEN is set and the request does not carry it',
    type: HttpErrorBody,
  })
  async scrape(@Req() req: Request, @Res() res: Response): Promise<void> {
    if (!scrapeAllowed(req, this.config.METRICS_TOKEN)) {
      res.setHeader('WWW-Authenticate', 'Bearer');
      throw new UnauthorizedException({
        statusCode: 401,
        error: 'Unauthorized',
        message: 'A valid metrics bearer token is required',
      });
    }
    const text = await this.metrics.text();
    res.status(200).type(this.metrics.contentType).send(text);
  }
}
