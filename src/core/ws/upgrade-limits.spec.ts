import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { describe, it } from 'node:test';
import { validateEnv } from '../../config/env.schema.js';
import { UpgradeLimits } from './upgrade-limits.js';

function limits(env: Record<string, string>): UpgradeLimits {
  return new UpgradeLimits(validateEnv(env));
}

function request(ip: string, origin?: string): IncomingMessage {
  return {
    headers: origin === undefined ? {} : { origin },
    socket: { remoteAddress: ip },
  } as unknown as IncomingMessage;
}

describe('upgrade limits', () => {
  it('lets everything through by default', () => {
    const l = limits({});
    assert.equal(l.check(request('1.1.1.1', 'https://anywhere.example')), null);
  });

  it('refuses origins that are not listed, but not clients without an Origin', () => {
    const l = limits({ WS_ALLOWED_ORIGINS: 'https://app.example.com, http://localhost:3000/' });
    assert.equal(l.check(request('1.1.1.1', 'https://app.example.com')), null);
    assert.equal(l.check(request('1.1.1.1', 'HTTPS://APP.EXAMPLE.COM')), null);
    assert.equal(l.check(request('1.1.1.1', 'http://localhost:3000')), null);
    assert.equal(l.check(request('1.1.1.1')), null);
    assert.deepEqual(l.check(request('1.1.1.1', 'https://evil.example')), {
      accept: false,
      status: 403,
      message: 'Origin not allowed',
    });
  });

  it('caps sockets per process and per IP, and frees the slot on close', () => {
    const l = limits({ WS_MAX_CONNECTIONS: '3', WS_MAX_CONNECTIONS_PER_IP: '2' });
    const a1 = l.opened(request('10.0.0.1'));
    l.opened(request('10.0.0.1'));
    assert.equal(l.check(request('10.0.0.1'))?.status, 429);
    assert.equal(l.check(request('10.0.0.2')), null);
    l.opened(request('10.0.0.2'));
    assert.equal(l.check(request('10.0.0.3'))?.status, 503);
    a1();
    a1();
    assert.equal(l.openSockets, 2);
    assert.equal(l.check(request('10.0.0.1')), null);
  });

  it('throttles an address after AUTH_FAILURE_LIMIT failures, only that address, until the window ends', async () => {
    const l = limits({ AUTH_FAILURE_LIMIT: '3', AUTH_FAILURE_WINDOW_MS: '40' });
    for (let i = 0; i < 2; i++) l.authFailed('10.0.0.9');
    assert.equal(l.check(request('10.0.0.9')), null);
    l.authFailed('10.0.0.9');
    assert.equal(l.check(request('10.0.0.9'))?.status, 429);
    assert.equal(l.check(request('10.0.0.8')), null);
    const start = Date.now();
    while (l.check(request('10.0.0.9')) !== null) {
      assert.ok(Date.now() - start < 1000, 'the window never ended');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  });

  it('charges authentications in flight, so parallel guesses cannot exceed the budget', () => {
    const l = limits({ AUTH_FAILURE_LIMIT: '3' });
    const attempts = [l.beginAuth('10.0.0.5'), l.beginAuth('10.0.0.5'), l.beginAuth('10.0.0.5')];
    assert.ok(attempts.every((a) => a !== null));
    assert.equal(l.beginAuth('10.0.0.5'), null);
    assert.ok(l.isThrottled('10.0.0.5'));
    attempts[0]?.succeeded();
    attempts[0]?.succeeded();
    const again = l.beginAuth('10.0.0.5');
    assert.ok(again !== null);
    again.failed();
    attempts[1]?.failed();
    attempts[2]?.failed();
    assert.equal(l.beginAuth('10.0.0.5'), null);
    assert.ok(l.beginAuth('10.0.0.6') !== null);
  });

  it('never throttles when the limit is 0', () => {
    const l = limits({ AUTH_FAILURE_LIMIT: '0' });
    for (let i = 0; i < 100; i++) l.authFailed('10.0.0.7');
    assert.equal(l.check(request('10.0.0.7')), null);
  });
});
