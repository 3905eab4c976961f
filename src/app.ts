import 'reflect-metadata';
import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import type { NextFunction, Request, Response } from 'express';
import { AppModule, type AppModuleOptions } from './app.module.js';
import { AppConfig } from './config/app-config.js';
import { HttpExceptionFilter } from './core/http/http-exception.filter.js';
import { createValidationPipe } from './core/http/validation.js';
import { GatehouseLogger } from './core/logging/gatehouse-logger.js';
import { ProtocolWsAdapter } from './core/ws/protocol-ws.adapter.js';

/** Admin bodies are capped at 1 MiB (SPEC section 3); larger ones get 413. */
const BODY_LIMIT = '1mb';

/**
 * Builds the application (not yet listening): logger, the protocol-aware ws
 * adapter, validation and error mapping. `main.ts` and the tests both start here.
 */
export async function createGatehouse(options: AppModuleOptions = {}): Promise<NestExpressApplication> {
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(options), {
    bufferLogs: true,
    bodyParser: false,
    // Not `forceCloseConnections`: it tracks every TCP connection with a listener of its
    // own, WebSockets included. ProtocolWsAdapter ends the HTTP connections at shutdown.
  });
  app.useLogger(app.get(GatehouseLogger));
  app.useBodyParser('json', { limit: BODY_LIMIT });
  // Body-parser failures (413, malformed JSON) happen before routing, where Nest's
  // filters do not reach; this keeps them JSON and free of stack traces.
  const filter = new HttpExceptionFilter();
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

/** Listens on `HOST:PORT` from the configuration. */
export async function listen(app: INestApplication): Promise<void> {
  const config = app.get(AppConfig);
  await app.listen(config.PORT, config.HOST);
}
