import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import type { AppConfig } from '../../config/app-config.js';
import type { GatehouseLogger } from '../../core/logging/gatehouse-logger.js';
import { isAuthenticated, JacTokens, newJacId, newRootId, PUBLIC_IDENTITY, PUBLIC_ROOT } from './jac-tokens.js';

const SECRET = 'unit-test-secret-0123456789';
const logger = { pino: pino({ level: 'silent' }) } as unknown as GatehouseLogger;
const tokens = new JacTokens({ JAC_JWT_SECRET: SECRET } as AppConfig, logger);

function forge(header: object, payload: object, secret = SECRET): string {
  const h = Buffer.from(JSON.stringify(header)).toString('base64url');
  const p = Buffer.from(JSON.stringify(payload)).toString('base64url');
  const s = createHmac('sha256', secret).update(`${h}.${p}`).digest('base64url');
  return `${h}.${p}.${s}`;
}

describe('jac tokens', () => {
  const root = newRootId();

  it('issues tokens that verify to their root', () => {
    for (const presented of [tokens.issue(root), `Bearer ${tokens.issue(root)}`, `bearer ${tokens.issue(root)}`]) {
      const identity = tokens.verifyHeader(presented);
      assert.equal(identity.rootId, root);
      assert.equal(identity.authenticated, true);
      assert.ok(isAuthenticated(identity));
    }
    assert.equal(tokens.verify(tokens.issue(root, 60)).expiresAt, Math.floor(Date.now() / 1000) + 60);
  });

  it('treats missing, malformed, forged and expired tokens as public', () => {
    const now = Math.floor(Date.now() / 1000);
    const cases = [
      undefined,
      '',
      'garbage',
      'a.b.c',
      forge({ alg: 'HS256' }, { root_id: root, exp: now - 1 }),
      forge({ alg: 'HS256' }, { root_id: root, exp: now + 60 }, 'another-secret-entirely'),
      forge({ alg: 'none' }, { root_id: root, exp: now + 60 }),
      forge({ alg: 'HS256' }, { root_id: root }),
      forge({ alg: 'HS256' }, { root_id: 'not-a-root', exp: now + 60 }),
      `${tokens.issue(root)}x`,
    ];
    for (const token of cases) assert.deepEqual(tokens.verify(token), PUBLIC_IDENTITY, String(token));
    assert.equal(PUBLIC_IDENTITY.rootId, PUBLIC_ROOT);
  });

  it('stops counting as authenticated once the token has expired', () => {
    const identity = tokens.verify(tokens.issue(root, 60));
    assert.ok(isAuthenticated(identity));
    assert.equal(isAuthenticated(identity, Date.now() + 61_000), false);
    assert.equal(isAuthenticated(PUBLIC_IDENTITY), false);
  });

  it('makes ids in the original formats', () => {
    assert.match(newRootId(), /^n::[0-9a-f]{24}$/);
    assert.match(newJacId(), /^\d+:[0-9a-f]{32}$/);
  });
});
