import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { FatesModule } from '../../src/protocols/fates/fates.module.js';
import { startApp, type TestApp } from '../helpers/app.js';
import {
  deleteToken,
  eidsOf,
  FatesClient,
  FLAMEPAW_PATH,
  INVALID_AUTH,
  newBot,
  newServer,
  postEvent,
  setToken,
  V2_PATH,
  vote,
} from '../helpers/fates-client.js';
import { waitFor } from '../helpers/wait.js';
import { expectUpgradeRejected } from '../helpers/ws-client.js';

describe('fates: frame limit', () => {
  let app: TestApp;
  before(async () => {
    app = await startApp({}, { protocols: [FatesModule] });
  });
  after(() => app.close());

  for (const path of [V2_PATH, FLAMEPAW_PATH]) {
    it(`${path}: serves a 4096-byte identify and closes 1009 on a bigger frame, before or after identify`, async () => {
      const { id, token } = await newBot(app);
      const base = JSON.stringify({ id, token, bot: true, pad: '' });
      const exact = JSON.stringify({ id, token, bot: true, pad: 'x'.repeat(4096 - base.length) });
      assert.equal(Buffer.byteLength(exact), 4096);
      const { client } = await FatesClient.ready(app, path, JSON.parse(exact) as Record<string, unknown>);
      client.send('y'.repeat(4097));
      assert.equal((await client.waitClose()).code, 1009);

      const early = await FatesClient.open(app, path);
      early.send(JSON.stringify({ id, token, pad: 'z'.repeat(5000) }));
      assert.equal((await early.waitClose()).code, 1009);
    });
  }
});

describe('fates: heartbeat', () => {
  let app: TestApp;
  before(async () => {
    // The pong timeout leaves room for a busy test machine; the clients under test that
    // answer pings must never be taken for dead.
    app = await startApp({ FATES_PING_INTERVAL_MS: '50', FATES_PONG_TIMEOUT_MS: '400' }, { protocols: [FatesModule] });
  });
  after(() => app.close());

  for (const path of [V2_PATH, '/api/dragon/ws']) {
    it(`${path}: closes a client that does not answer pings with 4000`, async () => {
      const client = await FatesClient.open(app, path, { autoPong: false });
      const closed = await client.waitClose(3000);
      assert.deepEqual(closed, { code: 4000, reason: 'Invalid connection, try again' });
    });
  }

  it('flamepaw: a ping control payload follows every ping, with -1 before identify and the budget after', async () => {
    const { id, token } = await newBot(app);
    const client = await FatesClient.open(app, FLAMEPAW_PATH);
    const before1 = await client.control();
    assert.deepEqual([before1.code, before1.detail, before1.requests_remaining], ['ping', '', -1]);
    client.send({ id, token, bot: true });
    let ready = await client.control();
    while (ready.code === 'ping') ready = await client.control();
    assert.equal(ready.code, 'ready');
    let pings = 0;
    while (pings < 3) {
      const control = await client.control();
      assert.equal(control.code, 'ping');
      assert.equal(control.detail, '');
      assert.equal(control.requests_remaining, 18);
      pings++;
    }
    assert.equal(client.ws.socket.readyState, client.ws.socket.OPEN, 'a client that answers pings stays');
    await client.close();
  });

  it('v2: pings but never sends a ping control payload', async () => {
    const { id, token } = await newBot(app);
    const { client } = await FatesClient.ready(app, V2_PATH, { id, token });
    for (let i = 0; i < 4; i++) await once(client.ws.socket, 'ping');
    assert.equal(client.ws.pending, 0);
    assert.equal(client.ws.socket.readyState, client.ws.socket.OPEN);
    await client.close();
  });
});

