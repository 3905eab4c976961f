import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { describe, it } from 'node:test';
import { validateEnv } from '../../config/env.schema.js';
import { ProxyTrust } from './proxy-trust.js';

function trust(list?: string): ProxyTrust {
  return new ProxyTrust(validateEnv(list === undefined ? {} : { TRUST_PROXY: list }));
}

function req(peer: string, headers: Record<string, string> = {}, encrypted = false): IncomingMessage {
  return { headers, socket: { remoteAddress: peer, encrypted } } as unknown as IncomingMessage;
}

describe('ProxyTrust', () => {
  it('trusts nobody by default: the peer is the client, forwarded headers are ignored', () => {
    const t = trust();
    const forged = { 'x-forwarded-for': '1.2.3.4', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'evil' };
    assert.equal(t.clientIp(req('198.51.100.1', forged)), '198.51.100.1');
    assert.deepEqual(t.origin(req('198.51.100.1', { ...forged, host: 'gw.local:8080' })), {
      secure: false,
      hostname: 'gw.local',
      port: 8080,
      viaProxy: false,
    });
  });

  it('takes the right-most untrusted address of X-Forwarded-For from a trusted peer', () => {
    const t = trust('10.0.0.0/8, 127.0.0.1');
    assert.equal(t.clientIp(req('127.0.0.1', { 'x-forwarded-for': '203.0.113.9' })), '203.0.113.9');
    assert.equal(t.clientIp(req('127.0.0.1', { 'x-forwarded-for': '6.6.6.6, 203.0.113.9, 10.2.3.4' })), '203.0.113.9');
    // Every hop trusted: the left-most address is the client.
    assert.equal(t.clientIp(req('127.0.0.1', { 'x-forwarded-for': '10.9.9.9, 10.2.3.4' })), '10.9.9.9');
    // No header: the proxy itself.
    assert.equal(t.clientIp(req('10.1.1.1')), '10.1.1.1');
    // An untrusted peer's header means nothing.
    assert.equal(t.clientIp(req('198.51.100.1', { 'x-forwarded-for': '203.0.113.9' })), '198.51.100.1');
  });

  it('matches IPv4 peers seen through an IPv6 socket', () => {
    assert.equal(
      trust('127.0.0.1').clientIp(req('::ffff:127.0.0.1', { 'x-forwarded-for': '203.0.113.5' })),
      '203.0.113.5',
    );
  });

  it("reads the client's scheme, host and port from a trusted proxy", () => {
    const t = trust('loopback');
    const headers = { host: 'internal:8080', 'x-forwarded-proto': 'https, http', 'x-forwarded-host': 'gw.example.com' };
    assert.deepEqual(t.origin(req('127.0.0.1', headers)), {
      secure: true,
      hostname: 'gw.example.com',
      port: undefined,
      viaProxy: true,
    });
    assert.equal(t.origin(req('127.0.0.1', { ...headers, 'x-forwarded-port': '8443' })).port, 8443);
    assert.equal(t.origin(req('127.0.0.1', { ...headers, 'x-forwarded-port': '99999' })).port, undefined);
    assert.deepEqual(t.origin(req('127.0.0.1', { host: '[::1]:9000' })), {
      secure: false,
      hostname: '[::1]',
      port: 9000,
      viaProxy: true,
    });
    // TLS of the gateway's own counts when no proxy says otherwise.
    assert.equal(trust().origin(req('198.51.100.1', {}, true)).secure, true);
  });
});
