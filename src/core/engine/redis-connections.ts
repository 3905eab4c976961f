import { Cluster, Redis, type ClusterNode, type RedisOptions } from 'ioredis';
import calculateSlot from 'cluster-key-slot';
import type { Logger as Pino } from 'pino';
import { hostList, type EnvSchema } from '../../config/env.schema.js';
import { OccasionalWarning } from '../logging/occasional-warning.js';
import { CommandGate, DEFAULT_PENDING_LIMITS, type PendingLimits, type RedisPending } from './command-gate.js';

/** Where the engine's Redis is: one server, a master found through Sentinel, or a Cluster. */
export type RedisTopology =
  | { kind: 'single'; url: string }
  | {
      kind: 'sentinel';
      sentinels: { host: string; port: number }[];
      name: string;
      username?: string;
      password?: string;
      sentinelPassword?: string;
      tls: boolean;
    }
  | { kind: 'cluster'; nodes: ClusterNode[]; username?: string; password?: string; tls: boolean };

/** The Redis the configuration names, or null for the embedded engine. */
export function topologyOf(config: EnvSchema): RedisTopology | null {
  const auth = {
    ...(config.REDIS_USERNAME === undefined ? {} : { username: config.REDIS_USERNAME }),
    ...(config.REDIS_PASSWORD === undefined ? {} : { password: config.REDIS_PASSWORD }),
  };
  if (config.REDIS_URL !== undefined) return { kind: 'single', url: config.REDIS_URL };
  if (config.REDIS_SENTINELS !== undefined) {
    return {
      kind: 'sentinel',
      sentinels: hostList(config.REDIS_SENTINELS),
      name: config.REDIS_SENTINEL_NAME ?? 'mymaster',
      ...auth,
      ...(config.REDIS_SENTINEL_PASSWORD === undefined ? {} : { sentinelPassword: config.REDIS_SENTINEL_PASSWORD }),
      tls: config.REDIS_TLS,
    };
  }
  if (config.REDIS_CLUSTER_NODES !== undefined) {
    return { kind: 'cluster', nodes: hostList(config.REDIS_CLUSTER_NODES), ...auth, tls: config.REDIS_TLS };
  }
  return null;
}

/** Every command ioredis offers on one server and on a Cluster alike. */
export type RedisCommands = Redis | Cluster;

/** How long a command may wait for Redis before it fails. */
const COMMAND_TIMEOUT_MS = 2000;

/**
 * The two ioredis connections of an instance, whatever the topology: one for commands and
 * publishes, one for the bus's subscriptions (`SUBSCRIBE`, or `SSUBSCRIBE` on a Cluster,
 * where sharded pub/sub keeps a message on the shard that owns its channel). Commands never
 * wait for Redis: while it is away they fail at once (no offline queue, no resend), so
 * callers can answer 503 instead of hanging. On a failover (Sentinel or Cluster) ioredis
 * finds the new master by itself.
 */
export class RedisConnections {
  readonly command: RedisCommands;
  readonly subscriber: RedisCommands;
  /** Sharded pub/sub (Cluster): a subscription names one slot's channels at a time. */
  readonly sharded: boolean;
  private readonly readyListeners = { command: new Set<() => void>(), subscriber: new Set<() => void>() };
  private readonly lostListeners = new Set<() => void>();
  private downSince: number | null = null;
  private subscriberUp = false;
  /** Bounds what waits for an answer on the command connection (see `CommandGate`). */
  private readonly gate: CommandGate;
  /** Set from a stall's reset until the command connection is ready again. */
  private resetting = false;
  private stallResets = 0;
  /** A saturated Redis refuses every command: one line per interval, not per command. */
  private readonly refusal: OccasionalWarning;

