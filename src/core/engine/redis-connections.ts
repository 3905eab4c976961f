import { Redis, type RedisOptions } from 'ioredis';
import type { Logger as Pino } from 'pino';

/**
 * The two ioredis connections of an instance: one for commands and publishes, one
 * held in subscriber mode. Commands never wait for Redis: while it is away they fail
 * at once (no offline queue, no resend), so callers can answer 503 instead of hanging.
 */
export class RedisConnections {
  readonly command: Redis;
  readonly subscriber: Redis;
  private readonly readyListeners = { command: new Set<() => void>(), subscriber: new Set<() => void>() };
  private downSince: number | null = null;

  constructor(
    url: string,
    readonly prefix: string,
    private readonly log: Pino,
  ) {
    const common: RedisOptions = {
      lazyConnect: true,
      connectTimeout: 2000,
      retryStrategy: (times) => Math.min(50 * times, 1000),
    };
    this.command = new Redis(url, {
      ...common,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      commandTimeout: 2000,
    });
    // Subscriptions are (re)issued by their owners on every 'ready' (see onReady), so a
    // SUBSCRIBE never waits in a queue and an outage at start-up cannot lose one.
    this.subscriber = new Redis(url, {
      ...common,
      enableOfflineQueue: false,
      autoResubscribe: false,
      maxRetriesPerRequest: 0,
    });
    for (const [name, client] of [
      ['command', this.command],
      ['subscriber', this.subscriber],
    ] as const) {
      client.on('error', (err: Error) => this.onError(name, err));
      client.on('ready', () => this.handleReady(name));
    }
  }

  async connect(): Promise<void> {
    // A Redis that is down at start-up is not fatal: the instance starts not-ready
    // and ioredis keeps reconnecting.
    await Promise.allSettled([this.command.connect(), this.subscriber.connect()]);
  }

  key(...parts: string[]): string {
    return this.prefix + parts.join(':');
  }

  /** The command connection alone: enough for store and registry writes. */
  get commandUp(): boolean {
    return this.command.status === 'ready';
  }

  get isUp(): boolean {
    return this.command.status === 'ready' && this.subscriber.status === 'ready';
  }

  /**
   * Runs `listener` whenever that connection (re)gains Redis: to subscribe, or to
   * re-publish local state. Runs at once if it is already connected.
   */
  onReady(connection: 'command' | 'subscriber', listener: () => void): () => void {
    this.readyListeners[connection].add(listener);
    if (this[connection].status === 'ready') listener();
    return () => this.readyListeners[connection].delete(listener);
  }

  async ping(timeoutMs: number): Promise<boolean> {
    if (!this.isUp) return false;
    let timer: NodeJS.Timeout | undefined;
    try {
      const answer = await Promise.race([
        this.command.ping(),
        new Promise<null>((resolve) => {
          timer = setTimeout(() => resolve(null), timeoutMs);
        }),
      ]);
      return answer === 'PONG';
    } catch {
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    await Promise.allSettled([quit(this.command), quit(this.subscriber)]);
  }

  private onError(name: string, err: Error): void {
    // Log the first error of an outage only: a reconnect loop would flood the log.
    if (this.downSince === null) {
      this.downSince = Date.now();
      this.log.warn({ connection: name, err: err.message }, 'redis unavailable; retrying');
    }
  }

  private handleReady(name: 'command' | 'subscriber'): void {
    if (this.downSince !== null) {
      this.log.info({ connection: name, downMs: Date.now() - this.downSince }, 'redis available again');
      this.downSince = null;
    }
    for (const listener of this.readyListeners[name]) listener();
  }
}

async function quit(client: Redis): Promise<void> {
  if (client.status === 'ready') {
    try {
      await client.quit();
      return;
    } catch {
      // fall through to disconnect
    }
  }
  client.disconnect();
}
