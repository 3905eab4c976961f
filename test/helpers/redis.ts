import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { Socket } from 'node:net';
import { Redis } from 'ioredis';
import { freePort } from './ports.js';
import { waitFor } from './wait.js';

export const SHARED_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** True when something answers PING at `url` within `timeoutMs`. */
export async function redisAnswers(url = SHARED_REDIS_URL, timeoutMs = 1000): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = new Socket();
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('error', () => done(false));
    socket.connect(Number(port || 6379), hostname, () => socket.write('PING\r\n'));
    socket.once('data', (data) => done(data.toString().startsWith('+PONG')));
  });
}

/**
 * `describe(..., redisSuite)` options: Redis-backed suites run whenever Redis answers.
 * Without Redis they are skipped with a printed notice, except under CI, where they
 * run (and fail), because CI must exercise them.
 */
export async function redisSuite(): Promise<{ skip: string | false }> {
  if (process.env.CI || (await redisAnswers())) return { skip: false };
  const reason = `no Redis answers at ${SHARED_REDIS_URL}; Redis-backed tests skipped (set CI=1 to force them)`;
  console.log(`NOTICE: ${reason}`);
  return { skip: reason };
}

/** A key prefix of its own, so suites sharing one Redis never see each other's keys. */
export function uniquePrefix(): string {
  return `test-${randomBytes(5).toString('hex')}:`;
}

/**
 * Drops every pub/sub connection of the Redis at `url` (`CLIENT KILL TYPE pubsub`), as a
 * network blip would: the subscribers reconnect by themselves. Resolves with how many went.
 */
export async function killSubscribers(url: string): Promise<number> {
  const admin = new Redis(url);
  try {
    return Number(await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub'));
  } finally {
    admin.disconnect();
  }
}

/**
 * Waits until `count` instances under `prefix` listen on the bus, as `inspect` sees it: every
 * instance subscribes to the broadcast channel of the registry's revocations.
 */
export async function busSubscribers(inspect: Redis, prefix: string, count: number): Promise<void> {
  const channel = `${prefix}bus:{control.revoke}`;
  await waitFor(async () => ((await inspect.call('PUBSUB', 'NUMSUB', channel)) as [string, number])[1] === count, {
    what: `${count} instances to subscribe to the bus`,
  });
}

export interface RedisProcessOptions {
  /**
   * Keep the data across a stop and start, as a Redis with an append-only file does:
   * every write is fsynced to an append-only file in this directory before Redis answers it.
   */
  persistDir?: string;
}

/**
 * A redis-server of the test's own, on its own port, that the test may stop and
 * start again (same port) to simulate an outage. Nothing is persisted unless
 * `persistDir` is given.
 */
export class RedisProcess {
  private child: ChildProcess | null = null;

  private constructor(
    readonly port: number,
    private readonly options: RedisProcessOptions,
  ) {}

  static async start(options: RedisProcessOptions = {}): Promise<RedisProcess> {
    const redis = new RedisProcess(await freePort(), options);
    await redis.start();
    return redis;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    if (this.child) return;
    const child = spawn(
      'redis-server',
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--protected-mode',
        'no',
        ...(this.options.persistDir === undefined
          ? ['--appendonly', 'no']
          : ['--dir', this.options.persistDir, '--appendonly', 'yes', '--appendfsync', 'always']),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.child = child;
    let output = '';
    const ready = new Promise<void>((resolve, reject) => {
      const onData = (chunk: Buffer): void => {
        output += chunk.toString();
        if (output.includes('Ready to accept connections')) resolve();
      };
      child.stdout?.on('data', onData);
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`redis-server exited (${code}): ${output.slice(-500)}`)));
    });
    await ready;
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = null;
    if (child.exitCode !== null) return;
    child.kill('SIGKILL');
    await once(child, 'exit');
  }

  /** SIGSTOP / SIGCONT: a Redis that hangs instead of refusing. */
  pause(): void {
    this.child?.kill('SIGSTOP');
  }

  resume(): void {
    this.child?.kill('SIGCONT');
  }
}

/**
 * What Redis itself ran on one key, seen through MONITOR: the store is not wrapped or
 * replaced, Redis reports every command it executes, in order.
 */
export class KeyWatch {
  private readonly seen: string[] = [];
  private readonly marks = new Map<string, () => void>();
  private marker = 0;

  private constructor(
    private readonly monitor: Redis,
    private readonly probe: Redis,
    private readonly key: string,
    private readonly markPrefix: string,
  ) {
    monitor.on('monitor', (_time: string, args: string[]) => {
      const [command, key] = args;
      if (key === this.key && command !== undefined) this.seen.push(command.toUpperCase());
      if (key !== undefined) this.marks.get(key)?.();
    });
  }

  static async start(url: string, key: string, markPrefix: string): Promise<KeyWatch> {
    // Neither connection may reconnect: a restarted Redis is watched by a new KeyWatch.
    const probe = new Redis(url, { retryStrategy: () => null });
    probe.on('error', () => undefined);
    const monitor = await probe.monitor();
    monitor.on('error', () => undefined);
    return new KeyWatch(monitor, probe, key, markPrefix);
  }

  /** How many times `command` ran on the key so far. */
  count(command: string): number {
    return this.seen.filter((c) => c === command).length;
  }

  /** Resolves once every command Redis ran before this call has been seen. */
  async sync(): Promise<void> {
    const mark = `${this.markPrefix}mark:${this.marker++}`;
    const seen = new Promise<void>((resolve) => this.marks.set(mark, resolve));
    await this.probe.get(mark);
    await seen;
    this.marks.delete(mark);
  }

  stop(): void {
    this.monitor.disconnect();
    this.probe.disconnect();
  }
}
