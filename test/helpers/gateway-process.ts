import { spawn, type ChildProcess } from 'node:child_process';
import { ADMIN_TOKEN, JWT_SECRET, type Gateway } from './app.js';
import { call } from './http.js';
import { freePort } from './ports.js';
import { waitFor } from './wait.js';

/** A child process whose output the test reads as it comes. */
export interface RunningProcess {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Everything it wrote to stdout and stderr, in the order it came. */
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Spawns `command` with `env` (nothing else is inherited unless given), in `cwd`, keeping its output. */
export function runProcess(
  command: string,
  args: string[],
  { env, cwd }: { env: NodeJS.ProcessEnv; cwd?: string },
): RunningProcess {
  const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    output += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    output += chunk.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  return { child, stdout: () => stdout, stderr: () => stderr, output: () => output, exited };
}

export interface GatewayProcess extends Gateway, RunningProcess {
  port: number;
}

/**
 * Starts the compiled gateway (`<build>/src/main.js`, as the test runner compiled it) as a
 * real process on a port of its own, and resolves once it answers `/health/live`.
 */
export async function spawnGateway(env: Record<string, string>): Promise<GatewayProcess> {
  const port = await freePort();
  const main = new URL('../../src/main.js', import.meta.url);
  const running = runProcess(process.execPath, [main.pathname], {
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
  });
  const { child } = running;
  const gw = { http: `http://127.0.0.1:${port}`, ws: (path: string) => `ws://127.0.0.1:${port}${path}` };
  try {
    await waitFor(
      async () => {
        if (child.exitCode !== null)
          throw new Error(`the gateway exited (${child.exitCode}) at start-up: ${running.output()}`);
        return (await call(gw, 'GET', '/health/live', { timeoutMs: 1000 })).status === 200;
      },
      { timeoutMs: 20_000, intervalMs: 50, what: 'the gateway process to answer /health/live' },
    );
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  return { ...gw, ...running, port };
}
