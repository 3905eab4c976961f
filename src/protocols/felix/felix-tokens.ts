import { Injectable } from '@nestjs/common';
import { randomInt, randomUUID } from 'node:crypto';
import { hashToken, matchesHash } from '../../core/auth/secrets.js';
import { Store } from '../../core/store/store.js';

/** Who an accepted upgrade is: the token it used (for revocation) and the token's user, if any. */
export interface FelixPrincipal {
  tokenId: string;
  user: string | null;
}

export interface IssuedToken {
  id: string;
  token: string;
  public: boolean;
}

interface TokenRecord {
  id: string;
  hash: string;
  user: string | null;
  public: boolean;
  createdAt: string;
}

// Felix's own token shape (tokengenerator.js): 260 characters, a `.` at every index that is a
// non-zero multiple of 25, the rest from [A-Za-z0-9_$-].
const TOKEN_LENGTH = 260;
const DOT_EVERY = 25;
const ALPHABET = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_$-';
const PART = '[A-Za-z0-9_$-]';

/** A token in Felix's format: `<25>.<24>.<24>.<24>.<24>.<24>.<24>.<24>.<24>.<24>.<9>`. */
export const FELIX_TOKEN_FORMAT = new RegExp(`^${PART}{25}(?:\\.${PART}{24}){9}\\.${PART}{9}$`);

/** Token ids are UUID v4 strings. */
export const TOKEN_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** No stored token is longer; a longer header is refused without a lookup. */
export const MAX_TOKEN_LENGTH = 512;

/**
 * A new token in Felix's format. The original drew from `Math.random` with half the
 * characters digits; this draws every character uniformly from a CSPRNG (about 1500 bits).
 */
export function generateFelixToken(): string {
  let token = '';
  for (let i = 0; i < TOKEN_LENGTH; i++) {
    token += i !== 0 && i % DOT_EVERY === 0 ? '.' : ALPHABET[randomInt(ALPHABET.length)];
  }
  return token;
}

const byHash = (hash: string): string => `felix:token:${hash}`;
const byId = (id: string): string => `felix:token-id:${id}`;

/**
 * Felix API tokens, in the shared Store so every instance sees them. Only the SHA-256 of a
 * token is kept; a presented token is looked up by its digest and compared in constant time.
 */
@Injectable()
export class FelixTokens {
  constructor(private readonly store: Store) {}

  /** Stores a token (generated when `token` is absent); `null` when that token already exists. */
  async create(options: { token?: string; user?: string; public?: boolean }): Promise<IssuedToken | null> {
    const token = options.token ?? generateFelixToken();
    const hash = hashToken(token);
    if ((await this.store.get(byHash(hash))) !== null) return null;
    const record: TokenRecord = {
      id: randomUUID(),
      hash,
      user: options.user ?? null,
      public: options.public ?? false,
      createdAt: new Date().toISOString(),
    };
    // The id entry first: a write interrupted between the two leaves a token that does not
    // authenticate, never one that authenticates and cannot be revoked.
    await this.store.set(byId(record.id), hash);
    await this.store.set(byHash(hash), JSON.stringify(record));
    return { id: record.id, token, public: record.public };
  }

  /** Deletes a token; false when there is no such id. Authentication stops before this resolves. */
  async revoke(id: string): Promise<boolean> {
    const hash = await this.store.get(byId(id));
    if (hash === null) return false;
    await this.store.delete(byHash(hash));
    await this.store.delete(byId(id));
    return true;
  }

  async exists(id: string): Promise<boolean> {
    return (await this.store.get(byId(id))) !== null;
  }

  /**
   * The raw `Authorization` header (no `Bearer`): the principal of a registered, non-public
   * token, else null. Public tokens are refused, as the document says (the original let them in).
   */
  async verify(header: string | undefined): Promise<FelixPrincipal | null> {
    if (header === undefined || header.length === 0 || header.length > MAX_TOKEN_LENGTH) return null;
    const raw = await this.store.get(byHash(hashToken(header)));
    if (raw === null) return null;
    const record = JSON.parse(raw) as TokenRecord;
    if (!matchesHash(header, record.hash) || record.public) return null;
    return { tokenId: record.id, user: record.user };
  }
}
