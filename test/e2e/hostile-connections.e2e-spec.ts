import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { adminAuth, startApp, type TestApp } from '../helpers/app.js';
import { figure } from '../helpers/figure.js';
import { setToken } from '../helpers/fates-client.js';
import { HatsuClient, newUser } from '../helpers/hatsu-client.js';
import { call, request } from '../helpers/http.js';
import { snowflake } from '../helpers/ids.js';
import { freePort } from '../helpers/ports.js';
import { sampleValue, scrapeMetrics } from '../helpers/prom-text.js';
import { waitFor } from '../helpers/wait.js';
import { expectUpgradeRejected, WsTestClient } from '../helpers/ws-client.js';

/** Another loopback address, so a test can be "a different client IP". */
const OTHER_IP = '127.0.0.2';

interface RawPeer {
  socket: Socket;
  /** Everything the server wrote before it closed. */
  answer: Promise<{ text: string; heldMs: number }>;
}

/** A TCP connection that sends only `partial` (nothing by default) and records how it ends. */
async function rawPeer(port: number, partial = '', localAddress = '127.0.0.1'): Promise<RawPeer> {
  const started = performance.now();
  const socket = connect({ host: '127.0.0.1', port, localAddress });
  socket.on('error', () => undefined);
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  const answer = once(socket, 'close').then(() => ({
    text: Buffer.concat(chunks).toString('latin1'),
    heldMs: performance.now() - started,
  }));
  await once(socket, 'connect');
  if (partial !== '') socket.write(partial);
  return { socket, answer };
}

/** A WebSocket client that completes its handshake and answers a ping. */
async function wellBehaved(app: TestApp, localAddress?: string): Promise<void> {
  const client = await WsTestClient.connect(app.ws('/websocket'), localAddress ? { localAddress } : {});
  assert.equal((await client.next<{ type: string }>()).type, 'connection');
  await client.close();
}

