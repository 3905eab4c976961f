import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { describe, it } from 'node:test';
import { validateEnv } from '../../config/env.schema.js';
import { Metrics } from '../metrics/metrics.js';
import { UpgradeLimits } from './upgrade-limits.js';

const metricsOf = new WeakMap<UpgradeLimits, Metrics>();

function limits(env: Record<string, string>): UpgradeLimits {
  const config = validateEnv({ METRICS_ENABLED: 'false', ...env });
  const metrics = new Metrics(config);
  const l = new UpgradeLimits(config, metrics);
  metricsOf.set(l, metrics);
  return l;
}

function stats(l: UpgradeLimits): { authFailures: number; authThrottled: number } {
  return (metricsOf.get(l) as Metrics).protocol('jac');
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
    assert.equal(l.check(request('1.1.1.1', 'https://anywhere.example'), 'jac'), null);
  });

  it('refuses origins that are not listed, but not clients without an Origin', () => {
    const l = limits({ WS_ALLOWED_ORIGINS: 'https://app.example.com, http://localhost:3000/' });
    assert.equal(l.check(request('1.1.1.1', 'https://app.example.com'), 'jac'), null);
    assert.equal(l.check(request('1.1.1.1', 'HTTPS://APP.EXAMPLE.COM'), 'jac'), null);
    assert.equal(l.check(request('1.1.1.1', 'http://localhost:3000'), 'jac'), null);
    assert.equal(l.check(request('1.1.1.1'), 'jac'), null);
    assert.deepEqual(l.check(request('1.1.1.1', 'https://evil.example'), 'jac'), {
      accept: false,
      status: 403,
      message: 'Origin not allowed',
    });
  });

  it('caps sockets per process and per IP, and frees the slot on close', () => {
    const l = limits({ WS_MAX_CONNECTIONS: '3', WS_MAX_CONNECTIONS_PER_IP: '2' });
    const a1 = l.opened(request('10.0.0.1'));
    l.opened(request('10.0.0.1'));
    assert.equal(l.check(request('10.0.0.1'), 'jac')?.status, 429);
    assert.equal(l.check(request('10.0.0.2'), 'jac'), null);
    l.opened(request('10.0.0.2'));
    assert.equal(l.check(request('10.0.0.3'), 'jac')?.status, 503);
    a1();
    a1();
    assert.equal(l.openSockets, 2);
    assert.equal(l.check(request('10.0.0.1'), 'jac'), null);
  });

  it('throttles an address after AUTH_FAILURE_LIMIT failures, only that address, until the window ends', async () => {
    const l = limits({ AUTH_FAILURE_LIMIT: '3', AUTH_FAILURE_WINDOW_MS: '40' });
    for (let i = 0; i < 2; i++) l.authFailed('10.0.0.9', 'jac');
    assert.equal(l.check(request('10.0.0.9'), 'jac'), null);
    l.authFailed('10.0.0.9', 'jac');
    assert.equal(l.check(request('10.0.0.9'), 'jac')?.status, 429);
    assert.equal(l.check(request('10.0.0.8'), 'jac'), null);
    assert.equal(stats(l).authFailures, 3);
    assert.equal(stats(l).authThrottled, 1);
    const start = Date.now();
    while (l.check(request('10.0.0.9'), 'jac') !== null) {
      assert.ok(Date.now() - start < 1000, 'the window never ended');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  });

  it('charges authentications in flight, so parallel guesses cannot exceed the budget', () => {
    const l = limits({ AUTH_FAILURE_LIMIT: '3' });
    const attempts = [l.beginAuth('10.0.0.5', 'jac'), l.beginAuth('10.0.0.5', 'jac'), l.beginAuth('10.0.0.5', 'jac')];
    assert.ok(attempts.every((a) => a !== null));
    assert.equal(l.beginAuth('10.0.0.5', 'jac'), null);
    assert.ok(l.isThrottled('10.0.0.5'));
    attempts[0]?.succeeded();
    attempts[0]?.succeeded();
    const again = l.beginAuth('10.0.0.5', 'jac');
    assert.ok(again !== null);
    again.failed();
    attempts[1]?.failed();
    attempts[2]?.failed();
    assert.equal(l.beginAuth('10.0.0.5', 'jac'), null);
    assert.ok(l.beginAuth('10.0.0.6', 'jac') !== null);
    // Three failed; a success or a repeated settle is not one; two attempts were throttled.
    assert.equal(stats(l).authFailures, 3);
    assert.equal(stats(l).authThrottled, 2);
  });

  it('never throttles when the limit is 0', () => {
    const l = limits({ AUTH_FAILURE_LIMIT: '0' });
    for (let i = 0; i < 100; i++) l.authFailed('10.0.0.7', 'jac');
    assert.equal(l.check(request('10.0.0.7'), 'jac'), null);
    // Still counted for the metrics.
    assert.equal(stats(l).authFailures, 100);
  });
});