describe('fates: token rotation and deletion', () => {
  let app: TestApp;
  before(async () => {
    app = await startApp({}, { protocols: [FatesModule] });
  });
  after(() => app.close());

  it('closes every live connection of the id with 4004 on rotation, in both eras, and no one else', async () => {
    const b = await newBot(app);
    const other = await newBot(app);
    const onV2 = (await FatesClient.ready(app, V2_PATH, { id: b.id, token: b.token })).client;
    const onFlamepaw = (await FatesClient.ready(app, FLAMEPAW_PATH, { id: b.id, token: b.token, bot: true })).client;
    const sendNone = (
      await FatesClient.ready(app, FLAMEPAW_PATH, { id: b.id, token: b.token, bot: true, send_none: true })
    ).client;
    const bystander = (await FatesClient.ready(app, V2_PATH, { id: other.id, token: other.token })).client;
    await setToken(app, 'bots', b.id, 'the-new-token');
    for (const client of [onV2, onFlamepaw, sendNone]) await client.expectClose(4004, INVALID_AUTH);
    const eid = await postEvent(app, `bots/${other.id}`, vote('1', 1));
    assert.deepEqual(eidsOf(await bystander.events()), [eid], 'other bots keep their connection');
    // The new token works, the old one does not.
    const fresh = await FatesClient.ready(app, V2_PATH, { id: b.id, token: 'the-new-token' });
    const stale = await FatesClient.open(app, V2_PATH);
    assert.equal((await stale.identify({ id: b.id, token: b.token })).code, 'invalid_auth');
    await stale.expectClose(4004, INVALID_AUTH);
    await Promise.all([fresh.client.close(), bystander.close()]);
  });

  it('setting the same token again keeps the connections that hold it', async () => {
    const b = await newBot(app);
    const { client } = await FatesClient.ready(app, V2_PATH, { id: b.id, token: b.token });
    await setToken(app, 'bots', b.id, b.token);
    const eid = await postEvent(app, `bots/${b.id}`, vote('1', 1));
    assert.deepEqual(eidsOf(await client.events()), [eid]);
    await client.close();
  });

  it('closes a server connection with 4004 when its token is deleted', async () => {
    const s = await newServer(app);
    const { client } = await FatesClient.ready(app, '/api/flamepaw/ws', { id: s.id, token: s.token, bot: false });
    assert.equal(await deleteToken(app, 'servers', s.id), 204);
    await client.expectClose(4004, INVALID_AUTH);
  });
});

describe('fates: the rate window', () => {
  let app: TestApp;
  before(async () => {
    app = await startApp({ FATES_RATE_LIMIT: '4', FATES_RATE_WINDOW_MS: '1000' }, { protocols: [FatesModule] });
  });
  after(() => app.close());

  it('always expires: a rate-limited bot identifies again once the window has passed', async () => {
    const { id, token } = await newBot(app);
    const first = await FatesClient.ready(app, V2_PATH, { id, token });
    assert.equal(first.ready.requests_remaining, 2);
    first.client.send('a');
    first.client.send('b');
    first.client.send('c');
    const limited = await first.client.control();
    assert.equal(limited.code, 'ratelimited');
    await first.client.expectClose(4012, 'Ratelimited');
    const again = await waitFor(
      async () => {
        const client = await FatesClient.open(app, FLAMEPAW_PATH);
        const control = await client.identify({ id, token, bot: true });
        if (control.code === 'ready') return { client, control };
        await client.waitClose();
        return undefined;
      },
      { timeoutMs: 5000, intervalMs: 50, what: 'the window to expire' },
    );
    assert.equal(again.control.requests_remaining, 2);
    assert.equal(again.control.detail, 'Waiting for messages with 2 already made');
    await again.client.close();
  });
});

describe('fates: the failed-authentication throttle', () => {
  let app: TestApp;
  before(async () => {
    app = await startApp({ AUTH_FAILURE_LIMIT: '3', AUTH_FAILURE_WINDOW_MS: '60000' }, { protocols: [FatesModule] });
  });
  after(() => app.close());

  it('counts wrong tokens (not malformed identifies) against the address; past the limit upgrades get 429', async () => {
    const { id, token } = await newBot(app);
    for (const body of ['not json', { id: '0', token }, { id, token: '' }, { id: 'x', token }]) {
      const client = await FatesClient.open(app, V2_PATH);
      assert.equal((await client.identify(body)).code, 'invalid_payload');
      await client.expectClose(4004, INVALID_AUTH);
    }
    for (let i = 0; i < 3; i++) {
      const client = await FatesClient.open(app, i % 2 ? V2_PATH : FLAMEPAW_PATH);
      assert.equal((await client.identify({ id, token: `wrong-${i}`, bot: true })).code, 'invalid_auth');
      await client.expectClose(4004, INVALID_AUTH);
    }
    const refused = await expectUpgradeRejected(app.ws(FLAMEPAW_PATH));
    assert.equal(refused.status, 429);
  });
});
