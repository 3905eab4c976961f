import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ClientOptions } from 'ws';
import { HatsuModule } from '../../src/protocols/hatsu/hatsu.module.js';
import { startApp, type TestApp } from '../helpers/app.js';
import { HatsuClient, putSession, putUser } from '../helpers/hatsu-client.js';
import { admin } from '../helpers/http.js';
import { waitFor } from '../helpers/wait.js';
import { expectUpgradeRejected } from '../helpers/ws-client.js';

describe('hatsu limits: identify timeout, keepalive, frame size, HATSU_MAX_SESSIONS', () => {
  let app: TestApp;
  const clients: HatsuClient[] = [];

  async function open(options: ClientOptions = {}): Promise<HatsuClient> {
    const client = await HatsuClient.connect(app.ws('/hatsu'), options);
    clients.push(client);
    return client;
  }

  before(async () => {
    app = await startApp(
      {
        HATSU_IDENTIFY_TIMEOUT_MS: '500',
        HATSU_PING_INTERVAL_MS: '100',
        HATSU_PING_TIMEOUT_MS: '400',
        HATSU_MAX_SESSIONS: '2',
        WS_MAX_PAYLOAD: '4096',
        AUTH_FAILURE_LIMIT: '2',
      },
      { protocols: [HatsuModule] },
    );
    await putUser(app, '1');
    await putSession(app, 'limits-session', '1');
  });

  after(async () => {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    await app.close();
  });

  it('closes 4002 when nothing is identified within HATSU_IDENTIFY_TIMEOUT_MS', async () => {
    const client = await open();
    const started = Date.now();
    const closed = await client.waitClose(3000);
    assert.equal(closed.code, 4002);
    assert.ok(Date.now() - started >= 450, 'not before the timeout');
  });

  it('closes 1011 "keepalive ping timeout" when pings go unanswered', async () => {
    const client = await open({ autoPong: false });
    client.identify('limits-session');
    await client.ready(0);
    assert.deepEqual(await client.waitClose(3000), { code: 1011, reason: 'keepalive ping timeout' });
  });

  it('keeps a client that answers pings, past two ping timeouts', async () => {
    const client = await open();
    client.identify('limits-session');
    await client.ready(0);
    let pings = 0;
    client.ws.socket.on('ping', () => pings++);
    // Eight pings are ~800 ms: two ping timeouts.
    while (pings < 8) await new Promise((resolve) => client.ws.socket.once('ping', resolve));
    await client.expectNothingPending();
    await client.close();
  });

  it('closes 1009 on a frame over WS_MAX_PAYLOAD', async () => {
    const client = await open();
    client.identify('limits-session');
    await client.ready(0);
    client.send({ t: 'PRESENCE', type: 1, description: 'x'.repeat(5000) });
    assert.equal((await client.waitClose()).code, 1009);
  });

  it('closes 4003 "Too much users on WebSocket" past HATSU_MAX_SESSIONS, and frees the slot on close', async () => {
    // The sockets of earlier tests must be gone on the server's side too.
    await waitFor(async () => {
      const answer = await admin(app, 'GET', '/admin/connections?protocol=hatsu');
      return (answer.json as { total: number }).total === 0;
    });
    const first = await open();
    first.identify('limits-session');
    await first.ready(0);
    const second = await open();
    second.identify('limits-session');
    await second.ready(0);
    const third = await open();
    third.identify('limits-session');
    assert.deepEqual(await third.waitClose(), { code: 4003, reason: 'Too much users on WebSocket' });
    await first.close();
    // The server sees the close a moment after the client does: retry until the slot is free.
    const fourth = await waitFor(
      async () => {
        const client = await open();
        client.identify('limits-session');
        const first = await client.next().catch(() => null);
        return first?.t === 'HELLO' ? client : undefined;
      },
      { what: 'a free session slot', timeoutMs: 3000 },
    );
    await fourth.expect('READY');
    await second.close();
    await fourth.close();
  });

  // Last: it leaves this address throttled.
  it('counts unknown session ids against AUTH_FAILURE_LIMIT; past it the upgrade is refused 429', async () => {
    for (let i = 0; i < 2; i++) {
      const client = await open();
      client.identify(`guess-${i}`);
      assert.deepEqual(await client.waitClose(), { code: 4002, reason: 'Invalid authorization' });
    }
    const refused = await expectUpgradeRejected(app.ws('/hatsu'));
    assert.equal(refused.status, 429);
  });
});
