import type { Logger as Pino } from 'pino';
import type { EventBus } from '../bus/event-bus.js';
import type { RedisConnections } from '../engine/redis-connections.js';
import { EngineUnavailableError } from '../errors/engine-unavailable.error.js';
import { OccasionalWarning } from '../logging/occasional-warning.js';
import { ClientRegistry, type CountTarget } from './client-registry.js';
import type { ClientInfo, Connection } from './connection.js';

export interface RedisRegistryTiming {
  /** How often an instance tells Redis it is alive. */
  heartbeatMs: number;
  /** After this long without a heartbeat an instance, and its clients, drop out of the view. */
  ttlMs: number;
}

/** The hash of an instance's connections; the braces make the instance id its hash tag. */
function connsKey(redis: RedisConnections, instance: string): string {
  return redis.key('conns', `{${instance}}`);
}

/** The hash of an instance's index sizes, in the same slot as its connections. */
function countsKey(redis: RedisConnections, instance: string): string {
  return redis.key('counts', `{${instance}}`);
}

/** A count's field in `counts:<instance>`; protocol names never hold a colon. */
export function countField(protocol: string, target: CountTarget): string {
  return target.kind === 'all' ? `${protocol}:all` : `${protocol}:${target.kind}:${target.id}`;
}

/**
 * Mirrors this instance's connections into a Redis hash of its own
 * (`conns:<instance>`), and the sizes of its local indexes into another
 * (`counts:<instance>`: one field per user, channel and protocol that has connections),
 * both kept alive by a heartbeat in the `instances` sorted set. A dead instance's clients
 * and counts vanish from the view when its heartbeat stops. Writes are batched per tick,
 * and both hashes are rewritten after every reconnect, so an outage never leaves them
 * stale, and by the heartbeat when it finds them gone (a flush, an eviction). The counts hash is what makes `count` O(instances): one HGET per instance
 * instead of reading every client.
 */
export class RedisClientRegistry extends ClientRegistry {
  private readonly pending = new Map<string, Connection | null>();
  /** Count fields changed since the last flush, with their latest value (0: delete the field). */
  private readonly pendingCounts = new Map<string, number>();
  private flushScheduled = false;
  /** Resolves once the next flush has landed (see `mirrored`). */
  private nextFlush: { promise: Promise<void>; resolve: () => void } | null = null;
  private flushing: Promise<void> | null = null;
  /** The rewrite of this instance's part of the view and its entry in the live set, while under way. */
  private joining: Promise<void> | null = null;
  private heartbeat: NodeJS.Timeout | null = null;
  private stopReady: (() => void) | null = null;
  private stopped = false;
  private readonly hashKey: string;
  private readonly countsKey: string;
  private readonly instancesKey: string;
  /** Times the heartbeat found this instance's hashes gone from Redis and rewrote them. */
  private rewritten = 0;
  private readonly missingKeys: OccasionalWarning;

  constructor(
    bus: EventBus,
    log: Pino,
    private readonly redis: RedisConnections,
    private readonly timing: RedisRegistryTiming,
  ) {
    super(bus, log);
    // One hash tag per instance: its two hashes share a slot, so a transaction can write
    // both on a Cluster, and different instances' hashes spread over the slots.
    this.hashKey = connsKey(redis, this.instanceId);
    this.countsKey = countsKey(redis, this.instanceId);
    this.instancesKey = redis.key('instances');
    this.missingKeys = new OccasionalWarning(log, 'registry keys were missing from redis; rewritten');
  }

  start(): void {
    this.stopReady = this.redis.onReady('command', () => void this.join());
    this.heartbeat = setInterval(() => void this.beat(), this.timing.heartbeatMs);
    this.heartbeat.unref();
  }

  async stop(): Promise<void> {
    // Writes still pending (batched for the next tick) would land after the DEL below
    // and re-create the hash of an instance that is gone; drop them, and every later one.
    this.stopped = true;
    this.pending.clear();
    this.pendingCounts.clear();
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.stopReady?.();
    if (!this.redis.commandUp) return;
    // Out of the live set first: once it is, nobody reads the hashes.
    await this.redis.command.zrem(this.instancesKey, this.instanceId).catch(() => undefined);
    await this.redis.command.del(this.hashKey, this.countsKey).catch(() => undefined);
  }

