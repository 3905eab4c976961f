import type { BusMessage } from '../../src/core/bus/event-bus.js';
import { MemoryEventBus } from '../../src/core/bus/memory-event-bus.js';

/**
 * The memory bus, which can also be handed a message as if another instance had published
 * it (its bytes go through the topic's `parse`, as a message from Redis does), and be told
 * it had a gap, as the Redis bus is on a reconnect.
 */
export class PeerBus extends MemoryEventBus {
  fromAnotherInstance(message: BusMessage): void {
    this.received(message, message.payload.length, 0);
  }

  gap(): void {
    this.rejoined();
  }
}
