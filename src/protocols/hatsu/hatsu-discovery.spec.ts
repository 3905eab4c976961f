import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { offer } from './hatsu-discovery.js';

describe('hatsu discovery offer', () => {
  const origin = { host: 'gw.local', secure: false };

  it('uses the request host and the instance port without a public URL', () => {
    assert.deepEqual(offer({ port: 2000, public: null }, origin), { port: 2000, url: 'ws://gw.local:2000/hatsu' });
    assert.deepEqual(offer({ port: 2000, public: null }, { host: 'gw.local', secure: true }), {
      port: 2000,
      url: 'wss://gw.local:2000/hatsu',
    });
  });

  it('falls back to localhost for a missing or odd host', () => {
    for (const host of [undefined, 'a b', 'x/y', 'evil@host', '']) {
      assert.equal(offer({ port: 1, public: null }, { host, secure: false }).url, 'ws://localhost:1/hatsu');
    }
    assert.equal(offer({ port: 1, public: null }, { host: '[::1]', secure: false }).url, 'ws://[::1]:1/hatsu');
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
});
