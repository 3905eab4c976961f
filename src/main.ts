import { createGatehouse, listen } from './app.js';
import { ConfigValidationError } from './config/env.schema.js';
import { GatehouseLogger } from './core/logging/gatehouse-logger.js';

try {
  const app = await createGatehouse();
  // SIGTERM/SIGINT run Nest's shutdown sequence; GatewayCatalog sends every client 1001
  // and waits up to SHUTDOWN_GRACE_MS before Nest tears the sockets down.
  app.enableShutdownHooks(['SIGTERM', 'SIGINT'], { useProcessExit: true });
  await listen(app);
  const address = app.getHttpServer().address();
  app.get(GatehouseLogger).pino.info({ address }, 'gatehouse listening');
} catch (err) {
  if (err instanceof ConfigValidationError) {
    process.stderr.write(`${err.message}\n`);
    process.exit(78);
  }
  throw err;
}
