import type { HatsuPresence } from './hatsu.codec.js';

/**
 * One session's budget of client presences: at most `limit` per window of `windowMs` go out
 * (each is stored and copied to every session sharing a guild, so a flood would amplify).
 * Past the budget nothing is closed and nothing is lost: the latest presence is held,
 * replacing any held before it (a presence is state, only the last one matters), and sent
 * when the window ends. At most one held presence and one timer (docs/protocols/hatsu.md
 * "Presence").
 */
export class PresenceThrottle {
  private inWindow = 0;
  /** When the current window ends (`performance.now()`). */
  private windowEnd = 0;
  private held: HatsuPresence | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
    private readonly send: (presence: HatsuPresence) => void,
  ) {}

  received(presence: HatsuPresence): void {
    // While one is held nothing is sent directly, so a late timer can never send an older
    // presence after a newer one.
    if (this.timer) {
      this.held = presence;
      return;
    }
    const now = performance.now();
    if (now >= this.windowEnd) {
      this.windowEnd = now + this.windowMs;
      this.inWindow = 0;
    }
    if (this.inWindow < this.limit) {
      this.inWindow++;
      this.send(presence);
      return;
    }
    this.held = presence;
    this.timer = setTimeout(() => this.release(), this.windowEnd - now);
    this.timer.unref();
  }

  /** Drops the held presence and its timer: the session ended. */
  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.held = null;
  }

  private release(): void {
    const presence = this.held;
    this.timer = null;
    this.held = null;
    if (presence === null) return;
    // The timer ends the window, whatever the clock read: the held presence opens the next one.
    this.windowEnd = performance.now() + this.windowMs;
    this.inWindow = 1;
    this.send(presence);
  }
}