  constructor(
    readonly topology: RedisTopology,
    readonly prefix: string,
    private readonly log: Pino,
    limits: PendingLimits = DEFAULT_PENDING_LIMITS,
  ) {
    const retryStrategy = (times: number): number => Math.min(50 * times, 1000);
    this.sharded = topology.kind === 'cluster';
    if (topology.kind === 'cluster') {
      const redisOptions: RedisOptions = {
        connectTimeout: 2000,
        maxRetriesPerRequest: 0,
        commandTimeout: COMMAND_TIMEOUT_MS,
        autoResendUnfulfilledCommands: false,
        ...credentials(topology),
        ...(topology.tls ? { tls: {} } : {}),
      };
      const common = {
        lazyConnect: true,
        enableOfflineQueue: false,
        clusterRetryStrategy: retryStrategy,
        slotsRefreshTimeout: 2000,
        redisOptions,
      };
      this.command = new Cluster(topology.nodes, common);
      // Sharded subscriptions: ioredis keeps one subscriber connection per master and moves
      // a channel's subscription when its slot moves or its master fails over.
      // Its offline queue holds the SSUBSCRIBEs issued while the cluster is still finding its
      // slots: only subscriptions go through it, one per channel at most.
      this.subscriber = new Cluster(topology.nodes, { ...common, enableOfflineQueue: true, shardedSubscribers: true });
    } else {
      const base: RedisOptions = { lazyConnect: true, connectTimeout: 2000, retryStrategy };
      const where: RedisOptions =
        topology.kind === 'sentinel'
          ? {
              sentinels: topology.sentinels,
              name: topology.name,
              role: 'master',
              // Subscribes to the sentinels' +switch-master, so a failover is followed at once.
              failoverDetector: true,
              sentinelRetryStrategy: retryStrategy,
              ...credentials(topology),
              ...(topology.sentinelPassword === undefined ? {} : { sentinelPassword: topology.sentinelPassword }),
              ...(topology.tls ? { tls: {}, enableTLSForSentinelMode: true } : {}),
            }
          : {};
      const make = (options: RedisOptions): Redis =>
        topology.kind === 'single' ? new Redis(topology.url, options) : new Redis(options);
      this.command = make({
        ...base,
        ...where,
        enableOfflineQueue: false,
        maxRetriesPerRequest: 0,
        autoResendUnfulfilledCommands: false,
        commandTimeout: COMMAND_TIMEOUT_MS,
      });
      // Subscriptions are (re)issued by their owner on every 'ready' (see onReady), so a
      // SUBSCRIBE never waits in a queue and an outage at start-up cannot lose one.
      this.subscriber = make({
        ...base,
        ...where,
        enableOfflineQueue: false,
        autoResubscribe: false,
        maxRetriesPerRequest: 0,
      });
    }
    this.refusal = new OccasionalWarning(log, 'too much is waiting for redis; refusing commands');
    this.gate = new CommandGate(
      limits,
      () => this.stalled(),
      () => this.refusal.warn({ connection: 'command', limits }),
    );
    this.gate.install(this.command);
    this.command.on('error', (err: Error) => this.onError('command', err));
    this.command.on('ready', () => this.handleReady('command'));
    this.subscriber.on('error', (err: Error) => this.onError('subscriber', err));
    if (this.sharded) {
      const cluster = this.subscriber as Cluster;
      cluster.on('-subscriber', () => this.subscriberLost());
      cluster.on('subscribersReady', () => this.subscriberReady());
      cluster.on('ready', () => {
        if (!this.subscriberUp) this.subscriberReady();
      });
    } else {
      this.subscriber.on('ready', () => this.subscriberReady());
      this.subscriber.on('close', () => this.subscriberLost());
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
    return this.commandUp && this.subscriberUp;
  }

  /** Whether the subscriber side is connected (every shard's, on a Cluster). */
  get subscribed(): boolean {
    return this.subscriberUp;
  }

  /**
   * Runs `listener` whenever that side (re)gains Redis: to subscribe, or to re-publish local
   * state. Runs at once if it is already connected.
   */
  onReady(connection: 'command' | 'subscriber', listener: () => void): () => void {
    this.readyListeners[connection].add(listener);
    const up = connection === 'command' ? this.commandUp : this.subscriberUp;
    if (up) listener();
    return () => this.readyListeners[connection].delete(listener);
  }

  /** Runs `listener` whenever subscriptions may have been dropped (a reconnect, a shard's subscriber lost). */
  onSubscriberLost(listener: () => void): () => void {
    this.lostListeners.add(listener);
    return () => this.lostListeners.delete(listener);
  }

  /** Subscribes the bus's channels: `SUBSCRIBE`, or `SSUBSCRIBE` one slot at a time on a Cluster. */
  async subscribe(channels: readonly string[]): Promise<void> {
    if (channels.length === 0) return;
    if (!this.sharded) {
      await (this.subscriber as Redis).subscribe(...channels);
      return;
    }
    await Promise.all(bySlot(channels).map((group) => (this.subscriber as Cluster).ssubscribe(...group)));
  }

  async unsubscribe(channels: readonly string[]): Promise<void> {
    if (channels.length === 0) return;
    if (!this.sharded) {
      await (this.subscriber as Redis).unsubscribe(...channels);
      return;
    }
    await Promise.all(bySlot(channels).map((group) => (this.subscriber as Cluster).sunsubscribe(...group)));
  }

  /** `PUBLISH`, or `SPUBLISH` on a Cluster: one command per message, whoever receives it. */
  async publish(channel: string, payload: Buffer): Promise<void> {
    if (this.sharded) await (this.command as Cluster).spublish(channel, payload);
    else await this.command.publish(channel, payload);
  }

  /** Every message of a subscribed channel, as bytes. */
  onMessage(handler: (channel: string, payload: Buffer) => void): void {
    const event = this.sharded ? 'smessageBuffer' : 'messageBuffer';
    this.subscriber.on(event, (channel: Buffer, payload: Buffer) => handler(channel.toString('utf8'), payload));
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

  /** Says goodbye to Redis; a Redis that does not answer (a hung server) gets `QUIT_TIMEOUT_MS`. */
  async close(): Promise<void> {
    await Promise.allSettled([quit(this.command), quit(this.subscriber)]);
  }

  /** What waits for Redis on the command connection now, and what the bounds refused and reset so far. */
  get pending(): RedisPending {
    const { commands, bytes, refused } = this.gate;
    return { commands, bytes, refused, resets: this.stallResets };
  }

  /**
   * A command went unanswered for `COMMAND_TIMEOUT_MS`: Redis hangs. Everything sent since
   * waits in ioredis' queue; dropping the connection frees it, and ioredis reconnects by
   * itself (failing every command at once meanwhile, as when Redis is down).
   */
  private stalled(): void {
    if (this.resetting || this.command.status !== 'ready') return;
    this.resetting = true;
    this.stallResets++;
    this.log.warn(
      { connection: 'command', timeoutMs: COMMAND_TIMEOUT_MS, pending: this.gate.commands },
      'redis did not answer in time; connection reset',
    );
    this.command.disconnect(true);
  }

  private onError(name: string, err: Error): void {
    // Log the first error of an outage only: a reconnect loop would flood the log.
    if (this.downSince === null) {
      this.downSince = Date.now();
      this.log.warn({ connection: name, err: err.message }, 'redis unavailable; retrying');
    }
  }

  private handleReady(name: 'command' | 'subscriber'): void {
    if (name === 'command') {
      this.resetting = false;
    }
    if (this.downSince !== null) {
      this.log.info({ connection: name, downMs: Date.now() - this.downSince }, 'redis available again');
      this.downSince = null;
    }
    for (const listener of this.readyListeners[name]) listener();
  }

  private subscriberLost(): void {
    if (!this.subscriberUp) return;
    this.subscriberUp = false;
    for (const listener of this.lostListeners) listener();
  }

  private subscriberReady(): void {
    this.subscriberUp = true;
    this.handleReady('subscriber');
  }
}

function credentials(topology: { username?: string; password?: string }): RedisOptions {
  return {
    ...(topology.username === undefined ? {} : { username: topology.username }),
    ...(topology.password === undefined ? {} : { password: topology.password }),
  };
}

/** Channels grouped by hash slot: a sharded subscription names one slot's channels. */
function bySlot(channels: readonly string[]): string[][] {
  const groups = new Map<number, string[]>();
  for (const channel of channels) {
    const slot = calculateSlot(channel);
    const group = groups.get(slot);
    if (group) group.push(channel);
    else groups.set(slot, [channel]);
  }
  return [...groups.values()];
}

/** How long `QUIT` may wait for its answer before the connection is simply dropped. */
const QUIT_TIMEOUT_MS = 1000;

async function quit(client: RedisCommands): Promise<void> {
  if (client.status === 'ready') {
    let timer: NodeJS.Timeout | undefined;
    try {
      // The subscriber connection has no command timeout: without this a hung Redis would
      // hold the shutdown for as long as it hangs.
      await Promise.race([
        client.quit(),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, QUIT_TIMEOUT_MS);
        }),
      ]);
    } catch {
      // disconnected below
    } finally {
      clearTimeout(timer);
    }
  }
  // Also after QUIT: it ends the connection, not what ioredis holds beside it (a Sentinel
  // setup's connections to the sentinels would go on reconnecting).
  client.disconnect();
}
