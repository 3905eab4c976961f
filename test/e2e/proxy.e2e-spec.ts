import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { startApp, type TestApp } from '../helpers/app.js';
import { createToken } from '../helpers/felix-client.js';
import { getJson } from '../helpers/http.js';
import { expectUpgradeRejected, WsTestClient } from '../helpers/ws-client.js';

/** Every test client comes from 127.0.0.1: as the load balancer would, when it is trusted. */
const LOOPBACK = '127.0.0.1';

describe('behind a proxy (TRUST_PROXY)', () => {
  const apps: TestApp[] = [];
  const clients: WsTestClient[] = [];

  async function start(env: Record<string, string>): Promise<TestApp> {
    const app = await startApp(env);
    apps.push(app);
    return app;
  }

  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await Promise.all(apps.map((app) => app.close()));
  });

  /** A Felix upgrade with a token nobody registered: 403, a failed authentication, or 429 once throttled. */
  async function badFelix(app: TestApp, forwardedFor?: string): Promise<number> {
    const headers: Record<string, string> = { Authorization: 'not-a-registered-token' };
    if (forwardedFor !== undefined) headers['X-Forwarded-For'] = forwardedFor;
    return (await expectUpgradeRejected(app.ws('/felix'), { headers })).status;
  }

  it('throttles failed authentications per forwarded client, not per proxy', async () => {
    const app = await start({ TRUST_PROXY: LOOPBACK, AUTH_FAILURE_LIMIT: '3' });
    for (let i = 0; i < 3; i++) assert.equal(await badFelix(app, '203.0.113.1'), 403);
    assert.equal(await badFelix(app, '203.0.113.1'), 429, 'that client is throttled');
    assert.equal(await badFelix(app, '203.0.113.2'), 403, 'another client behind the same proxy is not');
    assert.equal(await badFelix(app), 403, 'nor is the proxy itself');
  });

  it('takes the right-most address that is not a trusted proxy', async () => {
    const app = await start({ TRUST_PROXY: `${LOOPBACK}, 10.0.0.0/8`, AUTH_FAILURE_LIMIT: '2' });
    // The client put a forged address in front; the trusted hops appended the real one.
    for (let i = 0; i < 2; i++) assert.equal(await badFelix(app, `1.2.3.${i}, 198.51.100.7, 10.1.2.3`), 403);
    assert.equal(await badFelix(app, '198.51.100.7'), 429, 'the real client, whatever it forged');
    assert.equal(await badFelix(app, '1.2.3.0'), 403, 'the forged address was never charged');
  });

  it('ignores X-Forwarded-For from a peer that is not trusted', async () => {
    const untrusted: Record<string, string>[] = [{}, { TRUST_PROXY: '10.0.0.0/8' }];
    for (const env of untrusted) {
      const app = await start({ ...env, AUTH_FAILURE_LIMIT: '3' });
      for (let i = 0; i < 3; i++) assert.equal(await badFelix(app, `203.0.113.${i}`), 403);
      // Every attempt was charged to the peer; a fresh forged address does not get round it.
      assert.equal(await badFelix(app, '198.51.100.99'), 429, JSON.stringify(env));
      assert.equal(await badFelix(app), 429);
    }
  });

  it('caps connections per forwarded client', async () => {
    const app = await start({ TRUST_PROXY: LOOPBACK, WS_MAX_CONNECTIONS_PER_IP: '1' });
    const token = await createToken(app);
    const open = async (forwardedFor: string): Promise<WsTestClient> => {
      const client = await WsTestClient.connect(app.ws('/felix'), {
        headers: { Authorization: token.token, 'X-Forwarded-For': forwardedFor },
      });
      clients.push(client);
      return client;
    };
    await open('203.0.113.10');
    await open('203.0.113.11');
    const refused = await expectUpgradeRejected(app.ws('/felix'), {
      headers: { Authorization: token.token, 'X-Forwarded-For': '203.0.113.10' },
    });
    assert.equal(refused.status, 429);
  });

  it('hands out the proxy in hatsu discovery: its scheme, host and port', async () => {
    const app = await start({ TRUST_PROXY: LOOPBACK });
    const behindTls = { Host: 'internal:8080', 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'gw.example.com' };
    assert.deepEqual(await getJson(app, '/available', behindTls), { port: 443, url: 'wss://gw.example.com:443/hatsu' });
    assert.deepEqual(await getJson(app, '/port', { ...behindTls, 'X-Forwarded-Port': '8443' }), {
      port: 8443,
      url: 'wss://gw.example.com:8443/hatsu',
    });
    assert.deepEqual(await getJson(app, '/available', { Host: 'gw.example.com', 'X-Forwarded-Proto': 'http' }), {
      port: 80,
      url: 'ws://gw.example.com:80/hatsu',
    });
  });

  it('does not believe forwarded scheme or host from a peer that is not trusted', async () => {
    const app = await start({});
    const forged = { Host: 'gw.local', 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'evil.example' };
    assert.deepEqual(await getJson(app, '/available', forged), {
      port: app.port,
      url: `ws://gw.local:${app.port}/hatsu`,
    });
  });
});
