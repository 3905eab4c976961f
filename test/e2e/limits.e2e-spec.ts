import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startApp, type TestApp } from '../helpers/app.js';
import { createToken } from '../helpers/felix-client.js';
import { PUBLIC_ROOT } from '../helpers/jac-client.js';
import { waitFor } from '../helpers/wait.js';
import { expectUpgradeRejected, WsTestClient } from '../helpers/ws-client.js';

/** Another loopback address, so a test can be "a different client IP". */
const OTHER_IP = { localAddress: '127.0.0.2' };

describe('upgrade limits', () => {
  describe('allowed origins', () => {
    let app: TestApp;
    before(async () => {
      app = await startApp({ WS_ALLOWED_ORIGINS: 'https://app.example.com,http://localhost:3000' });
    });
    after(() => app.close());

    it('refuses a browser origin that is not listed with 403, before the socket opens', async () => {
      const refused = await expectUpgradeRejected(app.ws('/websocket'), {
        headers: { Origin: 'https://evil.example' },
      });
      assert.equal(refused.status, 403);
    });

    it('accepts listed origins and clients that send no Origin', async () => {
      const variants: Record<string, string>[] = [
        { Origin: 'https://app.example.com' },
        { Origin: 'http://localhost:3000' },
        {},
      ];
      for (const headers of variants) {
        const client = await WsTestClient.connect(app.ws('/websocket'), { headers });
        assert.equal((await client.next<{ type: string }>()).type, 'connection');
        await client.close();
      }
    });
  });

  describe('connection caps', () => {
    let app: TestApp;
    before(async () => {
      app = await startApp({ WS_MAX_CONNECTIONS_PER_IP: '2', WS_MAX_CONNECTIONS: '3' });
    });
    after(() => app.close());

    it('refuses a third socket from one address with 429, and a fourth socket overall with 503', async () => {
      const a = await WsTestClient.connect(app.ws('/websocket'));
      const b = await WsTestClient.connect(app.ws('/websocket'));
      assert.equal((await expectUpgradeRejected(app.ws('/websocket'))).status, 429);
      const c = await WsTestClient.connect(app.ws('/websocket'), OTHER_IP);
      assert.equal((await expectUpgradeRejected(app.ws('/websocket'), OTHER_IP)).status, 503);
      await a.close();
      // The slot is free once the server has seen the close; poll the upgrade, bounded.
      const d = await waitFor(() => WsTestClient.connect(app.ws('/websocket')), { what: 'a free slot' });
      await Promise.all([b.close(), c.close(), d.close()]);
    });
  });

  describe('failed-authentication throttle', () => {
    let app: TestApp;
    before(async () => {
      app = await startApp({ AUTH_FAILURE_LIMIT: '3', AUTH_FAILURE_WINDOW_MS: '60000' });
    });
    after(() => app.close());

    it('refuses an address with 429 after too many bad tokens, across protocols, and only that address', async () => {
      const good = (await createToken(app)).token;
      // Felix: a refused token is a failure (403).
      for (let i = 0; i < 2; i++) {
        const refused = await expectUpgradeRejected(app.ws('/felix'), { headers: { Authorization: 'not-a-token' } });
        assert.equal(refused.status, 403);
      }
      // jac: a bad bearer token still connects as public, but counts.
      const jac = await WsTestClient.connect(app.ws('/websocket'), { headers: { Authorization: 'Bearer forged' } });
      assert.equal((await jac.next<{ data: { root_id: string } }>()).data.root_id, PUBLIC_ROOT);
      await jac.close();
      // The budget is spent: even a valid credential is refused, on every protocol.
      const felix = await expectUpgradeRejected(app.ws('/felix'), { headers: { Authorization: good } });
      assert.equal(felix.status, 429);
      assert.equal((await expectUpgradeRejected(app.ws('/websocket'))).status, 429);
      // Another address is unaffected.
      const other = await WsTestClient.connect(app.ws('/felix'), { ...OTHER_IP, headers: { Authorization: good } });
      await other.close();
    });
  });

  describe('parallel guesses', () => {
    let app: TestApp;
    before(async () => {
      app = await startApp({ AUTH_FAILURE_LIMIT: '3', AUTH_FAILURE_WINDOW_MS: '60000' });
    });
    after(() => app.close());

    it('cannot beat the budget by opening sockets first and guessing on all of them at once (Fates)', async () => {
      const sockets = await Promise.all(Array.from({ length: 8 }, () => WsTestClient.connect(app.ws('/api/ws'))));
      for (const socket of sockets) assert.equal((await socket.next<{ code: string }>()).code, 'identity');
      for (const socket of sockets) socket.send({ id: '1234567890', token: 'guess' });
      const answers = await Promise.all(sockets.map((socket) => socket.next<{ code: string; detail: string }>()));
      const closes = await Promise.all(sockets.map((socket) => socket.waitClose()));
      assert.ok(answers.every((a) => a.code === 'invalid_auth'));
      assert.ok(closes.every((c) => c.code === 4004));
      const looked = answers.filter((a) => a.detail === 'no rows in result set').length;
      assert.ok(looked <= 3, `${looked} guesses reached the token store`);
      assert.ok(answers.some((a) => a.detail.startsWith('too many failed authentications')));
      assert.equal((await expectUpgradeRejected(app.ws('/api/ws'))).status, 429);
    });
  });

  describe('throttle window', () => {
    let app: TestApp;
    before(async () => {
      app = await startApp({ AUTH_FAILURE_LIMIT: '1', AUTH_FAILURE_WINDOW_MS: '100' });
    });
    after(() => app.close());

    it('lets the address back in when the window ends', async () => {
      const change = await WsTestClient.connect(app.ws('/websocket'));
      await change.next();
      change.send({ type: 'change_user', token: 'Bearer forged' });
      await change.next();
      await change.close();
      assert.equal((await expectUpgradeRejected(app.ws('/websocket'))).status, 429);
      const back = await waitFor(() => WsTestClient.connect(app.ws('/websocket')), { what: 'the window to end' });
      await back.close();
    });
  });
});
