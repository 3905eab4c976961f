import { Injectable } from '@nestjs/common';
import { Store, type WindowHit } from '../../core/store/store.js';
import type { FatesTarget } from './fates.codec.js';

const tokenKey = (target: FatesTarget): string => `fates:token:${target.kind}:${target.id}`;
const rateKey = (target: FatesTarget): string => `fates:ratelimit:${target.kind}:${target.id}`;
const historyKey = (chan: string): string => `fates:history:${chan}`;

/**
 * Fates' data in the shared Store (memory, or Redis where every instance shares it and it
 * survives restarts). Keys, all under `fates:`:
 *
 * - `token:<bot|server>:<id>`: the SHA-256 of the bot's or server's API token;
 * - `ratelimit:<bot|server>:<id>`: the request budget's window counter, shared by every
 *   connection of that id on every instance;
 * - `history:<bot-id|server-id|global>`: the stored events, oldest first, for `send_all`.
 */
@Injectable()
export class FatesData {
  constructor(private readonly store: Store) {}

  /** The stored token digest, or null when the id has no token. */
  tokenDigest(target: FatesTarget): Promise<string | null> {
    return this.store.get(tokenKey(target));
  }

  setTokenDigest(target: FatesTarget, digest: string): Promise<void> {
    return this.store.set(tokenKey(target), digest);
  }

  /** Resolves false when there was no token. */
  deleteToken(target: FatesTarget): Promise<boolean> {
    return this.store.delete(tokenKey(target));
  }

  /** Spends `cost` of the id's budget in the current window. */
  spend(target: FatesTarget, cost: number, windowMs: number): Promise<WindowHit> {
    return this.store.hit(rateKey(target), cost, windowMs);
  }

  /** The budget spent in the current window, without spending. */
  spent(target: FatesTarget): Promise<WindowHit> {
    return this.store.peek(rateKey(target));
  }

  /** Appends an event's JSON to a channel's history, keeping its newest `limit`. */
  appendEvent(chan: string, json: string, limit: number): Promise<number> {
    return this.store.append(historyKey(chan), json, limit);
  }

  /** A channel's stored events as stored (JSON text), oldest first. */
  events(chan: string): Promise<string[]> {
    return this.store.range(historyKey(chan));
  }
}
