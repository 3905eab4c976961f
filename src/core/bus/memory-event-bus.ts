import { randomBytes } from 'node:crypto';
import { EventBus, type EventBusOptions } from './event-bus.js';

/** The embedded engine's bus: one process, so every publish is a local dispatch. */
export class MemoryEventBus extends EventBus {
  readonly instanceId = `local-${randomBytes(4).toString('hex')}`;

  constructor(options: EventBusOptions = {}) {
    super(options);
  }

  /** There are no other instances. */
  protected send(): Promise<void> {
    return Promise.resolve();
  }
}
