import type { Logger as Pino } from 'pino';
import type { EventBus } from '../bus/event-bus.js';
import { ClientRegistry, type CountTarget } from './client-registry.js';
import type { ClientInfo } from './connection.js';

/** One process: the cluster is this instance. */
export class MemoryClientRegistry extends ClientRegistry {
  constructor(bus: EventBus, log: Pino) {
    super(bus, log);
  }

  list(): Promise<ClientInfo[]> {
    return Promise.resolve([...this.local()].map((c) => c.info(this.instanceId)));
  }

  instances(): Promise<string[]> {
    return Promise.resolve([this.instanceId]);
  }

  locate(id: string): Promise<ClientInfo | null> {
    return Promise.resolve(this.get(id)?.info(this.instanceId) ?? null);
  }

  /** There are no other instances. */
  remoteCount(_protocol: string, _target: CountTarget): Promise<number> {
    return Promise.resolve(0);
  }

  protected mirror(): void {}
  protected unmirror(): void {}
  protected countChanged(): void {}
}
