import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hashToken } from '../../core/auth/secrets.js';
import { MemoryStore } from '../../core/store/memory-store.js';
import { FELIX_TOKEN_FORMAT, FelixTokens, generateFelixToken, TOKEN_ID } from './felix-tokens.js';

/** The token of the Felix document's example. */
const SEED_TOKEN =
  'P154008U84j3qK281567571ze.-U8Rd-0fv63A41U5Z2HTV2ab.f187572I874L3v7Q2mc3-p98.9918y96oDRfAhIa4tAd25788.6B06hv6560lyN482Q069$aJ2.hdw8R9M0yW7$jdah7fJ926u5.833s57J7fCUZe18dZZ116_2C.HV0SK1ZJ77F$9TL3eyO9L9p8.N8Yx55y3N6u98DTl879$880c.1K33047s3Z7b74O03xEska2W.pE804WFW4';

describe('felix token format', () => {
  it("matches the Felix document's example", () => {
    assert.equal(SEED_TOKEN.length, 260);
    assert.match(SEED_TOKEN, FELIX_TOKEN_FORMAT);
  });

  it('generates 260-character tokens with a dot at every non-zero multiple of 25', () => {
    const seen = new Set<string>();
    for (let n = 0; n < 50; n++) {
      const token = generateFelixToken();
      assert.equal(token.length, 260);
      assert.match(token, FELIX_TOKEN_FORMAT);
      for (let i = 0; i < token.length; i++) assert.equal(token[i] === '.', i > 0 && i % 25 === 0, `index ${i}`);
      seen.add(token);
    }
    assert.equal(seen.size, 50);
  });
});

describe('felix tokens', () => {
  it('stores only the digest and authenticates private tokens by it', async () => {
    const store = new MemoryStore();
    const tokens = new FelixTokens(store);
    const issued = await tokens.create({ user: '42' });
    assert.ok(issued);
    assert.match(issued.id, TOKEN_ID);
    assert.equal(issued.public, false);
    assert.match(issued.token, FELIX_TOKEN_FORMAT);
    const stored = await store.get(`felix:token:${hashToken(issued.token)}`);
    assert.ok(stored && !stored.includes(issued.token));
    assert.deepEqual(await tokens.verify(issued.token), { tokenId: issued.id, user: '42' });
  });

  it('refuses missing, unknown, prefixed, oversized and public tokens', async () => {
    const tokens = new FelixTokens(new MemoryStore());
    const mine = await tokens.create({ token: 'a-private-token-0123456789' });
    const open = await tokens.create({ token: 'a-public-token-0123456789', public: true });
    assert.ok(mine && open);
    assert.equal(open.public, true);
    assert.equal(await tokens.verify(undefined), null);
    assert.equal(await tokens.verify(''), null);
    assert.equal(await tokens.verify('unknown-token-0123456789'), null);
    assert.equal(await tokens.verify(`Bearer ${mine.token}`), null);
    assert.equal(await tokens.verify('x'.repeat(513)), null);
    assert.equal(await tokens.verify(open.token), null);
    assert.deepEqual(await tokens.verify(mine.token), { tokenId: mine.id, user: null });
  });

  it('refuses to register the same token twice', async () => {
    const tokens = new FelixTokens(new MemoryStore());
    assert.ok(await tokens.create({ token: 'same-token-0123456789' }));
    assert.equal(await tokens.create({ token: 'same-token-0123456789', public: true }), null);
  });

  it('revokes by id', async () => {
    const tokens = new FelixTokens(new MemoryStore());
    const issued = await tokens.create({});
    assert.ok(issued);
    assert.equal(await tokens.exists(issued.id), true);
    assert.equal(await tokens.revoke(issued.id), true);
    assert.equal(await tokens.verify(issued.token), null);
    assert.equal(await tokens.exists(issued.id), false);
    assert.equal(await tokens.revoke(issued.id), false);
  });
});
