import { Controller, Get, Req, Res, UnauthorizedException } from '@nestjs/common';
import type { Request, Response } from 'express';
import { AppConfig } from '../../config/app-config.js';
import { Metrics } from './metrics.js';
import { scrapeAllowed } from './metrics-auth.js';

/** `GET /metrics` on the main port: the Prometheus text format, behind `METRICS_TOKEN` when it is set. */
@Controller('metrics')
export class MetricsController {
  constructor(
    private readonly metrics: Metrics,
    private readonly config: AppConfig,
  ) {}

  @Get()
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
