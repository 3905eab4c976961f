import { Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { AppConfig } from '../../config/app-config.js';
import type { EventBus, TopicEntry } from '../bus/event-bus.js';
import { MemoryEventBus } from '../bus/memory-event-bus.js';
import { RedisEventBus } from '../bus/redis-event-bus.js';
import { GatehouseLogger } from '../logging/gatehouse-logger.js';
import { Metrics, type EngineGauges } from '../metrics/metrics.js';
import type { ClientRegistry } from '../registry/client-registry.js';
import { MemoryClientRegistry } from '../registry/memory-client-registry.js';
import { RedisClientRegistry } from '../registry/redis-client-registry.js';
import { MemoryStore } from '../store/memory-store.js';
import { RedisStore } from '../store/redis-store.js';
import type { Store } from '../store/store.js';
import type { RedisPending } from './command-gate.js';
import { RedisConnections, topologyOf } from './redis-connections.js';

const READY_PING_TIMEOUT_MS = 1000;

/** How long start-up waits for the bus to listen before it goes on, not ready. */
const STARTUP_LISTEN_MS = 3000;

/**
 * Chooses the engine from the configuration (`REDIS_URL`, `REDIS_SENTINELS` or
 * `REDIS_CLUSTER_NODES`; none: embedded) and owns its lifetime: the embedded memory
 * drivers when unset, the Redis drivers when set. Everything else injects the
 * `EventBus`, `Store` and `ClientRegistry` it exposes.
 */
@Injectable()
export class Engine implements OnModuleInit, OnApplicationShutdown, EngineGauges {
  readonly kind: 'memory' | 'redis';
  readonly bus: EventBus;
  readonly store: Store;
  readonly registry: ClientRegistry;
  private readonly redis: RedisConnections | null;

  constructor(config: AppConfig, logger: GatehouseLogger, metrics: Metrics) {
    const log = logger.child({ context: 'Engine' });
    const timing = metrics.enabled;
    const topology = topologyOf(config);
    if (topology === null) {
      this.kind = 'memory';
      this.redis = null;
      this.bus = new MemoryEventBus({ log, timing });
      this.store = new MemoryStore();
      this.registry = new MemoryClientRegistry(this.bus, log);
    } else {
      this.kind = 'redis';
      this.redis = new RedisConnections(topology, config.REDIS_KEY_PREFIX, log, {
        commands: config.REDIS_MAX_PENDING_COMMANDS,
        bytes: config.REDIS_MAX_PENDING_BYTES,
      });
      const busLog =
        config.BUS_LOG === 'on' ? { maxLength: config.BUS_LOG_MAX_LEN, ttlMs: config.BUS_LOG_TTL_MS } : null;
      this.bus = new RedisEventBus(this.redis, log, { timing, busLog });
      this.store = new RedisStore(this.redis);
      this.registry = new RedisClientRegistry(this.bus, log, this.redis, { heartbeatMs: 2000, ttlMs: 6000 });
    }
    this.registry.countWith((protocol) => metrics.protocol(protocol));
    metrics.watchEngine(this);
  }

  get instanceId(): string {
    return this.bus.instanceId;
  }

  topicStats(): Iterable<TopicEntry> {
    return this.bus.topicStats();
  }

  get rejoins(): number {
    return this.bus.rejoins;
  }

  get busRepaired(): number {
    return this.bus instanceof RedisEventBus ? this.bus.repaired : 0;
  }

  get busUnrepaired(): number {
    return this.bus instanceof RedisEventBus ? this.bus.unrepaired : 0;
  }

  get registryRewrites(): number {
    return this.registry instanceof RedisClientRegistry ? this.registry.rewrites : 0;
  }

  redisLinks(): Record<string, boolean> | null {
    if (!this.redis) return null;
    return {
      command: this.redis.commandUp,
      subscriber: this.redis.subscribed,
      bus: (this.bus as RedisEventBus).isListening,
    };
  }

  redisPending(): RedisPending | null {
    return this.redis?.pending ?? null;
  }

  async onModuleInit(): Promise<void> {
    if (!this.redis) return;
    (this.bus as RedisEventBus).start();
    (this.registry as RedisClientRegistry).start();
    await this.redis.connect();
    // Ready to serve once the bus listens; a Redis that does not answer at start-up is not
    // waited for beyond this (the instance starts not-ready and catches up by itself).
    await (this.bus as RedisEventBus).listeningWithin(STARTUP_LISTEN_MS);
  }

  /**
   * True when the engine answers: always for memory; for Redis, a PING on the command
   * connection and the bus subscribed again after any reconnect.
   */
  async isReady(): Promise<boolean> {
    if (this.redis === null) return true;
    if (!(this.bus as RedisEventBus).isListening) return false;
    return this.redis.ping(READY_PING_TIMEOUT_MS);
  }

  /**
   * Whether a write can reach every instance right now, without a round trip: both
   * Redis connections up and the bus subscribed. Always true for memory.
   */
  get available(): boolean {
    return this.redis === null || (this.redis.isUp && (this.bus as RedisEventBus).isListening);
  }

  // Runs after Nest has closed every socket, so the last disconnects still reach Redis.
  async onApplicationShutdown(): Promise<void> {
    if (!this.redis) return;
    await (this.registry as RedisClientRegistry).stop();
    await this.redis.close();
  }
}
