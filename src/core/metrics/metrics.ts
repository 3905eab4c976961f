import { Injectable } from '@nestjs/common';
import { Counter, Gauge, Registry } from 'prom-client';
import { AppConfig } from '../../config/app-config.js';
import type { TopicEntry } from '../bus/event-bus.js';
import type { RedisPending } from '../engine/command-gate.js';
import { VERSION } from '../version.js';
import { LATENCY_BUCKETS } from './latency-histogram.js';
import { ProtocolStats } from './protocol-stats.js';
import { LAG_WINDOW_MS, runtimeMetrics } from './runtime-metrics.js';

/** What the engine tells the metrics at scrape time. */
export interface EngineGauges {
  readonly kind: string;
  readonly instanceId: string;
  topicStats(): Iterable<TopicEntry>;
  readonly rejoins: number;
  /** Bus messages recovered from the log after a gap, and gaps it could not fill. */
  readonly busRepaired: number;
  readonly busUnrepaired: number;
  /** Times the registry found its keys gone from Redis (a flush, an eviction) and rewrote them. */
  readonly registryRewrites: number;
  /** Each Redis connection and whether it is up; null for the embedded engine. */
  redisLinks(): Record<string, boolean> | null;
  /** What waits for Redis on the command connection, and what its bounds refused and reset; null for the embedded engine. */
  redisPending(): RedisPending | null;
}

/** A protocol's per-connection deflate contexts, read when Prometheus scrapes. */
export interface ZlibGauges {
  /** Contexts holding their state now. */
  readonly active: number;
  /** Contexts released because their connection went idle, since start-up. */
  readonly released: number;
}

/** TCP connections the listeners closed before any protocol saw them, by reason. */
export interface EarlyCloses {
  /** Answered `429` on accept: their address was at `WS_MAX_CONNECTIONS_PER_IP`. */
  readonly perAddress: number;
  /** Destroyed for not completing a request within `WS_HANDSHAKE_TIMEOUT_MS`. */
  readonly handshakeTimeout: number;
}

/** Open sockets per protocol, read when Prometheus scrapes. */
export type ConnectionGauges = () => Iterable<[protocol: string, open: number]>;

/**
 * The gateway's Prometheus metrics. The hot paths count into plain fields of a
 * `ProtocolStats` per protocol and of the bus's topic entries; nothing here runs per
 * message. Every family is filled from those numbers when `/metrics` is scraped.
 */
@Injectable()
export class Metrics {
  readonly enabled: boolean;
  private readonly registry = new Registry();
  private readonly protocols = new Map<string, ProtocolStats>();
  private engine: EngineGauges | null = null;
  private connections: ConnectionGauges = () => [];
  private earlyCloses: () => EarlyCloses | null = () => null;
  private readonly zlib = new Map<string, ZlibGauges>();
  private readonly adminRequests: Counter<'method' | 'route' | 'status'>;

  constructor(config: AppConfig) {
    this.enabled = config.METRICS_ENABLED;
    this.adminRequests = new Counter({
      name: 'gatehouse_admin_requests_total',
      help: 'Requests to the admin API, by method, route and status',
      labelNames: ['method', 'route', 'status'],
      registers: [this.registry],
    });
    if (this.enabled) runtimeMetrics.start();
    this.define();
  }

  /** The counters of one protocol (created on first use, so its series exist from the start). */
  protocol(name: string): ProtocolStats {
    let stats = this.protocols.get(name);
    if (!stats) {
      stats = new ProtocolStats(name);
      this.protocols.set(name, stats);
    }
    return stats;
  }

  watchEngine(engine: EngineGauges): void {
    this.engine = engine;
  }

  watchConnections(gauges: ConnectionGauges): void {
    this.connections = gauges;
  }

  watchEarlyCloses(read: () => EarlyCloses | null): void {
    this.earlyCloses = read;
  }

  watchZlib(protocol: string, gauges: ZlibGauges): void {
    this.zlib.set(protocol, gauges);
  }

