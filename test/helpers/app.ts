import type { NestExpressApplication } from '@nestjs/platform-express';
import type { AddressInfo } from 'node:net';
import { createGatehouse } from '../../src/app.js';
import type { AppModuleOptions } from '../../src/app.module.js';
import { Engine } from '../../src/core/engine/engine.js';

export const ADMIN_TOKEN = 'test-admin-token-0123456789';
export const JWT_SECRET = 'test-jwt-secret-0123456789abcdef';

/** Defaults that keep tests fast and quiet; each test overrides what it exercises. */
export const TEST_ENV: Record<string, string> = {
  PORT: '0',
  HOST: '127.0.0.1',
  LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
  ADMIN_TOKEN,
  JAC_JWT_SECRET: JWT_SECRET,
  SHUTDOWN_GRACE_MS: '2000',
  // Every test client comes from 127.0.0.1 and many fail authentication on purpose;
  // the throttle has its own tests, which turn it on.
  AUTH_FAILURE_LIMIT: '0',
};

export interface TestApp {
  app: NestExpressApplication;
  port: number;
  /** `http://127.0.0.1:<port>` */
  http: string;
  /** `ws://127.0.0.1:<port>` + path */
  ws(path: string): string;
  /** Nest's shutdown sequence, as on SIGTERM (1001 to every client first). */
  close(): Promise<void>;
}

/** Anything with an HTTP base and a WebSocket URL builder: a `TestApp`, or a `GatewayProcess`. */
export type Gateway = Pick<TestApp, 'http' | 'ws'>;

/** Starts the real application on an ephemeral port. */
export async function startApp(
  env: Record<string, string | undefined> = {},
  options: Omit<AppModuleOptions, 'env'> = {},
): Promise<TestApp> {
  const app = await createGatehouse({ ...options, env: { ...TEST_ENV, ...env } });
  await app.listen(0, '127.0.0.1');
  const port = (app.getHttpServer().address() as AddressInfo).port;
  let closed: Promise<void> | null = null;
  return {
    app,
    port,
    http: `http://127.0.0.1:${port}`,
    ws: (path) => `ws://127.0.0.1:${port}${path}`,
    close: () => (closed ??= app.close()),
  };
}

export const adminAuth = { Authorization: `Bearer ${ADMIN_TOKEN}` };

/** The instance id an app's bus publishes under (what the cluster view lists as `instance`). */
export function instanceId(app: TestApp): string {
  return app.app.get(Engine).bus.instanceId;
}
