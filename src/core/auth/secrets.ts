import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** Tokens are stored as SHA-256 digests, never in the clear. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/**
 * Constant-time comparison of two secrets of any length: both sides are digested
 * first, so neither the content nor the length leaks through timing.
 */
export function secretsEqual(a: string, b: string): boolean {
  const da = createHash('sha256').update(a, 'utf8').digest();
  const db = createHash('sha256').update(b, 'utf8').digest();
  return timingSafeEqual(da, db);
}

/** Compares a presented token with a stored `hashToken` digest in constant time. */
export function matchesHash(token: string, digestHex: string): boolean {
  const presented = createHash('sha256').update(token, 'utf8').digest();
  const stored = Buffer.from(digestHex, 'hex');
  return stored.length === presented.length && timingSafeEqual(presented, stored);
}

export function randomToken(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}