  // One command per instance, in parallel: each instance's hash has a slot of its own.
  async list(): Promise<ClientInfo[]> {
    const instances = await this.liveInstances();
    const results = await this.guard('list', () =>
      Promise.all(instances.map((instance) => this.redis.command.hvals(connsKey(this.redis, instance)))),
    );
    const clients: ClientInfo[] = [];
    for (const values of results) for (const value of values) clients.push(JSON.parse(value) as ClientInfo);
    return clients;
  }

  async locate(id: string): Promise<ClientInfo | null> {
    const local = this.get(id);
    if (local) return local.info(this.instanceId);
    const instances = await this.liveInstances();
    const results = await this.guard('locate', () =>
      Promise.all(instances.map((instance) => this.redis.command.hget(connsKey(this.redis, instance), id))),
    );
    const found = results.find((value): value is string => typeof value === 'string');
    return found === undefined ? null : (JSON.parse(found) as ClientInfo);
  }

  async remoteCount(protocol: string, target: CountTarget): Promise<number> {
    if (!this.isShared(protocol)) throw new Error(`the counts of ${protocol} are not shared (shareCounts)`);
    const others = (await this.liveInstances()).filter((instance) => instance !== this.instanceId);
    if (others.length === 0) return 0;
    const field = countField(protocol, target);
    const results = await this.guard('count', () =>
      Promise.all(others.map((instance) => this.redis.command.hget(countsKey(this.redis, instance), field))),
    );
    let total = 0;
    for (const value of results) {
      const n = typeof value === 'string' ? Number(value) : 0;
      if (Number.isSafeInteger(n) && n > 0) total += n;
    }
    return total;
  }

  protected mirror(connection: Connection): void {
    if (this.stopped) return;
    this.pending.set(connection.id, connection);
    this.scheduleFlush();
  }

  protected unmirror(id: string): void {
    if (this.stopped) return;
    this.pending.set(id, null);
    this.scheduleFlush();
  }

  protected countChanged(protocol: string, target: CountTarget, size: number): void {
    if (this.stopped) return;
    this.pendingCounts.set(countField(protocol, target), size);
    this.scheduleFlush();
  }

  /** Times the heartbeat found this instance's hashes gone from Redis and rewrote them. */
  get rewrites(): number {
    return this.rewritten;
  }

  instances(): Promise<string[]> {
    return this.liveInstances();
  }

  private async liveInstances(): Promise<string[]> {
    return this.guard('list instances', () =>
      this.redis.command.zrangebyscore(this.instancesKey, Date.now() - this.timing.ttlMs, '+inf'),
    );
  }

  /**
   * The next flush, and the join under way (after start-up or a reconnect): until this
   * instance is in the live set, the others count none of its clients, so a client told it
   * is ready then could miss a publish counted or routed elsewhere.
   */
  protected override mirrored(): Promise<void> | null {
    const flush = this.nextFlush?.promise ?? this.flushing;
    const joining = this.joining;
    if (!joining) return flush;
    return flush ? Promise.all([flush, joining]).then(() => undefined) : joining;
  }

  /** A resync that `mirrored` waits for; it settles either way (a failure is retried by the heartbeat). */
  private join(): void {
    const joined = this.resync();
    this.joining = joined;
    void joined.then(() => {
      if (this.joining === joined) this.joining = null;
    });
  }

