export interface WindowHit {
  /** Cost used in the current window, this hit included. */
  used: number;
  /** Milliseconds until the window ends and `used` starts again from zero. */
  resetInMs: number;
}

/**
 * Durable state shared by every instance: documents and hashed tokens (`get`/`set`),
 * bounded histories (`append`/`range`) and fixed-window counters (`hit`). Memory by
 * default; Redis when configured, where it survives a restart. Every method of the
 * Redis driver rejects with `EngineUnavailableError` while Redis is away.
 */
export abstract class Store {
  abstract get(key: string): Promise<string | null>;
  /** With `ttlMs`, the key goes that long after this write unless written again. */
  abstract set(key: string, value: string, ttlMs?: number): Promise<void>;
  /** Resolves true when the key existed. */
  abstract delete(key: string): Promise<boolean>;
  /** Appends to a list, keeping only its newest `limit` items; resolves to the new length. */
  abstract append(key: string, value: string, limit: number): Promise<number>;
  /** The whole list, oldest first. */
  abstract range(key: string): Promise<string[]>;
  /**
   * Adds `cost` to a fixed window counter that starts with the first hit and always
   * expires `windowMs` later.
   */
  abstract hit(key: string, cost: number, windowMs: number): Promise<WindowHit>;
  /** Reads a window counter without adding to it. */
  abstract peek(key: string): Promise<WindowHit>;
}
