import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ClientOrigin } from '../../core/http/proxy-trust.js';
import { offer } from './hatsu-discovery.js';

describe('hatsu discovery offer', () => {
  const direct = (hostname: string | undefined, secure = false): ClientOrigin => ({
    hostname,
    secure,
    port: undefined,
    viaProxy: false,
  });
  const origin = direct('gw.local');

  it('uses the request host and the instance port without a public URL', () => {
    assert.deepEqual(offer({ port: 2000, public: null }, origin), { port: 2000, url: 'ws://gw.local:2000/hatsu' });
    assert.deepEqual(offer({ port: 2000, public: null }, direct('gw.local', true)), {
      port: 2000,
      url: 'wss://gw.local:2000/hatsu',
    });
  });

  it('falls back to localhost for a missing or odd host', () => {
    for (const host of [undefined, 'a b', 'x/y', 'evil@host', '']) {
      assert.equal(offer({ port: 1, public: null }, direct(host)).url, 'ws://localhost:1/hatsu');
    }
    assert.equal(offer({ port: 1, public: null }, direct('[::1]')).url, 'ws://[::1]:1/hatsu');
  });

  it('takes scheme, host, explicit port and path prefix from the public URL', () => {
    assert.deepEqual(offer({ port: 2000, public: 'https://gw.example.com' }, origin), {
      port: 2000,
      url: 'wss://gw.example.com:2000/hatsu',
    });
    assert.deepEqual(offer({ port: 2000, public: 'http://gw.example.com:81/prefix/' }, origin), {
      port: 81,
      url: 'ws://gw.example.com:81/prefix/hatsu',
    });
    assert.deepEqual(offer({ port: 2000, public: 'wss://gw.example.com:443' }, origin), {
      port: 443,
      url: 'wss://gw.example.com:443/hatsu',
    });
  });

  it('behind a trusted proxy, hands out the proxy: its scheme, host and port, or the scheme default', () => {
    const proxied = (secure: boolean, port?: number): ClientOrigin => ({
      hostname: 'gw.example.com',
      secure,
      port,
      viaProxy: true,
    });
    assert.deepEqual(offer({ port: 2000, public: null }, proxied(true)), {
      port: 443,
      url: 'wss://gw.example.com:443/hatsu',
    });
    assert.deepEqual(offer({ port: 2000, public: null }, proxied(false)), {
      port: 80,
      url: 'ws://gw.example.com:80/hatsu',
    });
    assert.deepEqual(offer({ port: 2000, public: null }, proxied(true, 8443)), {
      port: 8443,
      url: 'wss://gw.example.com:8443/hatsu',
    });
    // A public URL still wins: it is what the operator said clients must use.
    assert.equal(
      offer({ port: 2000, public: 'https://hatsu.example.com' }, proxied(false)).url,
      'wss://hatsu.example.com:2000/hatsu',
    );
  });

  it("offers an instance's own port with the instance's scheme: wss when it serves TLS itself", () => {
    assert.equal(offer({ port: 2000, public: null, tls: true }, origin).url, 'wss://gw.local:2000/hatsu');
    // Another instance that serves plain WebSockets, asked over TLS (a cluster moving to TLS).
    assert.equal(
      offer({ port: 2000, public: null, tls: false }, direct('gw.local', true)).url,
      'ws://gw.local:2000/hatsu',
    );
    // Behind a proxy the proxy's scheme still decides: clients reach the instances through it.
    const proxied: ClientOrigin = { hostname: 'gw.example.com', secure: false, port: 80, viaProxy: true };
    assert.equal(offer({ port: 2000, public: null, tls: true }, proxied).url, 'ws://gw.example.com:80/hatsu');
  });
});