  /** One admin API request, once answered. */
  adminRequest(method: string, route: string, status: number): void {
    this.adminRequests.inc({ method, route, status: String(status) });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The text exposition: the gateway's families, then the runtime's. */
  async text(): Promise<string> {
    const [own, runtime] = await Promise.all([this.registry.metrics(), runtimeMetrics.text()]);
    return `${own}\n${runtime}`;
  }

  private define(): void {
    const register = [this.registry];
    const protocols = (): ProtocolStats[] => [...this.protocols.values()].filter((s) => s.protocol !== '');
    // prom-client calls `collect` with the metric as `this`; these read the service.
    const engine = (): EngineGauges | null => this.engine;
    const connections = (): Iterable<[string, number]> => this.connections();
    const allStats = (): Iterable<ProtocolStats> => this.protocols.values();
    const zlib = (): Iterable<[string, ZlibGauges]> => this.zlib.entries();

    /** A counter per protocol, read from one field of its stats. */
    const perProtocol = (name: string, help: string, read: (s: ProtocolStats) => number): void => {
      new Counter({
        name,
        help,
        labelNames: ['protocol'],
        registers: register,
        collect() {
          this.reset();
          for (const stats of protocols()) this.inc({ protocol: stats.protocol }, read(stats));
        },
      });
    };

    new Gauge({
      name: 'gatehouse_info',
      help: 'Always 1; the labels say which build, engine and instance this is',
      labelNames: ['version', 'engine', 'instance'],
      registers: register,
      collect() {
        this.reset();
        const current = engine();
        if (current) this.set({ version: VERSION, engine: current.kind, instance: current.instanceId }, 1);
      },
    });
    new Gauge({
      name: 'gatehouse_connections',
      help: 'Open WebSocket connections on this instance',
      labelNames: ['protocol'],
      registers: register,
      collect() {
        this.reset();
        for (const stats of protocols()) this.set({ protocol: stats.protocol }, 0);
        for (const [protocol, open] of connections()) this.set({ protocol }, open);
      },
    });
    new Gauge({
      name: 'gatehouse_zlib_contexts',
      help: 'Per-connection deflate contexts holding their state (zlib transport compression)',
      labelNames: ['protocol'],
      registers: register,
      collect() {
        this.reset();
        for (const [protocol, gauges] of zlib()) this.set({ protocol }, gauges.active);
      },
    });
    new Counter({
      name: 'gatehouse_zlib_contexts_released_total',
      help: 'Deflate contexts released because their connection went idle (picked up again on its next message)',
      labelNames: ['protocol'],
      registers: register,
      collect() {
        this.reset();
        for (const [protocol, gauges] of zlib()) this.inc({ protocol }, gauges.released);
      },
    });
    perProtocol('gatehouse_connections_opened_total', 'WebSocket connections opened', (s) => s.opened);
    new Counter({
      name: 'gatehouse_connections_closed_total',
      help: 'WebSocket connections closed, by close code (a code the protocol does not use: other)',
      labelNames: ['protocol', 'code'],
      registers: register,
      collect() {
        this.reset();
        for (const stats of protocols()) {
          for (const [code, count] of stats.closes) this.inc({ protocol: stats.protocol, code }, count);
        }
      },
    });
    new Counter({
      name: 'gatehouse_upgrades_refused_total',
      help: 'WebSocket upgrades answered with an HTTP error, by status (protocol none: no such path)',
      labelNames: ['protocol', 'status'],
      registers: register,
      collect() {
        this.reset();
        for (const stats of allStats()) {
          for (const [status, count] of stats.refusals) {
            this.inc({ protocol: stats.protocol || 'none', status: String(status) }, count);
          }
        }
      },
    });
    const earlyCloses = (): EarlyCloses | null => this.earlyCloses();
    new Counter({
      name: 'gatehouse_connections_refused_total',
      help: 'TCP connections closed before their first request: per_address (WS_MAX_CONNECTIONS_PER_IP, on accept), handshake_timeout (WS_HANDSHAKE_TIMEOUT_MS)',
      labelNames: ['reason'],
      registers: register,
      collect() {
        this.reset();
        const closes = earlyCloses();
        this.inc({ reason: 'per_address' }, closes?.perAddress ?? 0);
        this.inc({ reason: 'handshake_timeout' }, closes?.handshakeTimeout ?? 0);
      },
    });
    perProtocol('gatehouse_inbound_frames_total', 'Frames received from clients', (s) => s.inboundFrames);
    perProtocol('gatehouse_inbound_bytes_total', 'Payload bytes received from clients', (s) => s.inboundBytes);
    perProtocol('gatehouse_delivered_frames_total', 'Frames written to clients', (s) => s.deliveredFrames);
    perProtocol('gatehouse_delivered_bytes_total', 'Payload bytes written to clients', (s) => s.deliveredBytes);
    perProtocol(
      'gatehouse_slow_consumers_total',
      'Clients cut off because their send buffer passed WS_SEND_BUFFER_LIMIT',
      (s) => s.slowConsumers,
    );
    perProtocol('gatehouse_auth_failures_total', 'Failed authentications', (s) => s.authFailures);
    perProtocol(
      'gatehouse_auth_throttled_total',
      'Upgrades and identifies refused because the address used up AUTH_FAILURE_LIMIT',
      (s) => s.authThrottled,
    );

    const perTopic = (name: string, help: string, read: (t: TopicEntry) => number): void => {
      new Counter({
        name,
        help,
        labelNames: ['topic'],
        registers: register,
        collect() {
          this.reset();
          for (const topic of engine()?.topicStats() ?? []) this.inc({ topic: topic.topic }, read(topic));
        },
      });
    };
    perTopic('gatehouse_bus_published_total', 'Bus messages published by this instance', (t) => t.published);
    perTopic('gatehouse_bus_received_total', 'Bus messages received from other instances', (t) => t.received);
    perTopic(
      'gatehouse_bus_received_bytes_total',
      'Bytes of bus messages received from other instances',
      (t) => t.receivedBytes,
    );
    const engineCounter = (name: string, help: string, read: (gauges: EngineGauges) => number): void => {
      new Counter({
        name,
        help,
        registers: register,
        collect() {
          this.reset();
          const gauges = engine();
          this.inc(gauges ? read(gauges) : 0);
        },
      });
    };
    engineCounter(
      'gatehouse_bus_rejoins_total',
      'Times this instance heard the other instances again after a gap in the bus',
      (e) => e.rejoins,
    );
    engineCounter(
      'gatehouse_bus_repaired_total',
      'Bus messages this instance missed and read back from the bus log',
      (e) => e.busRepaired,
    );
    engineCounter(
      'gatehouse_bus_unrepaired_gaps_total',
      'Gaps in the bus whose messages were no longer in the log (they are lost)',
      (e) => e.busUnrepaired,
    );
    engineCounter(
      'gatehouse_registry_rewrites_total',
      'Times this instance found its part of the cluster view gone from Redis (a flush, an eviction) and rewrote it',
      (e) => e.registryRewrites,
    );
    engineCounter(
      'gatehouse_redis_refused_commands_total',
      'Commands refused at once because too much was waiting for Redis (REDIS_MAX_PENDING_COMMANDS / _BYTES)',
      (e) => e.redisPending()?.refused ?? 0,
    );
    engineCounter(
      'gatehouse_redis_stall_resets_total',
      'Times the command connection was reset because Redis left a command unanswered past its timeout',
      (e) => e.redisPending()?.resets ?? 0,
    );
    const pendingGauge = (name: string, help: string, read: (pending: { commands: number; bytes: number }) => number) =>
      new Gauge({
        name,
        help,
        registers: register,
        collect() {
          const pending = engine()?.redisPending();
          this.set(pending ? read(pending) : 0);
        },
      });
    pendingGauge(
      'gatehouse_redis_pending_commands',
      'Commands sent to Redis and not yet answered (Redis engine only)',
      (p) => p.commands,
    );
    pendingGauge(
      'gatehouse_redis_pending_bytes',
      'Bytes of arguments of the commands waiting for Redis, about (Redis engine only)',
      (p) => p.bytes,
    );
    new Gauge({
      name: 'gatehouse_redis_up',
      help: 'Whether each Redis connection is up (Redis engine only)',
      labelNames: ['connection'],
      registers: register,
      collect() {
        this.reset();
        const links = engine()?.redisLinks() ?? {};
        for (const [connection, up] of Object.entries(links)) this.set({ connection }, up ? 1 : 0);
      },
    });
    new Gauge({
      name: 'gatehouse_event_loop_lag_seconds',
      help: `The longest event-loop delay in the last ${LAG_WINDOW_MS / 1000} to ${(2 * LAG_WINDOW_MS) / 1000} seconds`,
      registers: register,
      collect() {
        this.set(runtimeMetrics.lagSeconds());
      },
    });
    this.registry.registerMetric(latencyFamily(() => engine()?.topicStats() ?? []) as never);
  }
}

/**
 * `gatehouse_delivery_latency_seconds` in prom-client's shape: the bus topics' own
 * histograms, which count without any label lookup (see `LatencyHistogram`).
 */
function latencyFamily(topics: () => Iterable<TopicEntry>) {
  const name = 'gatehouse_delivery_latency_seconds';
  return {
    name,
    help: 'From a publish (on any instance) to the end of its writes to this instance’s clients, per bus topic',
    type: 'histogram',
    aggregator: 'sum',
    get() {
      const values: { labels: Record<string, string | number>; value: number; metricName: string }[] = [];
      for (const { topic, latency } of topics()) {
        if (latency.count === 0) continue;
        let cumulative = 0;
        LATENCY_BUCKETS.forEach((le, i) => {
          cumulative += latency.counts[i] ?? 0;
          values.push({ labels: { topic, le }, value: cumulative, metricName: `${name}_bucket` });
        });
        values.push({ labels: { topic, le: '+Inf' }, value: latency.count, metricName: `${name}_bucket` });
        values.push({ labels: { topic }, value: latency.sum, metricName: `${name}_sum` });
        values.push({ labels: { topic }, value: latency.count, metricName: `${name}_count` });
      }
      return { name, help: this.help, type: this.type, values, aggregator: this.aggregator };
    },
  };
}
