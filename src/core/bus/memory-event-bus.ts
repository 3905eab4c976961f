import { randomBytes } from 'node:crypto';
import type { Logger as Pino } from 'pino';
import { EventBus, type BusMessage } from './event-bus.js';

/** The embedded engine's bus: one process, so every publish is a local dispatch. */
export class MemoryEventBus extends EventBus {
  readonly instanceId = `local-${randomBytes(4).toString('hex')}`;

  constructor(log?: Pino) {
    super(log);
  }

  publish(message: BusMessage): Promise<void> {
    this.dispatch(message);
    return Promise.resolve();
  }
}
