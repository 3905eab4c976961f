import { createGatehouse, describeListeners, listen } from './app.js';
import { ConfigValidationError } from './config/env.schema.js';
import { Engine } from './core/engine/engine.js';
import { GatehouseLogger } from './core/logging/gatehouse-logger.js';
import { VERSION } from './core/version.js';
import { GatewayCatalog } from './core/ws/gateway-catalog.js';

/** sysexits.h: the configuration is wrong, so restarting as it is will not help. */
const EX_CONFIG = 78;

/** Failures to listen that are the environment's, not a bug: said in one line, no stack. */
const LISTEN_ERRORS = new Set(['EADDRINUSE', 'EACCES', 'EADDRNOTAVAIL']);

try {
  const app = await createGatehouse();
  const log = app.get(GatehouseLogger).pino;
  // SIGTERM and SIGINT (a supervisor, a container runtime, Ctrl-C) run Nest's shutdown: new
  // upgrades are refused, every client is sent 1001 and given SHUTDOWN_GRACE_MS, then the
  // process exits 0. A signal while stopping (Ctrl-C reaches both npm and node) changes nothing.
  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    const started = performance.now();
    app.close().then(
      () => {
        const report = app.get(GatewayCatalog).shutdownReport;
        log.info(
          {
            signal,
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
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  await listen(app);
  const engine = app.get(Engine);
  log.info(
    {
      version: VERSION,
      engine: engine.kind,
      instance: engine.instanceId,
      listeners: await describeListeners(app),
    },
    'gatehouse started',
  );
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
