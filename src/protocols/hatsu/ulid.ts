import { randomBytes } from 'node:crypto';

/** Crockford's base32: no I, L, O or U. */
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const MAX_TIME = 2 ** 48 - 1;
const TIME_CHARS = 10;
const RANDOM_CHARS = 16;

export const ULID_PATTERN = /^[0-7][0-9A-HJKMNP-TV-Z]{25}$/;

/**
 * A ULID (https://github.com/ulid/spec): 48 bits of milliseconds since the epoch, then
 * 80 random bits, as 26 Crockford base32 characters. It sorts by creation time. hatsu's
 * `s` fields carried ULIDs (the original used `ulid-py`); docs/protocols/hatsu.md.
 */
export function ulid(now: number = Date.now(), random: Buffer = randomBytes(10)): string {
  if (!Number.isInteger(now) || now < 0 || now > MAX_TIME) throw new RangeError('ULID time must fit in 48 bits');
  if (random.length !== 10) throw new RangeError('ULID randomness must be 10 bytes');
  let time = '';
  let t = now;
  for (let i = 0; i < TIME_CHARS; i++) {
    time = ALPHABET.charAt(t % 32) + time;
    t = Math.floor(t / 32);
  }
  // 80 bits are exactly 16 groups of 5: read them most significant first.
  let bits = 0;
  let value = 0;
  let rest = '';
  for (const byte of random) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      rest += ALPHABET.charAt((value >> bits) & 31);
    }
    value &= (1 << bits) - 1;
  }
  return time + rest;
}

/** The millisecond timestamp a ULID carries. */
export function ulidTime(id: string): number {
  if (id.length !== TIME_CHARS + RANDOM_CHARS) throw new RangeError('not a ULID');
  let time = 0;
  for (const char of id.slice(0, TIME_CHARS)) {
    const digit = ALPHABET.indexOf(char);
    if (digit < 0) throw new RangeError('not a ULID');
    time = time * 32 + digit;
  }
  return time;
}
