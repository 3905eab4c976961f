import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { adminAuth, startApp, type TestApp } from '../helpers/app.js';
import { request, STACK_FRAME, type ConnectionsPage, type HttpError, type HttpResponse } from '../helpers/http.js';
import { issue, JAC_ID, PUBLIC_ROOT, type ConnectionData } from '../helpers/jac-client.js';
import { expectUpgradeRejected, WsTestClient } from '../helpers/ws-client.js';

const UNKNOWN_CLIENT = '1:00000000000000000000000000000000';

interface Jac {
  c: WsTestClient;
  info: ConnectionData;
}

const opened: WsTestClient[] = [];

async function connect(app: TestApp, path = '/websocket', token?: string): Promise<Jac> {
  const headers: Record<string, string> = token === undefined ? {} : { Authorization: `Bearer ${token}` };
  const c = await WsTestClient.connect(app.ws(path), { headers });
  opened.push(c);
  const event = await c.next<{ type: string; data: ConnectionData }>();
  assert.equal(event.type, 'connection');
  return { c, info: event.data };
}

/** The next frame is exactly these bytes, as text. */
async function expectFrame(c: WsTestClient, expected: string): Promise<void> {
  const message = await c.nextRaw();
  assert.equal(message.isBinary, false);
  assert.equal(message.data.toString('utf8'), expected);
}

async function expectAlive(jac: Jac): Promise<void> {
  jac.c.send({ type: 'connection' });
  assert.deepEqual(await jac.c.next(), { type: 'connection', data: jac.info });
}

/** An HTTP error: JSON `{statusCode, error, message}`, the expected status, no stack trace. */
function assertHttpError(res: HttpResponse, status: number): HttpError {
  assert.equal(res.status, status, `expected ${status}, got ${res.status}: ${res.text}`);
  assert.match(String(res.headers['content-type']), /application\/json/);
  assert.doesNotMatch(res.text, STACK_FRAME, 'an error response carried a stack trace');
  const body = res.body as HttpError;
  assert.equal(body.statusCode, status);
  assert.equal(typeof body.error, 'string');
  assert.ok(typeof body.message === 'string' || Array.isArray(body.message));
  return body;
}

function messagesOf(body: HttpError): string[] {
  assert.ok(Array.isArray(body.message), `expected a message list, got ${JSON.stringify(body.message)}`);
  return body.message;
}

