import { Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { bytesTopic } from '../../core/bus/bus-topic.js';
import { EventBus } from '../../core/bus/event-bus.js';
import { Engine } from '../../core/engine/engine.js';
import { isJsonObject } from '../../core/json.js';
import { Metrics } from '../../core/metrics/metrics.js';
import { ClientRegistry } from '../../core/registry/client-registry.js';
import { VERSION } from '../../core/version.js';
import { GatewayCatalog } from '../../core/ws/gateway-catalog.js';

/** The bus topic on which instances tell each other what they are. */
export const INSTANCE_TOPIC = bytesTopic('admin.instance');

/** How often a summary goes out while someone watches. */
export const SUMMARY_INTERVAL_MS = 1000;

/** An instance not heard from for this long is gone (stopped, or cut off from Redis). */
export const INSTANCE_TTL_MS = 5000;

/** Summaries from more instances than this are ignored: the map must not grow on garbage. */
const MAX_INSTANCES = 256;

/** What an instance says about itself, once a second, while an admin page watches. */
export interface InstanceSummary {
  id: string;
  engine: string;
  version: string;
  /** Each Redis connection and whether it is up; null for the embedded engine. */
  redis: Record<string, boolean> | null;
  /** Whether a write reaches every instance right now (both Redis links up, the bus subscribed). */
  available: boolean;
  started_at: string;
  uptime_s: number;
  /**
   * Open connections, and how many were opened and closed since start-up: two counts that
   * move on every arrival and departure, so a client that comes and goes between two
   * summaries still shows as a change.
   */
  connections: { total: number; by_protocol: Record<string, number>; opened: number; closed: number };
  /** The instance has an admin stream open: hearing this, the others publish their own summaries. */
  watching: boolean;
}

/** A summary as the page gets it. */
export interface InstanceView extends InstanceSummary {
  /** The instance serving this stream. */
  self: boolean;
  /** Since its summary was taken (0 for this instance's own). */
  age_ms: number;
}

/**
 * Every live instance and what it last said about itself. This instance is read directly;
 * with Redis, the others publish summaries on `admin.instance`, but only while some instance
 * has an admin stream open (its own summaries say `watching`): a cluster nobody looks at
 * carries no extra traffic. An instance silent for `INSTANCE_TTL_MS` is dropped.
 */
@Injectable()
export class InstanceDirectory implements OnModuleInit, OnModuleDestroy {
  private readonly startedAt = Date.now();
  private readonly others = new Map<string, { summary: InstanceSummary; heardAt: number }>();
  private watchers = 0;
  /** Until when another instance's page keeps this one publishing. */
  private watchedUntil = 0;
  private timer: NodeJS.Timeout | null = null;
  private unsubscribe: (() => void) | null = null;

  constructor(
    private readonly engine: Engine,
    private readonly bus: EventBus,
    private readonly registry: ClientRegistry,
    private readonly catalog: GatewayCatalog,
    private readonly metrics: Metrics,
  ) {}

  onModuleInit(): void {
    // With the embedded engine there is one instance: nothing to publish or hear.
    if (this.engine.kind !== 'redis') return;
    this.unsubscribe = this.bus.subscribe(INSTANCE_TOPIC, (payload) => this.heard(payload));
    this.timer = setInterval(() => this.tick(), SUMMARY_INTERVAL_MS);
    this.timer.unref();
  }

  onModuleDestroy(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.unsubscribe?.();
    this.unsubscribe = null;
  }

  /** Counts an open admin stream until the returned function is called. */
  watch(): () => void {
    this.watchers++;
    // Right away, so a page opened on a quiet cluster hears the others within one interval.
    if (this.watchers === 1) this.tick();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.watchers--;
    };
  }

  /** This instance first, then the others heard from in the last `INSTANCE_TTL_MS`, by id. */
  list(now = Date.now()): InstanceView[] {
    this.prune(now);
    const others = [...this.others.values()]
      .map(({ summary, heardAt }) => ({ ...summary, self: false, age_ms: now - heardAt }))
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return [{ ...this.own(now), self: true, age_ms: 0 }, ...others];
  }

  own(now = Date.now()): InstanceSummary {
    const byProtocol: Record<string, number> = {};
    let total = 0;
    let opened = 0;
    let closed = 0;
    for (const { name } of this.catalog.all()) {
      const count = this.registry.localCount(name, { kind: 'all' });
      byProtocol[name] = count;
      total += count;
      const stats = this.metrics.protocol(name);
      opened += stats.opened;
      for (const n of stats.closes.values()) closed += n;
    }
    return {
      id: this.engine.instanceId,
      engine: this.engine.kind,
      version: VERSION,
      redis: this.engine.redisLinks(),
      available: this.engine.available,
      started_at: new Date(this.startedAt).toISOString(),
      uptime_s: Math.floor((now - this.startedAt) / 1000),
      connections: { total, by_protocol: byProtocol, opened, closed },
      watching: this.watchers > 0,
    };
  }

  private tick(): void {
    const now = Date.now();
    this.prune(now);
    if (this.engine.kind !== 'redis' || (this.watchers === 0 && now >= this.watchedUntil)) return;
    const payload = Buffer.from(JSON.stringify(this.own(now)));
    // While Redis is away the others cannot hear it anyway; the next tick tries again.
    this.bus.publish(INSTANCE_TOPIC, { kind: 'all' }, payload).catch(() => undefined);
  }

  private heard(payload: Buffer): void {
    const summary = parseSummary(payload);
    if (!summary || summary.id === this.engine.instanceId) return;
    const now = Date.now();
    if (summary.watching) this.watchedUntil = now + INSTANCE_TTL_MS;
    if (!this.others.has(summary.id) && this.others.size >= MAX_INSTANCES) return;
    this.others.set(summary.id, { summary, heardAt: now });
  }

  private prune(now: number): void {
    for (const [id, { heardAt }] of this.others) if (now - heardAt > INSTANCE_TTL_MS) this.others.delete(id);
  }
}

/** A summary another instance published, or null for anything else (another build, garbage). */
export function parseSummary(payload: Buffer): InstanceSummary | null {
  let value: unknown;
  try {
    value = JSON.parse(payload.toString('utf8'));
  } catch {
    return null;
  }
  if (!isJsonObject(value)) return null;
  const { id, engine, version, redis, available, started_at, uptime_s, connections, watching } = value;
  if (typeof id !== 'string' || id.length === 0 || id.length > 128) return null;
  if (typeof engine !== 'string' || typeof version !== 'string' || typeof started_at !== 'string') return null;
  if (typeof available !== 'boolean' || typeof watching !== 'boolean') return null;
  if (typeof uptime_s !== 'number' || !Number.isFinite(uptime_s)) return null;
  if (redis !== null && !isFlags(redis)) return null;
  if (!isJsonObject(connections)) return null;
  const { total, opened, closed } = connections;
  if (typeof total !== 'number' || typeof opened !== 'number' || typeof closed !== 'number') return null;
  const byProtocol = connections['by_protocol'];
  if (!isJsonObject(byProtocol) || !Object.values(byProtocol).every((n) => typeof n === 'number')) return null;
  return {
    id,
    engine,
    version,
    redis,
    available,
    started_at,
    uptime_s,
    connections: { total, by_protocol: byProtocol as Record<string, number>, opened, closed },
    watching,
  };
}

function isFlags(value: unknown): value is Record<string, boolean> {
  return isJsonObject(value) && Object.values(value).every((v) => typeof v === 'boolean');
}
