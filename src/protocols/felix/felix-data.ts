import { Injectable } from '@nestjs/common';
import { isJsonObject, type JsonObject } from '../../core/json.js';
import { Store } from '../../core/store/store.js';

export type DocumentKind = 'guild' | 'user';

/** Where the bot's last status report is kept, so that a new instance or a restart finds it. */
export const STATUS_KEY = 'felix:status';

const documentKey = (kind: DocumentKind, id: string): string => `felix:${kind}:${id}`;

/**
 * Felix's documents in the shared Store (memory, or Redis where every instance sees them and
 * they survive restarts): the guild and user entries of `PUT /admin/felix/{guilds,users}/:id`
 * and the bot's status. Tokens are `FelixTokens`' (felix-tokens.ts). Keys, all under `felix:`:
 * `guild:<id>`, `user:<id>` (the object as given), `status` (the last report).
 */
@Injectable()
export class FelixData {
  constructor(private readonly store: Store) {}

  putDocument(kind: DocumentKind, id: string, data: JsonObject): Promise<void> {
    return this.store.set(documentKey(kind, id), JSON.stringify(data));
  }

  /** The stored object, or null when there is none (or what is stored is not an object). */
  async getDocument(kind: DocumentKind, id: string): Promise<JsonObject | null> {
    const raw = await this.store.get(documentKey(kind, id));
    if (raw === null) return null;
    try {
      const value: unknown = JSON.parse(raw);
      return isJsonObject(value) ? value : null;
    } catch {
      return null;
    }
  }

  /** The stored status report as stored (the caller parses it: an unreadable one means "none"). */
  getStatus(): Promise<string | null> {
    return this.store.get(STATUS_KEY);
  }

  putStatus(encoded: string): Promise<void> {
    return this.store.set(STATUS_KEY, encoded);
  }
}