describe('foundation (embedded engine)', () => {
  let app: TestApp;
  before(async () => {
    // The admin tests fail authentication on purpose, all from 127.0.0.1; the per-IP
    // failed-authentication throttle has tests of its own.
    app = await startApp({ AUTH_FAILURE_LIMIT: '0' });
  });
  after(() => app.close());
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((c) => c.close()));
  });

  describe('routing', () => {
    it('answers an upgrade to a path no gateway owns with a real 404', async () => {
      for (const path of ['/nope', '/websocket/extra', '/websockets', '/health/live']) {
        const rejected = await expectUpgradeRejected(app.ws(path));
        assert.equal(rejected.status, 404, path);
      }
    });

    it('serves /websocket with a trailing slash and with a query string', async () => {
      for (const path of ['/websocket', '/websocket/', '/websocket?x=1', '/websocket/?x=1&y=2']) {
        const jac = await connect(app, path);
        assert.match(jac.info.client_id, JAC_ID, path);
        assert.equal(jac.info.root_id, PUBLIC_ROOT);
      }
      const withChannel = await connect(app, '/websocket/?channel_id=slash-room');
      assert.equal(withChannel.info.channel_id, 'slash-room');
    });

    it('answers an unknown HTTP route with a JSON 404', async () => {
      assertHttpError(await request(app.http).get('/nope'), 404);
    });
  });

  describe('health', () => {
    it('is live', async () => {
      await request(app.http).get('/health/live').expect(200, { status: 'ok' });
    });

    it('is ready on the memory engine, without auth', async () => {
      const res = await request(app.http).get('/health/ready').expect(200);
      assert.deepEqual(res.body, { status: 'ready', engine: 'memory' });
    });
  });

  describe('admin authentication', () => {
    const routes: [method: 'get' | 'post' | 'delete', path: string][] = [
      ['get', '/admin/connections'],
      ['delete', `/admin/connections/${UNKNOWN_CLIENT}`],
      ['post', '/admin/jac/tokens'],
      ['post', '/admin/jac/notify'],
      ['get', '/admin/openapi.json'],
    ];
    const badHeaders: (string | undefined)[] = [
      undefined,
      'Bearer wrong-admin-token-0123456789',
      'Bearer ',
      `Basic ${Buffer.from('admin:test-admin-token-0123456789').toString('base64')}`,
      adminAuth.Authorization.slice('Bearer '.length),
    ];

    it('401s every admin route without the right bearer token, as JSON', async () => {
      for (const [method, path] of routes) {
        for (const header of badHeaders) {
          const req = request(app.http)[method](path);
          if (header !== undefined) req.set('Authorization', header);
          assertHttpError(await req.send({ root_ids: ['x'], data: {} }), 401);
        }
      }
    });

    it('changes nothing on a refused request', async () => {
      const target = await connect(app);
      const refused = await request(app.http)
        .post('/admin/jac/notify')
        .set('Authorization', 'Bearer wrong-admin-token-0123456789')
        .send({ client_ids: [target.info.client_id], data: { refused: true } });
      assertHttpError(refused, 401);
      const kept = await request(app.http).delete(`/admin/connections/${target.info.client_id}`);
      assertHttpError(kept, 401);
      // Neither the publish nor the close happened: the next frame is this one.
      await request(app.http)
        .post('/admin/jac/notify')
        .set(adminAuth)
        .send({ client_ids: [target.info.client_id], data: { accepted: true } })
        .expect(202);
      await expectFrame(target.c, '{"accepted":true}');
      await expectAlive(target);
    });
  });

  describe('connections', () => {
    let listed: TestApp;
    let clients: Jac[];
    let rootId: string;
    before(async () => {
      listed = await startApp();
      const issued = await issue(listed);
      rootId = issued.root_id;
      clients = [
        await connect(listed, '/websocket?channel_id=list-room', issued.token),
        await connect(listed),
        await connect(listed),
      ];
      // These stay open for the whole block; the suite's afterEach must not close them.
      opened.length = 0;
    });
    after(async () => {
      await Promise.all(clients.map((j) => j.c.close()));
      await listed.close();
    });

    it('lists every connection with counts', async () => {
      const res = await request(listed.http).get('/admin/connections').set(adminAuth).expect(200);
      const page = res.body as ConnectionsPage;
      assert.deepEqual(Object.keys(page).sort(), ['by_instance', 'by_protocol', 'clients', 'next_cursor', 'total']);
      assert.equal(page.total, 3);
      assert.deepEqual(page.by_protocol, { jac: 3 });
      const instances = Object.keys(page.by_instance);
      assert.equal(instances.length, 1);
      assert.equal(page.by_instance[instances[0] ?? ''], 3);
      assert.equal(page.next_cursor, null);
      assert.equal(page.clients.length, 3);
      const ids = page.clients.map((c) => c.id);
      assert.deepEqual(ids, [...ids].sort(), 'clients come in id order');
      assert.deepEqual(new Set(ids), new Set(clients.map((j) => j.info.client_id)));
      for (const client of page.clients) {
        assert.deepEqual(Object.keys(client).sort(), ['channels', 'id', 'instance', 'protocol', 'since', 'user']);
        assert.equal(client.protocol, 'jac');
        assert.equal(client.instance, instances[0]);
        assert.ok(!Number.isNaN(Date.parse(client.since)), client.since);
        assert.equal(new Date(client.since).toISOString(), client.since);
        assert.ok(Date.now() - Date.parse(client.since) < 60_000);
      }
      const first = page.clients.find((c) => c.id === clients[0]?.info.client_id);
      assert.deepEqual(first?.user, rootId);
      assert.deepEqual(first?.channels, ['list-room']);
      const second = page.clients.find((c) => c.id === clients[1]?.info.client_id);
      assert.equal(second?.user, PUBLIC_ROOT);
      assert.deepEqual(second?.channels, [clients[1]?.info.channel_id]);
    });

    it('filters by ?protocol=', async () => {
      const jac = (await request(listed.http).get('/admin/connections?protocol=jac').set(adminAuth).expect(200))
        .body as ConnectionsPage;
      assert.equal(jac.total, 3);
      assert.equal(jac.clients.length, 3);
      const fates = (await request(listed.http).get('/admin/connections?protocol=fates').set(adminAuth).expect(200))
        .body as ConnectionsPage;
      assert.equal(fates.total, 0);
      assert.deepEqual(fates.clients, []);
      assert.deepEqual(fates.by_protocol, {});
      assert.equal(fates.next_cursor, null);
      assertHttpError(await request(listed.http).get('/admin/connections?protocol=Not%20A!').set(adminAuth), 400);
    });

    it('pages with ?limit= and ?cursor=', async () => {
      const seen: string[] = [];
      let cursor: string | null = null;
      for (let pageNo = 0; pageNo < 5; pageNo++) {
        const query: Record<string, string> = { limit: '1' };
        if (cursor !== null) query['cursor'] = cursor;
        const res = await request(listed.http).get('/admin/connections').query(query).set(adminAuth).expect(200);
        const page = res.body as ConnectionsPage;
        assert.equal(page.total, 3);
        assert.equal(page.clients.length, 1);
        seen.push(page.clients[0]?.id ?? '');
        cursor = page.next_cursor;
        if (cursor === null) break;
        assert.equal(cursor, page.clients[0]?.id);
      }
      assert.equal(cursor, null);
      assert.equal(seen.length, 3);
      assert.deepEqual(seen, [...clients.map((j) => j.info.client_id)].sort());

      const two = (await request(listed.http).get('/admin/connections?limit=2').set(adminAuth).expect(200))
        .body as ConnectionsPage;
      assert.deepEqual(
        two.clients.map((c) => c.id),
        seen.slice(0, 2),
      );
      assert.equal(two.next_cursor, seen[1]);
      const rest = (
        await request(listed.http)
          .get('/admin/connections')
          .query({ limit: '2', cursor: two.next_cursor ?? '' })
          .set(adminAuth)
          .expect(200)
      ).body as ConnectionsPage;
      assert.deepEqual(
        rest.clients.map((c) => c.id),
        seen.slice(2),
      );
      assert.equal(rest.next_cursor, null);
    });

    it('400s for a bad limit', async () => {
      for (const limit of ['0', '-1', 'abc', '1.5', '1001', '']) {
        const body = assertHttpError(
          await request(listed.http).get('/admin/connections').query({ limit }).set(adminAuth),
          400,
        );
        const messages = messagesOf(body);
        assert.equal(messages.length, 1, limit);
        assert.match(messages[0] ?? '', /^limit: /);
      }
    });

    it('closes a client with 1000 on DELETE, and 404s for an unknown id', async () => {
      const doomed = await connect(listed);
      const closed = doomed.c.waitClose();
      const res = await request(listed.http)
        .delete(`/admin/connections/${encodeURIComponent(doomed.info.client_id)}`)
        .set(adminAuth)
        .expect(204);
      assert.equal(res.text, '');
      assert.equal((await closed).code, 1000);
      // The others are untouched.
      for (const jac of clients) await expectAlive(jac);
      assertHttpError(await request(listed.http).delete(`/admin/connections/${UNKNOWN_CLIENT}`).set(adminAuth), 404);
      assertHttpError(
        await request(listed.http)
          .delete(`/admin/connections/${'9'.repeat(300)}`)
          .set(adminAuth),
        404,
      );
    });
  });

  describe('POST /admin/jac/tokens', () => {
    it('issues a token for a new root', async () => {
      const res = await request(app.http).post('/admin/jac/tokens').set(adminAuth).send({}).expect(201);
      const body = res.body as { token: string; root_id: string };
      assert.deepEqual(Object.keys(body).sort(), ['root_id', 'token']);
      assert.match(body.root_id, /^n::[0-9a-f]{24}$/);
      assert.match(body.token, /^[\w-]+\.[\w-]+\.[\w-]+$/);
      const jac = await connect(app, '/websocket', body.token);
      assert.equal(jac.info.root_id, body.root_id);
      // Each call is a new root.
      const again = (await request(app.http).post('/admin/jac/tokens').set(adminAuth).expect(201)).body as {
        root_id: string;
      };
      assert.notEqual(again.root_id, body.root_id);
    });

    it('issues a token for a given root and lifetime', async () => {
      const root = 'n::abcdefabcdefabcdefabcdef';
      const body = await issue(app, { root_id: root, expires_in_s: 3600 });
      assert.equal(body.root_id, root);
      const claims = JSON.parse(Buffer.from(body.token.split('.')[1] ?? '', 'base64url').toString()) as {
        root_id: string;
        exp: number;
      };
      assert.equal(claims.root_id, root);
      assert.ok(Math.abs(claims.exp - (Date.now() / 1000 + 3600)) < 10);
      assert.equal((await connect(app, '/websocket', body.token)).info.root_id, root);
    });

    it('400s with one message per bad field', async () => {
      const two = assertHttpError(
        await request(app.http).post('/admin/jac/tokens').set(adminAuth).send({ root_id: 'bad', expires_in_s: -1 }),
        400,
      );
      const messages = messagesOf(two);
      assert.equal(messages.length, 2);
      assert.deepEqual(messages.map((m) => m.split(':')[0]).sort(), ['expires_in_s', 'root_id']);
      for (const body of [
        { expires_in_s: 1.5 },
        { expires_in_s: '60' },
        { root_id: 5 },
        { expires_in_s: 31_536_001 },
      ]) {
        const res = await request(app.http).post('/admin/jac/tokens').set(adminAuth).send(body);
        assert.equal(messagesOf(assertHttpError(res, 400)).length, 1, JSON.stringify(body));
      }
    });

    it('400s for an unknown extra field', async () => {
      const res = await request(app.http).post('/admin/jac/tokens').set(adminAuth).send({ admin: true });
      const messages = messagesOf(assertHttpError(res, 400));
      assert.equal(messages.length, 1);
      assert.match(messages[0] ?? '', /admin/);
    });
  });

  describe('POST /admin/jac/notify', () => {
    it('202s and delivers to roots, channels and clients', async () => {
      const issued = await issue(app);
      const user = await connect(app, '/websocket', issued.token);
      const member = await connect(app, '/websocket?channel_id=notify-room');
      const single = await connect(app);
      const bystander = await connect(app);

      const data = { type: 'notice', data: { text: 'héllo', n: [1, 2.5, null] } };
      const res = await request(app.http)
        .post('/admin/jac/notify')
        .set(adminAuth)
        .send({ root_ids: [issued.root_id], channel_ids: ['notify-room'], client_ids: [single.info.client_id], data })
        .expect(202);
      assert.deepEqual(res.body, {});
      for (const jac of [user, member, single]) await expectFrame(jac.c, JSON.stringify(data));

      // The bystander got nothing: its next frame is the one addressed to it.
      await request(app.http)
        .post('/admin/jac/notify')
        .set(adminAuth)
        .send({ client_ids: [bystander.info.client_id], data: { only: 'bystander' } })
        .expect(202);
      await expectFrame(bystander.c, '{"only":"bystander"}');
      for (const jac of [user, member, single]) await expectAlive(jac);
    });

    it('400s when no id list names an id', async () => {
      for (const body of [{ data: {} }, { root_ids: [], channel_ids: [], data: {} }]) {
        const res = await request(app.http).post('/admin/jac/notify').set(adminAuth).send(body);
        assert.equal(messagesOf(assertHttpError(res, 400)).length, 1);
      }
    });

    it('400s when data is missing or not an object, or an id is not a string', async () => {
      for (const [body, field] of [
        [{ root_ids: ['n::abcdefabcdefabcdefabcdef'] }, 'data'],
        [{ root_ids: ['n::abcdefabcdefabcdefabcdef'], data: [1] }, 'data'],
        [{ root_ids: ['n::abcdefabcdefabcdefabcdef'], data: 'text' }, 'data'],
        [{ root_ids: [1], data: {} }, 'root_ids'],
        [{ channel_ids: 'room', data: {} }, 'channel_ids'],
      ] as const) {
        const res = await request(app.http).post('/admin/jac/notify').set(adminAuth).send(body);
        const messages = messagesOf(assertHttpError(res, 400));
        assert.equal(messages.length, 1, JSON.stringify(body));
        assert.match(messages[0] ?? '', new RegExp(`^${field}`));
      }
    });
  });

  describe('request bodies', () => {
    it('413s a body over 1 MiB, as JSON', async () => {
      const target = await connect(app);
      const pad = 'x'.repeat(1024 * 1024 + 16);
      const res = await request(app.http)
        .post('/admin/jac/notify')
        .set(adminAuth)
        .set('Content-Type', 'application/json')
        .send(JSON.stringify({ client_ids: [target.info.client_id], data: { pad } }));
      assertHttpError(res, 413);
      // Nothing was delivered.
      await request(app.http)
        .post('/admin/jac/notify')
        .set(adminAuth)
        .send({ client_ids: [target.info.client_id], data: { small: true } })
        .expect(202);
      await expectFrame(target.c, '{"small":true}');
    });

    it('accepts a body just under 1 MiB', async () => {
      const target = await connect(app);
      const data = { pad: 'y'.repeat(1000 * 1000) };
      await request(app.http)
        .post('/admin/jac/notify')
        .set(adminAuth)
        .send({ client_ids: [target.info.client_id], data })
        .expect(202);
      await expectFrame(target.c, JSON.stringify(data));
    });

    it('400s malformed JSON, as JSON', async () => {
      for (const path of ['/admin/jac/notify', '/admin/jac/tokens', '/walker/send_chat_to_user']) {
        const res = await request(app.http)
          .post(path)
          .set(adminAuth)
          .set('Content-Type', 'application/json')
          .send('{"data": {');
        assertHttpError(res, 400);
      }
    });
  });

  describe('GET /admin/openapi.json', () => {
    it('describes the admin API', async () => {
      const res = await request(app.http).get('/admin/openapi.json').set(adminAuth).expect(200);
      const doc = res.body as {
        openapi: string;
        info: { title: string };
        paths: Record<string, Record<string, unknown>>;
      };
      assert.match(doc.openapi, /^3\./);
      assert.equal(typeof doc.info.title, 'string');
      assert.ok(doc.paths['/admin/jac/tokens']?.['post']);
      assert.ok(doc.paths['/admin/jac/notify']?.['post']);
      assert.ok(doc.paths['/admin/connections']?.['get']);
      assert.ok(doc.paths['/admin/connections/{clientId}']?.['delete']);
    });
  });

  describe('slow consumer', () => {
    let limited: TestApp;
    before(async () => {
      // These clients flood on purpose, with 256 KiB frames: no inbound budget, so only the
      // send buffer cuts them off.
      limited = await startApp({
        WS_SEND_BUFFER_LIMIT: '65536',
        WS_INBOUND_FRAMES_PER_SEC: '0',
        JAC_MAX_PAYLOAD: '1048576',
      });
    });
    after(() => limited.close());

    it('cuts off a client that stops reading, without holding up the others', async () => {
      const publisher = await connect(limited, '/websocket', (await issue(limited)).token);
      const slow = await connect(limited, '/websocket?channel_id=firehose');
      const fast = await connect(limited, '/websocket?channel_id=firehose');
      slow.c.socket.pause();

      // Far more than the socket buffers between the server and a reader that stopped.
      const count = 40;
      const pad = 'z'.repeat(256 * 1024);

      for (let seq = 0; seq < count; seq++) {
        const data = JSON.stringify({ seq, pad });
        if (seq % 2 === 0) {
          publisher.c.send(`{"type":"channel","channel_ids":["firehose"],"data":${data}}`);
        } else {
          await request(limited.http)
            .post('/admin/jac/notify')
            .set(adminAuth)
            .send({ channel_ids: ['firehose'], data: { seq, pad } })
            .expect(202);
        }
        // The reader keeps up, in order; waiting for it keeps its own buffer under the limit.
        const message = await fast.c.nextRaw();
        assert.equal(message.data.toString('utf8'), data);
      }

      slow.c.socket.resume();
      const closed = await slow.c.waitClose(5000);
      // 1013 when its close frame got through; 1006 if it lagged past the grace period.
      assert.ok([1013, 1006].includes(closed.code), `closed with ${closed.code}`);
      assert.ok(slow.c.pending < count, `the slow client got all ${count} messages: it was never cut off`);
      await expectAlive(fast);
      await expectAlive(publisher);
    });

    it('cuts off a client that sends requests but does not read the replies', async () => {
      // A long channel id makes every reply (a connection event) about 4 KiB.
      const greedy = await connect(limited, `/websocket?channel_id=${'c'.repeat(4000)}`, (await issue(limited)).token);
      const bystander = await connect(limited);
      greedy.c.socket.pause();
      const requests = 2500;
      for (let i = 0; i < requests; i++) greedy.c.send({ type: 'connection' });
      // Frames are handled in order: once this arrives, every request above was answered or refused.
      greedy.c.send({ type: 'client', client_ids: [bystander.info.client_id], data: { done: true } });
      await expectFrame(bystander.c, '{"done":true}');

      greedy.c.socket.resume();
      const closed = await greedy.c.waitClose();
      assert.ok([1013, 1006].includes(closed.code), `closed with ${closed.code}`);
      assert.ok(greedy.c.pending < requests, `all ${requests} replies were queued for a client that never read`);
      await expectAlive(bystander);
    });
  });
});
