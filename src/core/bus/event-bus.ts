import type { Logger as Pino } from 'pino';

/**
 * Who a bus message is for. Ids are protocol-scoped: the protocol named by the
 * message's `topic` resolves them against its own clients.
 */
export type Target =
  | { readonly kind: 'user'; readonly ids: readonly string[] }
  | { readonly kind: 'channel'; readonly ids: readonly string[] }
  | { readonly kind: 'client'; readonly ids: readonly string[] }
  | { readonly kind: 'all' };

export interface BusMessage {
  /** The stream the message belongs to: a protocol name, or `control` for cluster housekeeping. */
  readonly topic: string;
  readonly target: Target;
  /** Opaque bytes, usually a frame already encoded for the wire, so no instance re-serialises it. */
  readonly payload: Buffer;
}

export type BusHandler = (message: BusMessage) => void;

/**
 * The event bus: a publish is delivered to this instance's subscribers at once and
 * to every other instance exactly once. Two drivers: memory (one process) and Redis.
 */
export abstract class EventBus {
  private readonly handlers = new Map<string, Set<BusHandler>>();

  /** This process's id in the cluster. */
  abstract readonly instanceId: string;

  /** `log` receives the errors subscribers throw; without it they are dropped. */
  protected constructor(private readonly handlerLog?: Pino) {}

  /**
   * Delivers locally (synchronously, before returning) and then to other instances.
   * Rejects with `EngineUnavailableError` when other instances could not be told;
   * local delivery has happened regardless.
   */
  abstract publish(message: BusMessage): Promise<void>;

  private readonly rejoinListeners = new Set<() => void>();

  /**
   * Runs `listener` each time this instance hears the other instances again after a
   * gap (a Redis reconnect). Messages published during the gap are lost, as pub/sub
   * loses them, so a protocol re-checks here what a missed message could have changed:
   * revoked tokens and sessions above all. Never runs on the memory bus.
   */
  onRejoin(listener: () => void): () => void {
    this.rejoinListeners.add(listener);
    return () => this.rejoinListeners.delete(listener);
  }

  protected rejoined(): void {
    for (const listener of this.rejoinListeners) {
      try {
        listener();
      } catch (err) {
        this.handlerLog?.error({ err }, 'rejoin listener failed');
      }
    }
  }

  subscribe(topic: string, handler: BusHandler): () => void {
    let set = this.handlers.get(topic);
    if (!set) {
      set = new Set();
      this.handlers.set(topic, set);
    }
    set.add(handler);
    return () => set.delete(handler);
  }

  /**
   * Hands a message to this instance's subscribers of its topic. A subscriber that
   * throws is logged and skipped: it must not keep the message from the others, from
   * other instances (a publish dispatches before it sends), or crash the Redis reader.
   */
  protected dispatch(message: BusMessage): void {
    const set = this.handlers.get(message.topic);
    if (!set) return;
    for (const handler of set) {
      try {
        handler(message);
      } catch (err) {
        this.handlerLog?.error({ err, topic: message.topic }, 'bus subscriber failed');
      }
    }
  }
}
