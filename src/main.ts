import type { NestExpressApplication } from '@nestjs/platform-express';
import { setTimeout as delay } from 'node:timers/promises';

// SIGTERM and SIGINT (a supervisor, a container runtime, Ctrl-C) are handled from the first
// statement, before the application's modules are even loaded: without a handler a signal
// during start-up would kill the process half-way, and as PID 1 in a container (where the
// kernel gives signals no default action) it would be ignored altogether (docs/deploy.md).
// Nest's shutdown refuses new upgrades, sends every client 1001 and gives them
// SHUTDOWN_GRACE_MS, then the process exits 0. A signal while stopping (Ctrl-C reaches both
// npm and node) changes nothing.
let requested: NodeJS.Signals | null = null;
let app: NestExpressApplication | null = null;
let serving = false;
const stop = (signal: NodeJS.Signals): void => {
  if (requested !== null) return;
  requested = signal;
  // Before the application exists it is built first (nothing waits on the network there).
  if (app) shutdown(app, signal, !serving);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

const [{ createGatehouse, describeListeners, listen }, { AppConfig }, { ConfigValidationError }, core] =
  await Promise.all([
    import('./app.js'),
    import('./config/app-config.js'),
    import('./config/env.schema.js'),
    Promise.all([
      import('./core/engine/engine.js'),
      import('./core/logging/gatehouse-logger.js'),
      import('./core/tls/tls-context.js'),
      import('./core/version.js'),
      import('./core/ws/gateway-catalog.js'),
    ]),
  ]);
const [{ Engine }, { GatehouseLogger }, { TlsContext }, { VERSION }, { GatewayCatalog }] = core;

/** sysexits.h: the configuration is wrong, so restarting as it is will not help. */
const EX_CONFIG = 78;

/** Failures to listen that are the environment's, not a bug: said in one line, no stack. */
const LISTEN_ERRORS = new Set(['EADDRINUSE', 'EACCES', 'EADDRNOTAVAIL']);

/**
 * Past the clients' grace, what the teardown may still take (the last registry writes, saying
 * goodbye to Redis) before the process exits anyway: a hung Redis must not hold it.
 */
const TEARDOWN_MARGIN_MS = 2500;

/**
 * Stops the application and exits 0. During start-up (a Redis that does not answer can hold
 * it up for as long as it is away) nothing serves yet: the teardown gets SHUTDOWN_GRACE_MS,
 * then the process exits all the same. Once serving, the clients get SHUTDOWN_GRACE_MS and
 * the rest of the teardown TEARDOWN_MARGIN_MS, whatever Redis does.
 */
function shutdown(gatehouse: NestExpressApplication, signal: NodeJS.Signals, duringStartUp: boolean): void {
  const log = gatehouse.get(GatehouseLogger).pino;
  const started = performance.now();
  const closed = gatehouse.close().then(() => 'closed' as const);
  const grace = gatehouse.get(AppConfig).SHUTDOWN_GRACE_MS;
  const bounded = Promise.race([
    closed,
    delay(duringStartUp ? grace : grace + TEARDOWN_MARGIN_MS).then(() => 'timed out' as const),
  ]);
  bounded.then(
    (outcome) => {
      const report = gatehouse.get(GatewayCatalog).shutdownReport;
      log.info(
        {
          signal,
          ...(duringStartUp ? { duringStartUp } : {}),
          ...(duringStartUp || outcome !== 'closed' ? { teardown: outcome } : {}),
          clients: report?.clients ?? 0,
          unclosed: report?.unclosed ?? 0,
          ms: Math.round(performance.now() - started),
        },
        'gatehouse stopped',
      );
      process.exit(0);
    },
    (err: unknown) => {
      log.error({ err, signal }, 'shutdown failed');
      process.exit(1);
    },
  );
}

try {
  app = await createGatehouse();
  const log = app.get(GatehouseLogger).pino;
  const tls = TlsContext.of(app.getHttpServer());
  // The certificate and key are re-read on SIGHUP (and when their files change).
  if (tls) process.on('SIGHUP', () => tls.reload('SIGHUP'));
  if (requested !== null) {
    shutdown(app, requested, true);
  } else {
    try {
      await listen(app);
    } catch (err) {
      // A start-up that a signal interrupted may fail as the teardown takes the engine away.
      if (requested === null) throw err;
    }
  }
  if (requested === null) {
    serving = true;
    const engine = app.get(Engine);
    log.info(
      {
        version: VERSION,
        engine: engine.kind,
        instance: engine.instanceId,
        listeners: await describeListeners(app),
        tls: tls ? tls.leaf : null,
      },
      'gatehouse started',
    );
  }
} catch (err) {
  if (err instanceof ConfigValidationError) {
    process.stderr.write(
      `gatehouse: invalid configuration, nothing was started:\n  ${err.problems.join('\n  ')}\n` +
        'Every variable, its default and its meaning are listed in .env.example.\n',
    );
    process.exit(EX_CONFIG);
  }
  const code = (err as NodeJS.ErrnoException | null)?.code;
  if (code !== undefined && LISTEN_ERRORS.has(code)) {
    process.stderr.write(`gatehouse: cannot listen: ${(err as Error).message}\n`);
    process.exit(1);
  }
  throw err;
}
