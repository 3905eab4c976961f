import 'reflect-metadata';
import { UnsupportedMediaTypeException, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import type { NextFunction, Request, Response } from 'express';
import type { Server as HttpsServer } from 'node:https';
import type { Server } from 'node:net';
import { AppModule, type AppModuleOptions } from './app.module.js';
import { AppConfig } from './config/app-config.js';
import { validateEnv } from './config/env.schema.js';
import { readEnvironment } from './config/read-env.js';
import { HttpExceptionFilter } from './core/http/http-exception.filter.js';
import { ProxyTrust } from './core/http/proxy-trust.js';
import { createValidationPipe } from './core/http/validation.js';
import { GatehouseLogger } from './core/logging/gatehouse-logger.js';
import { httpLog } from './core/logging/http-log.js';
import { MetricsServer } from './core/metrics/metrics-server.js';
import { Metrics } from './core/metrics/metrics.js';
import { TlsContext } from './core/tls/tls-context.js';
import { readTlsPair } from './core/tls/tls-files.js';
import { GatewayCatalog } from './core/ws/gateway-catalog.js';
import { ProtocolWsAdapter } from './core/ws/protocol-ws.adapter.js';

/** Admin bodies are capped at 1 MiB; larger ones get 413. */
const BODY_LIMIT = '1mb';

/**
 * Builds the application (not yet listening): logger, the protocol-aware ws
 * adapter, validation and error mapping. `main.ts` and the tests both start here.
 * The configuration (`options.env`, else the environment over `.env`) is validated
 * first: a bad one rejects with a `ConfigValidationError` before anything starts.
 */
export async function createGatehouse(options: AppModuleOptions = {}): Promise<NestExpressApplication> {
  const config = validateEnv(options.env ?? readEnvironment());
  // Read before anything starts: a bad certificate or key is a configuration error (exit 78).
  const files =
    config.TLS_CERT_FILE !== undefined && config.TLS_KEY_FILE !== undefined
      ? { certFile: config.TLS_CERT_FILE, keyFile: config.TLS_KEY_FILE }
      : null;
  const pair = files && readTlsPair(files);
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(config, options.protocols), {
    bufferLogs: true,
    bodyParser: false,
    ...(pair ? { httpsOptions: { cert: pair.cert, key: pair.key } } : {}),
    // Not `forceCloseConnections`: it tracks every TCP connection with a listener of its
    // own, WebSockets included. ProtocolWsAdapter ends the HTTP connections at shutdown.
  });
  const logger = app.get(GatehouseLogger);
  app.useLogger(logger);
  if (files && pair) {
    // Filed under the main listener before the adapter and the metrics server open theirs.
    const tls = new TlsContext(files, pair, logger.child({ context: 'Tls' }));
    tls.adopt(app.getHttpServer() as HttpsServer);
    tls.watch();
  }
  const trust = app.get(ProxyTrust);
  // Express' own reading of forwarded headers (req.ip, req.protocol) follows the same list.
  app.set('trust proxy', (address: string) => trust.isTrusted(address));
  app.use(...httpLog(logger.pino, trust, app.get(Metrics)));
  app.use(requireJsonBody);
  app.useBodyParser('json', { limit: BODY_LIMIT });
  // Body-parser failures (413, malformed JSON) happen before routing, where Nest's
  // filters do not reach; this keeps them JSON and free of stack traces.
  const filter = new HttpExceptionFilter(logger.child({ context: 'Http' }));
  app.use((err: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) {
      next(err);
      return;
    }
    filter.respond(err, res);
  });
  app.useGlobalPipes(createValidationPipe());
  app.useGlobalFilters(filter);
  app.useWebSocketAdapter(new ProtocolWsAdapter(app));
  app.disable('x-powered-by');
  return app;
}

/** Methods whose bodies are read; a GET's body is ignored, so its type does not matter. */
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** What the JSON body parser reads: `application/json`, with any parameters (`; charset=utf-8`). */
const JSON_TYPE = /^application\/json\s*(?:;|$)/i;

/**
 * Every route that reads a body reads JSON. A body of another type (a form from `curl -d`
 * without a header, text/plain, or no type at all) would otherwise reach the route unparsed
 * and be refused as a body that is not an object: `415` says what is actually wrong.
 */
function requireJsonBody(req: Request, _res: Response, next: NextFunction): void {
  const length = req.headers['content-length'];
  const hasBody = req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
  if (!BODY_METHODS.has(req.method) || !hasBody || JSON_TYPE.test(req.headers['content-type'] ?? '')) {
    next();
    return;
  }
  next(
    new UnsupportedMediaTypeException({
      statusCode: 415,
      error: 'Unsupported Media Type',
      message: 'The body must be JSON, sent with Content-Type: application/json',
    }),
  );
}

/** Listens on `HOST:PORT` from the configuration. */
export async function listen(app: INestApplication): Promise<void> {
  const config = app.get(AppConfig);
  await app.listen(config.PORT, config.HOST);
}

/** One listening port and what it serves, for the start-up line. */
export interface ListenerSummary {
  /** `host:port`, or null for a port that could not bind (`/health/ready` reports it). */
  address: string | null;
  serves: string[];
}

/**
 * Every port the application listens on and what each serves: the main port's HTTP routes
 * and WebSocket paths, each protocol's dedicated port (any path), the metrics port.
 */
export async function describeListeners(app: INestApplication): Promise<ListenerSummary[]> {
  const catalog = app.get(GatewayCatalog);
  const [http, ws] = TlsContext.of(app.getHttpServer() as Server) ? ['https', 'wss'] : ['http', 'ws'];
  const main: ListenerSummary = {
    address: addressOf(app.getHttpServer() as Server),
    serves: [
      `${http} ${httpPrefixes(app).join(', ')}`,
      ...catalog.all().flatMap((protocol) => protocol.paths.map((path) => `${ws} ${path} (${protocol.name})`)),
    ],
  };
  const dedicated = await Promise.all(
    catalog.dedicatedListeners.map(async ({ protocol, server }) => ({
      address: await bound(server),
      serves: [`${ws} any path (${protocol})`],
    })),
  );
  const metricsServer = app.get(MetricsServer).listener;
  const metrics = metricsServer ? [{ address: await bound(metricsServer), serves: [`${http} /metrics`] }] : [];
  return [main, ...dedicated, ...metrics];
}

/** The first segment of every HTTP route, as Express has them (`/admin`, `/health`, `/available`...). */
function httpPrefixes(app: INestApplication): string[] {
  const express = app.getHttpAdapter().getInstance() as { router?: { stack?: { route?: { path?: unknown } }[] } };
  const prefixes = new Set<string>();
  for (const layer of express.router?.stack ?? []) {
    const path = layer.route?.path;
    if (typeof path === 'string') prefixes.add(`/${path.split('/')[1] ?? ''}`);
  }
  return [...prefixes];
}

/** The server's address once it is listening, or null if it fails to. */
async function bound(server: Server): Promise<string | null> {
  if (!server.listening) {
    await new Promise<void>((resolve) => {
      server.once('listening', () => resolve());
      server.once('error', () => resolve());
    });
  }
  return addressOf(server);
}

function addressOf(server: Server): string | null {
  const address = server.address();
  if (address === null || typeof address === 'string') return address;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `${host}:${address.port}`;
}
