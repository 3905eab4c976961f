import type { EnvSchema } from '../../src/config/env.schema.js';
import { GatehouseLogger } from '../../src/core/logging/gatehouse-logger.js';
import { Metrics } from '../../src/core/metrics/metrics.js';
import { MemoryClientRegistry } from '../../src/core/registry/memory-client-registry.js';
import { UpgradeLimits } from '../../src/core/ws/upgrade-limits.js';
import { PeerBus } from './peer-bus.js';

/** What a protocol's service is built on, on the embedded engine: for unit specs of its state machine. */
export interface MemoryCore {
  logger: GatehouseLogger;
  bus: PeerBus;
  registry: MemoryClientRegistry;
  limits: UpgradeLimits;
}

export function memoryCore(config: EnvSchema): MemoryCore {
  const logger = new GatehouseLogger(config);
  const bus = new PeerBus();
  const registry = new MemoryClientRegistry(bus, logger.pino);
  return { logger, bus, registry, limits: new UpgradeLimits(config, new Metrics(config)) };
}