  private scheduleFlush(): void {
    if (!this.nextFlush) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.nextFlush = { promise, resolve };
    }
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.flushScheduled = false;
    const batch = this.nextFlush;
    this.nextFlush = null;
    const done = this.write();
    this.flushing = done;
    void done.then(() => {
      if (this.flushing === done) this.flushing = null;
      batch?.resolve();
    });
  }

  private async write(): Promise<void> {
    if (this.stopped || (this.pending.size === 0 && this.pendingCounts.size === 0)) return;
    // Only the command connection matters here: a subscriber outage must not drop the mirror.
    if (!this.redis.commandUp) {
      // The resync after the reconnect writes the whole state; nothing to keep.
      this.pending.clear();
      this.pendingCounts.clear();
      return;
    }
    const fields: string[] = [];
    const removed: string[] = [];
    for (const [id, connection] of this.pending) {
      if (connection) fields.push(id, JSON.stringify(connection.info(this.instanceId)));
      else removed.push(id);
    }
    this.pending.clear();
    const counts: string[] = [];
    const zeroed: string[] = [];
    for (const [field, size] of this.pendingCounts) {
      // Sizes, not increments: a write that lands twice or late still leaves the right value.
      if (size > 0) counts.push(field, String(size));
      else zeroed.push(field);
    }
    this.pendingCounts.clear();
    const pipeline = this.redis.command.pipeline();
    if (fields.length > 0) pipeline.hset(this.hashKey, ...fields);
    if (removed.length > 0) pipeline.hdel(this.hashKey, ...removed);
    if (counts.length > 0) pipeline.hset(this.countsKey, ...counts);
    if (zeroed.length > 0) pipeline.hdel(this.countsKey, ...zeroed);
    pipeline.pexpire(this.hashKey, this.timing.ttlMs);
    pipeline.pexpire(this.countsKey, this.timing.ttlMs);
    await pipeline.exec().catch(() => undefined);
  }

  /**
   * Tells the live set this instance is alive (ZADD re-creates the set if it is gone) and
   * extends its hashes' lives. A hash that should exist and does not (the PEXPIRE found no
   * key: a `FLUSHALL`, an eviction, a failover to a replica that missed the writes) is
   * rewritten from the local state at once, so the view heals within one heartbeat while
   * every client stays connected.
   */
  private async beat(): Promise<void> {
    if (this.stopped || !this.redis.commandUp) return;
    const now = Date.now();
    // Two pipelines: the live set and this instance's hashes live in different slots.
    const results = await Promise.all([
      this.redis.command
        .pipeline()
        .zadd(this.instancesKey, now, this.instanceId)
        .zremrangebyscore(this.instancesKey, '-inf', now - this.timing.ttlMs)
        .exec(),
      this.redis.command
        .pipeline()
        .pexpire(this.hashKey, this.timing.ttlMs)
        .pexpire(this.countsKey, this.timing.ttlMs)
        .exec(),
    ]).catch(() => null);
    const extended = results?.[1];
    if (!extended || this.stopped) return;
    const [conns, counts] = extended.map(([err, found]) => err === null && found === 0);
    const missing = (conns && this.size > 0) || (counts && !this.localCounts().next().done);
    if (!missing) return;
    this.rewritten++;
    this.missingKeys.warn({ instance: this.instanceId });
    this.join();
  }

  private async resync(): Promise<void> {
    if (this.stopped) return;
    const fields: string[] = [];
    for (const connection of this.local()) fields.push(connection.id, JSON.stringify(connection.info(this.instanceId)));
    const counts: string[] = [];
    for (const [protocol, target, size] of this.localCounts()) counts.push(countField(protocol, target), String(size));
    // This instance's two hashes in one transaction (one slot), then its entry in the live set.
    const transaction = this.redis.command.multi().del(this.hashKey, this.countsKey);
    if (fields.length > 0) transaction.hset(this.hashKey, ...fields).pexpire(this.hashKey, this.timing.ttlMs);
    if (counts.length > 0) transaction.hset(this.countsKey, ...counts).pexpire(this.countsKey, this.timing.ttlMs);
    try {
      await transaction.exec();
      await this.redis.command.zadd(this.instancesKey, Date.now(), this.instanceId);
    } catch (err) {
      // The heartbeat re-adds the instance and finds its hashes missing within one beat.
      this.log.warn({ err: String(err) }, 'registry resync failed; retried by the heartbeat');
    }
  }

  private async guard<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw new EngineUnavailableError(operation, err);
    }
  }
}
