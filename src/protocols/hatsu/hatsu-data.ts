import { Injectable } from '@nestjs/common';
import { hashToken } from '../../core/auth/secrets.js';
import { Store } from '../../core/store/store.js';

type Json = Record<string, unknown>;

/** A guild as `PUT /admin/hatsu/guilds/:id` stored it, without its member list. */
export interface StoredGuild {
  guild: Json;
  channels: Json[];
}

/** What a hatsu instance advertises to `/available` on the other instances. */
export interface InstanceEntry {
  /** The port clients connect to (`HATSU_PORT`, else the main port). */
  port: number;
  /** `HATSU_PUBLIC_URL`, or null when the host is taken from each discovery request. */
  public: string | null;
  /** Open hatsu sockets on that instance. */
  sessions: number;
}

/**
 * Distinct guilds remembered per user. The list only names candidates (membership is
 * checked against the per-guild member keys), and it grows by one entry per guild a
 * user ever joins; see docs/protocols/hatsu.md "Storage".
 */
export const MAX_GUILDS_PER_USER = 10_000;

/** Store calls for one large member or guild list go out this many at a time. */
const BATCH = 500;

/**
 * hatsu's documents in the shared Store (memory, or Redis where they are shared by every
 * instance and survive restarts). Keys, all under `hatsu:`:
 *
 * - `user:<id>`: the user object (with `_id`);
 * - `guild:<id>`: `{guild, channels}`; `guild-members:<id>`: the member ids as last PUT;
 * - `member:<guild>:<user>`: present while the user is a member (the truth identify checks);
 * - `user-guilds:<id>`: the guilds the user was ever added to, once each (candidates);
 * - `session:<sha256 of the session id>`: `{"user_id"}`; the id itself is never stored;
 * - `presence:<user>`: the user's last presence;
 * - `instance:<instance id>`: an `InstanceEntry`, for discovery.
 */
@Injectable()
export class HatsuData {
  private readonly locks = new Map<string, Promise<void>>();

  constructor(private readonly store: Store) {}

  async getUser(id: string): Promise<Json | null> {
    return parse<Json>(await this.store.get(`hatsu:user:${id}`));
  }

  putUser(id: string, user: Json): Promise<void> {
    return this.store.set(`hatsu:user:${id}`, JSON.stringify({ ...user, _id: id }));
  }

  async getGuild(id: string): Promise<StoredGuild | null> {
    return parse<StoredGuild>(await this.store.get(`hatsu:guild:${id}`));
  }

  /**
   * Stores a guild and its members; resolves with who joined and who left. Writes go
   * in an order that a failure half-way (Redis down) and a retry both leave right: the
   * new members' keys first, the departed members' keys next, the member list (the base
   * of the next diff) last.
   */
  putGuild(
    id: string,
    guild: StoredGuild,
    members: readonly string[],
  ): Promise<{ added: string[]; removed: string[] }> {
    return this.exclusive(`guild:${id}`, async () => {
      const before = new Set(parse<string[]>(await this.store.get(`hatsu:guild-members:${id}`)) ?? []);
      const after = new Set(members);
      const added = [...after].filter((m) => !before.has(m));
      const removed = [...before].filter((m) => !after.has(m));
      await this.store.set(`hatsu:guild:${id}`, JSON.stringify(guild));
      await inBatches(added, async (user) => {
        await this.store.set(`hatsu:member:${id}:${user}`, '1');
        await this.remember(user, id);
      });
      await inBatches(removed, (user) => this.store.delete(`hatsu:member:${id}:${user}`));
      await this.store.set(`hatsu:guild-members:${id}`, JSON.stringify([...after]));
      return { added, removed };
    });
  }

  /** The guilds `userId` is a member of, in the order they were joined, for GUILD_INIT. */
  async guildsOf(userId: string): Promise<{ id: string; guild: StoredGuild }[]> {
    const candidates = [...new Set(await this.store.range(`hatsu:user-guilds:${userId}`))];
    const found: { id: string; guild: StoredGuild }[] = [];
    for (let i = 0; i < candidates.length; i += BATCH) {
      const batch = await Promise.all(
        candidates.slice(i, i + BATCH).map(async (id) => {
          if ((await this.store.get(`hatsu:member:${id}:${userId}`)) === null) return null;
          const guild = await this.getGuild(id);
          return guild ? { id, guild } : null;
        }),
      );
      for (const entry of batch) if (entry) found.push(entry);
    }
    return found;
  }

  /** The user a session id belongs to, or null. */
  async sessionUser(sessionId: string): Promise<string | null> {
    const stored = parse<{ user_id: string }>(await this.store.get(sessionKey(sessionId)));
    return stored?.user_id ?? null;
  }

  /** Binds a session id to a user; resolves with the user it belonged to before, if any. */
  putSession(sessionId: string, userId: string): Promise<string | null> {
    return this.exclusive(sessionKey(sessionId), async () => {
      const before = await this.sessionUser(sessionId);
      await this.store.set(sessionKey(sessionId), JSON.stringify({ user_id: userId }));
      return before;
    });
  }

  /** Resolves false when the session id was unknown. */
  deleteSession(sessionId: string): Promise<boolean> {
    return this.store.delete(sessionKey(sessionId));
  }

  putPresence(userId: string, presence: unknown): Promise<void> {
    return this.store.set(`hatsu:presence:${userId}`, JSON.stringify(presence));
  }

  async getInstance(instanceId: string): Promise<InstanceEntry | null> {
    return parse<InstanceEntry>(await this.store.get(`hatsu:instance:${instanceId}`));
  }

  /** An instance's entry, gone `ttlMs` after its last write: a crashed instance leaves nothing behind. */
  putInstance(instanceId: string, entry: InstanceEntry, ttlMs: number): Promise<void> {
    return this.store.set(`hatsu:instance:${instanceId}`, JSON.stringify(entry), ttlMs);
  }

  async deleteInstance(instanceId: string): Promise<void> {
    await this.store.delete(`hatsu:instance:${instanceId}`);
  }

  /** Adds a guild to the user's candidates once (a race between instances can only duplicate it). */
  private remember(userId: string, guildId: string): Promise<void> {
    return this.exclusive(`user-guilds:${userId}`, async () => {
      const key = `hatsu:user-guilds:${userId}`;
      if ((await this.store.range(key)).includes(guildId)) return;
      await this.store.append(key, guildId, MAX_GUILDS_PER_USER);
    });
  }

  /**
   * Runs read-modify-write sequences on one key one after another within this process.
   * (Across instances, the last writer of a guild wins, as with any PUT.)
   */
  private async exclusive<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = previous.then(() => mine);
    this.locks.set(key, tail);
    await previous;
    try {
      return await fn();
    } finally {
      release();
      if (this.locks.get(key) === tail) this.locks.delete(key);
    }
  }
}

/** Session ids are bearer secrets: stored under their SHA-256, like every token. */
export function sessionKey(sessionId: string): string {
  return `hatsu:session:${hashToken(sessionId)}`;
}

function parse<T>(raw: string | null): T | null {
  if (raw === null) return null;
  try {
    return JSON.parse(raw) as T;
  } catch {
    return null;
  }
}

async function inBatches<T>(items: readonly T[], fn: (item: T) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += BATCH) await Promise.all(items.slice(i, i + BATCH).map(fn));
}
