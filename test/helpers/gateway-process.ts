import { spawn, type ChildProcess } from 'node:child_process';
import { ADMIN_TOKEN, JWT_SECRET, type Gateway } from './app.js';
import { call } from './http.js';
import { freePort } from './ports.js';
import { waitFor } from './wait.js';

export interface GatewayProcess extends Gateway {
  child: ChildProcess;
  port: number;
  /** Everything the process wrote to stdout and stderr (its JSON log lines). */
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Starts the compiled gateway (`<build>/src/main.js`, as the test runner compiled it) as a
 * real process on a port of its own, and resolves once it answers `/health/live`.
 */
export async function spawnGateway(env: Record<string, string>): Promise<GatewayProcess> {
  const port = await freePort();
  const main = new URL('../../src/main.js', import.meta.url);
  const child = spawn(process.execPath, [main.pathname], {
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      ADMIN_TOKEN,
      JAC_JWT_SECRET: JWT_SECRET,
      LOG_LEVEL: 'warn',
      AUTH_FAILURE_LIMIT: '0',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const gw = { http: `http://127.0.0.1:${port}`, ws: (path: string) => `ws://127.0.0.1:${port}${path}` };
  try {
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`the gateway exited (${child.exitCode}) at start-up: ${output}`);
        return (await call(gw, 'GET', '/health/live', { timeoutMs: 1000 })).status === 200;
      },
      { timeoutMs: 20_000, intervalMs: 50, what: 'the gateway process to answer /health/live' },
    );
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  return { ...gw, child, port, output: () => output, exited };
}
