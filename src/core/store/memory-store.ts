import { Store, type WindowHit } from './store.js';

interface Window {
  used: number;
  endsAt: number;
}

/** The embedded engine's store: process memory, gone with the process. */
export class MemoryStore extends Store {
  private readonly values = new Map<string, string>();
  private readonly lists = new Map<string, string[]>();
  private readonly windows = new Map<string, Window>();
  /** When each value written with a time to live goes (epoch ms). */
  private readonly expiries = new Map<string, number>();

  get(key: string): Promise<string | null> {
    const expires = this.expiries.get(key);
    if (expires !== undefined && expires <= Date.now()) {
      this.values.delete(key);
      this.expiries.delete(key);
    }
    return Promise.resolve(this.values.get(key) ?? null);
  }

  set(key: string, value: string, ttlMs?: number): Promise<void> {
    this.values.set(key, value);
    if (ttlMs === undefined) this.expiries.delete(key);
    else this.expiries.set(key, Date.now() + ttlMs);
    return Promise.resolve();
  }

  // One key space, as in Redis: a key is a value, a list or a window counter.
  delete(key: string): Promise<boolean> {
    this.expiries.delete(key);
    const value = this.values.delete(key);
    const list = this.lists.delete(key);
    const window = this.windows.delete(key);
    return Promise.resolve(value || list || window);
  }

  append(key: string, value: string, limit: number): Promise<number> {
    let list = this.lists.get(key);
    if (!list) {
      list = [];
      this.lists.set(key, list);
    }
    list.push(value);
    if (list.length > limit) list.splice(0, list.length - limit);
    return Promise.resolve(list.length);
  }

  range(key: string): Promise<string[]> {
    return Promise.resolve([...(this.lists.get(key) ?? [])]);
  }

  hit(key: string, cost: number, windowMs: number): Promise<WindowHit> {
    const now = Date.now();
    this.sweepWindows(now);
    let window = this.windows.get(key);
    if (!window || window.endsAt <= now) {
      window = { used: 0, endsAt: now + windowMs };
      this.windows.set(key, window);
    }
    window.used += cost;
    return Promise.resolve({ used: window.used, resetInMs: window.endsAt - now });
  }

  peek(key: string): Promise<WindowHit> {
    const now = Date.now();
    const window = this.windows.get(key);
    if (!window || window.endsAt <= now) return Promise.resolve({ used: 0, resetInMs: 0 });
    return Promise.resolve({ used: window.used, resetInMs: window.endsAt - now });
  }

  private lastSweep = 0;

  /** Expired windows are dropped at most once a second, so counters cannot grow without bound. */
  private sweepWindows(now: number): void {
    if (now - this.lastSweep < 1000) return;
    this.lastSweep = now;
    for (const [key, window] of this.windows) if (window.endsAt <= now) this.windows.delete(key);
  }
}