describe('hostile connections', () => {
  describe('connections per address, counted before the upgrade', () => {
    let app: TestApp;
    before(async () => {
      // A long handshake timeout: only the cap can be what closes the extra sockets here.
      app = await startApp({ WS_MAX_CONNECTIONS_PER_IP: '4', WS_HANDSHAKE_TIMEOUT_MS: '60000' });
    });
    after(() => app.close());

    it('refuses sockets past the cap at once, while the idle ones are still open, and only for that address', async () => {
      const idle = await Promise.all(Array.from({ length: 4 }, () => rawPeer(app.port)));
      const extra = await Promise.all(
        Array.from({ length: 20 }, (_, i) => rawPeer(app.port, i % 2 === 0 ? '' : 'GET /websocket HTTP/1.1\r\n')),
      );
      let slowest = 0;
      for (const peer of extra) {
        const { text, heldMs } = await peer.answer;
        assert.match(text, /^HTTP\/1\.1 429 /);
        assert.ok(heldMs < 5000, `refused after ${Math.round(heldMs)} ms`);
        slowest = Math.max(slowest, heldMs);
      }
      figure('hostile', 'socket past the per-address cap held at most', slowest, 'ms');
      // The address's upgrades are refused too, and another address is not affected.
      assert.equal((await expectUpgradeRejected(app.ws('/websocket'))).status, 429);
      await wellBehaved(app, OTHER_IP);
      for (const peer of idle) assert.equal(peer.socket.destroyed, false);
      for (const peer of idle) peer.socket.destroy();
      await Promise.all(idle.map((peer) => peer.answer));
      // Their slots come back as soon as the server has seen them close.
      await waitFor(() => wellBehaved(app).then(() => true), { what: 'a free slot' });
      // Counted for operators: the 20 extra sockets and the refused upgrade at least (a retry
      // above may have been refused too, before the server saw the idle sockets close).
      const families = await scrapeMetrics(app);
      const refused = (reason: string) => sampleValue(families, 'gatehouse_connections_refused_total', { reason });
      assert.ok((refused('per_address') ?? 0) >= 21, `per_address ${refused('per_address')}`);
      assert.equal(refused('handshake_timeout'), 0);
    });
  });

  describe('handshake timeout', () => {
    let app: TestApp;
    let ports: number[];
    before(async () => {
      const [felix, hatsu] = [await freePort(), await freePort()];
      app = await startApp({ WS_HANDSHAKE_TIMEOUT_MS: '200', FELIX_PORT: String(felix), HATSU_PORT: String(hatsu) });
      ports = [app.port, felix, hatsu];
    });
    after(() => app.close());

    it('destroys sockets that do not complete a request in time, on every listener', async () => {
      const partials = ['', 'GET /websocket HTTP/1.1\r\n', 'GET /websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket'];
      const peers = await Promise.all(
        Array.from({ length: 45 }, (_, i) => rawPeer(ports[i % 3] as number, partials[Math.floor(i / 3) % 3])),
      );
      let longest = 0;
      for (const peer of peers) {
        const { text, heldMs } = await peer.answer;
        assert.equal(text, '');
        assert.ok(heldMs >= 150 && heldMs < 2000, `held ${Math.round(heldMs)} ms`);
        longest = Math.max(longest, heldMs);
      }
      figure('hostile', 'half-open socket held at most (WS_HANDSHAKE_TIMEOUT_MS 200)', longest, 'ms');
      const families = await scrapeMetrics(app);
      assert.equal(sampleValue(families, 'gatehouse_connections_refused_total', { reason: 'handshake_timeout' }), 45);
    });

    it('leaves upgraded sockets and keep-alive HTTP alone', async () => {
      const client = await WsTestClient.connect(app.ws('/websocket'));
      assert.equal((await client.next<{ type: string }>()).type, 'connection');
      // Well past the timeout, the socket still answers.
      const started = performance.now();
      while (performance.now() - started < 600) {
        client.socket.ping();
        await once(client.socket, 'pong');
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      assert.equal(client.socket.readyState, client.socket.OPEN);
      await client.close();
      // A request that is slow to come but arrives in time is served, and the connection kept.
      const peer = await rawPeer(app.port, 'GET /health/live HTTP/1.1\r\n');
      await new Promise((resolve) => setTimeout(resolve, 100));
      peer.socket.write('Host: x\r\n\r\n');
      const [first] = (await once(peer.socket, 'data')) as [Buffer];
      assert.match(first.toString('latin1'), /^HTTP\/1\.1 200 /);
      peer.socket.write('GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      const { text } = await peer.answer;
      assert.match(text, /HTTP\/1\.1 200 [\s\S]*HTTP\/1\.1 200 /);
      assert.equal((await call(app, 'GET', '/health/live')).status, 200);
    });
  });

  describe('protocol holes', () => {
    let app: TestApp;
    before(async () => {
      app = await startApp();
    });
    after(() => app.close());

    it('refuses Fates ids above 2^64-1 as invalid snowflakes', async () => {
      for (const id of ['18446744073709551616', '99999999999999999999']) {
        for (const kind of ['bots', 'servers']) {
          const res = await request(app.http)
            .put(`/admin/fates/${kind}/${id}/token`)
            .set(adminAuth)
            .send({ token: 'a-token-for-an-impossible-id' });
          assert.equal(res.status, 400, `${kind} ${id}`);
          assert.ok(!res.text.includes('a-token-for-an-impossible-id'));
        }
      }
      await setToken(app, 'bots', '18446744073709551615', 'the-largest-id-there-is');
      await setToken(app, 'bots', snowflake(), 'an-ordinary-id');
    });

    it('answers a WebSocket version other than 13 with 426 and the version it speaks', async () => {
      for (const path of ['/websocket', '/api/ws', '/felix', '/hatsu']) {
        const peer = await rawPeer(
          app.port,
          `GET ${path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
            'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n',
        );
        const { text } = await peer.answer;
        assert.match(text, /^HTTP\/1\.1 426 /, path);
        assert.match(text, /\r\nSec-WebSocket-Version: 13\r\n/i, path);
      }
    });
  });

  describe('hatsu at the root of the main port', () => {
    let app: TestApp;
    before(async () => {
      app = await startApp();
    });
    after(() => app.close());

    it('serves the published client, which connects to ws://host:port with no path', async () => {
      const { port } = (await call(app, 'GET', '/available')).json as { port: number };
      assert.equal(port, app.port);
      const user = await newUser(app);
      const client = await HatsuClient.connect(`ws://127.0.0.1:${port}`);
      client.identify(user.sessionId);
      await client.ready(0);
      await client.ws.close();
      // A plain GET / is still the JSON index.
      const index = await call(app, 'GET', '/');
      assert.equal(index.status, 200);
      assert.equal((index.json as { name: string }).name, 'gatehouse');
    });
  });
});
