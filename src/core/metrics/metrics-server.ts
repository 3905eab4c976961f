import { Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { Server } from 'node:http';
import { AppConfig } from '../../config/app-config.js';
import { GatehouseLogger } from '../logging/gatehouse-logger.js';
import { createListener } from '../tls/tls-context.js';
import { GatewayCatalog } from '../ws/gateway-catalog.js';
import { Metrics } from './metrics.js';
import { scrapeAllowed } from './metrics-auth.js';

/**
 * `/metrics` on a port of its own (`METRICS_PORT`), so the scrape endpoint can stay off the
 * public listener. Nothing else is served there. With `TLS_CERT_FILE` it is HTTPS, as every
 * listener, with the same certificate.
 */
@Injectable()
export class MetricsServer implements OnApplicationBootstrap, OnApplicationShutdown {
  private server: Server | null = null;

  constructor(
    private readonly config: AppConfig,
    private readonly metrics: Metrics,
    private readonly catalog: GatewayCatalog,
    private readonly logger: GatehouseLogger,
    private readonly adapterHost: HttpAdapterHost,
  ) {}

  /** The listening server, once bound; null without `METRICS_PORT`. */
  get listener(): Server | null {
    return this.server;
  }

  onApplicationBootstrap(): void {
    const port = this.config.METRICS_PORT;
    if (port === undefined || !this.metrics.enabled) return;
    // HTTPS with the main port's certificate when it has one: the scrape may carry METRICS_TOKEN.
    const main: unknown = this.adapterHost.httpAdapter?.getHttpServer();
    const server = createListener(main as object | undefined, (req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET' || path !== '/metrics') {
        res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('Not Found');
        return;
      }
      if (!scrapeAllowed(req, this.config.METRICS_TOKEN)) {
        res.writeHead(401, { 'Content-Type': 'text/plain; charset=utf-8', 'WWW-Authenticate': 'Bearer' });
        res.end('Unauthorized');
        return;
      }
      this.metrics.text().then(
        (text) => res.writeHead(200, { 'Content-Type': this.metrics.contentType }).end(text),
        (err: unknown) => {
          this.logger.pino.error({ context: 'Metrics', err }, 'metrics collection failed');
          res.writeHead(500).end();
        },
      );
    });
    server.on('error', (err) => {
      const problem = `metrics port ${port} failed: ${err.message}`;
      this.logger.pino.error({ context: 'Metrics' }, problem);
      this.catalog.fail(problem);
    });
    server.listen(port, this.config.HOST);
    this.server = server;
  }

  async onApplicationShutdown(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = null;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }
}
