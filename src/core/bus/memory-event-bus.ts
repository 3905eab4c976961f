import { randomBytes } from 'node:crypto';
import { EventBus, type BusMessage } from './event-bus.js';

/** The embedded engine's bus: one process, so every publish is a local dispatch. */
export class MemoryEventBus extends EventBus {
  readonly instanceId = `local-${randomBytes(4).toString('hex')}`;

  publish(message: BusMessage): Promise<void> {
    this.dispatch(message);
    return Promise.resolve();
  }
}
