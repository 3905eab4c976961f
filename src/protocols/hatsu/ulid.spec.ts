import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ULID_PATTERN, ulid, ulidTime } from './ulid.js';

describe('ulid', () => {
  it('is 26 Crockford base32 characters', () => {
    for (let i = 0; i < 200; i++) assert.match(ulid(), ULID_PATTERN);
  });

  it('encodes the time in the first 10 characters, most significant first', () => {
    const zero = Buffer.alloc(10);
    assert.equal(ulid(0, zero), '0'.repeat(26));
    assert.equal(ulid(1, zero), `${'0'.repeat(9)}1${'0'.repeat(16)}`);
    assert.equal(ulid(32, zero).slice(0, 10), '0000000010');
    // The ULID spec's maximum: 2^48 - 1 ms is 7ZZZZZZZZZ.
    assert.equal(ulid(2 ** 48 - 1, zero).slice(0, 10), '7ZZZZZZZZZ');
    // The spec's example time: 1469918176385 ms is 01ARYZ6S41.
    assert.equal(ulid(1469918176385, zero).slice(0, 10), '01ARYZ6S41');
    const now = Date.now();
    assert.equal(ulidTime(ulid(now)), now);
  });

  it('encodes the 80 random bits in the last 16 characters, 5 bits each', () => {
    const time = '0'.repeat(10);
    assert.equal(ulid(0, Buffer.alloc(10, 0xff)), `${time}${'Z'.repeat(16)}`);
    // 0x08 0x42 ... : bits 00001 00001 00001 00001 ... (the byte pattern 0x08 0x42 0x10 0x84 0x21 repeats every 40 bits).
    const pattern = Buffer.from([0x08, 0x42, 0x10, 0x84, 0x21, 0x08, 0x42, 0x10, 0x84, 0x21]);
    assert.equal(ulid(0, pattern), `${time}${'1'.repeat(16)}`);
    // The first random character carries the highest bits of the first byte.
    const high = Buffer.alloc(10);
    high[0] = 0b1000_0000;
    assert.equal(ulid(0, high), `${time}G${'0'.repeat(15)}`);
    const low = Buffer.alloc(10);
    low[9] = 0b0000_0001;
    assert.equal(ulid(0, low), `${time}${'0'.repeat(15)}1`);
  });

  it('never uses I, L, O or U, and differs every call', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      const id = ulid();
      assert.doesNotMatch(id, /[ILOU]/);
      seen.add(id);
    }
    assert.equal(seen.size, 1000);
  });

  it('sorts by time', () => {
    const random = Buffer.alloc(10, 0xff);
    const earlier = ulid(1_700_000_000_000, random);
    const later = ulid(1_700_000_000_001, Buffer.alloc(10));
    assert.ok(earlier < later);
  });

  it('refuses times outside 48 bits and randomness that is not 10 bytes', () => {
    assert.throws(() => ulid(-1), RangeError);
    assert.throws(() => ulid(2 ** 48), RangeError);
    assert.throws(() => ulid(1.5), RangeError);
    assert.throws(() => ulid(0, Buffer.alloc(9)), RangeError);
    assert.throws(() => ulidTime('short'), RangeError);
    assert.throws(() => ulidTime('U'.repeat(26)), RangeError);
  });
});
