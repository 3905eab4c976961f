import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import type { ClientOptions } from 'ws';
import { Store } from '../../src/core/store/store.js';
import type { IgnoredReason } from '../../src/protocols/felix/felix.codec.js';
import { STATUS_KEY } from '../../src/protocols/felix/felix-status.service.js';
import { FelixService } from '../../src/protocols/felix/felix.service.js';
import { adminAuth, startApp, type TestApp } from '../helpers/app.js';
import {
  assertQuiet,
  connectFelix,
  createToken,
  FELIX_TOKEN_FORMAT,
  heartbeat,
  heartbeatFlood,
  listen,
  nextFelix as next,
  putDocument,
  type FelixToken,
} from '../helpers/felix-client.js';
import { request, type HttpTest } from '../helpers/http.js';
import { snowflake, UUID_V4 } from '../helpers/ids.js';
import { freePort } from '../helpers/ports.js';
import { KeyWatch, RedisProcess, redisSuite, uniquePrefix } from '../helpers/redis.js';
import { waitFor } from '../helpers/wait.js';
import { expectUpgradeRejected, type WsTestClient } from '../helpers/ws-client.js';

// ---- helpers ----------------------------------------------------------------------------

/** Clients opened by the current test; closed after it. */
const opened: WsTestClient[] = [];

async function connect(url: string, token: string, options: ClientOptions = {}): Promise<WsTestClient> {
  const client = await connectFelix(url, token, options);
  opened.push(client);
  return client;
}

async function expectGdb(c: WsTestClient, guildID: string, guildData: unknown): Promise<void> {
  assert.deepEqual(await next(c), { code: 10002, name: 'GDB Update', data: { guildID, guildData } });
}

async function expectUdb(c: WsTestClient, userID: string, userData: unknown): Promise<void> {
  assert.deepEqual(await next(c), { code: 10003, name: 'UDB Update', data: { userID, userData } });
}

type Method = 'get' | 'post' | 'put' | 'delete';

function call(app: TestApp, method: Method, path: string): HttpTest {
  const agent = request(app.http);
  switch (method) {
    case 'get':
      return agent.get(path);
    case 'post':
      return agent.post(path);
    case 'put':
      return agent.put(path);
    case 'delete':
      return agent.delete(path);
  }
}

afterEach(async () => {
  await Promise.all(opened.splice(0).map((c) => c.close()));
});

// ---- the socket on the main port --------------------------------------------------------

describe('felix', () => {
  let app: TestApp;
  let felix: FelixService;
  let token: FelixToken;

  before(async () => {
    app = await startApp();
    felix = app.app.get(FelixService);
    token = await createToken(app, { user: '80351110224678912' });
  });
  after(() => app.close());

  describe('upgrade authentication', () => {
    it('refuses an upgrade without an Authorization header with a real 403', async () => {
      const rejected = await expectUpgradeRejected(app.ws('/felix'));
      assert.equal(rejected.status, 403);
      assert.equal(rejected.body, 'Forbidden');
    });

    it('refuses an unknown token, and a registered one sent as "Bearer <token>"', async () => {
      const unknown = await expectUpgradeRejected(app.ws('/felix'), {
        headers: { Authorization: 'not-a-registered-token-0123456789' },
      });
      assert.equal(unknown.status, 403);
      const bearer = await expectUpgradeRejected(app.ws('/felix'), {
        headers: { Authorization: `Bearer ${token.token}` },
      });
      assert.equal(bearer.status, 403);
    });

    it('refuses a public token (the document says so; the original let it in)', async () => {
      const open = await createToken(app, { public: true });
      assert.equal(open.public, true);
      const rejected = await expectUpgradeRejected(app.ws('/felix'), { headers: { Authorization: open.token } });
      assert.equal(rejected.status, 403);
    });

    it('refuses a revoked token', async () => {
      const revoked = await createToken(app);
      await request(app.http).delete(`/admin/felix/tokens/${revoked.id}`).set(adminAuth).expect(204);
      const rejected = await expectUpgradeRejected(app.ws('/felix'), { headers: { Authorization: revoked.token } });
      assert.equal(rejected.status, 403);
    });

    it('accepts a valid private token, on /felix and /felix/, and sends nothing first', async () => {
      const c = await connect(app.ws('/felix'), token.token);
      const slash = await connect(app.ws('/felix/?v=1'), token.token);
      // The ACK is the first frame either socket receives.
      await assertQuiet(c);
      await assertQuiet(slash);
    });

    it('accepts a token given at creation, in any format', async () => {
      const mine = await createToken(app, { token: 'my-own-token_0123456789$' });
      assert.equal(mine.token, 'my-own-token_0123456789$');
      const c = await connect(app.ws('/felix'), mine.token);
      await assertQuiet(c);
    });

    it('lists the socket in /admin/connections with its token user and listen channels', async () => {
      const c = await connect(app.ws('/felix'), token.token);
      const [guild, user] = [snowflake(), snowflake()];
      await listen(c, { users: [user], guilds: [guild] });
      const res = await request(app.http).get('/admin/connections?protocol=felix').set(adminAuth).expect(200);
      const clients = (res.body as { clients: { protocol: string; user: string; channels: string[] }[] }).clients;
      const mine = clients.find((client) => client.channels.includes(`guild:${guild}`));
      assert.ok(mine, 'the socket is listed');
      assert.equal(mine.protocol, 'felix');
      assert.equal(mine.user, '80351110224678912');
      assert.deepEqual(mine.channels.sort(), [`guild:${guild}`, `user:${user}`].sort());
    });
  });

  describe('heartbeat', () => {
    it('answers 20001 with a 10001 ACK whose fields have the documented types', async () => {
      const c = await connect(app.ws('/felix'), token.token);
      const before = Date.now();
      const ack = await heartbeat(c);
      assert.deepEqual(Object.keys(ack).sort(), ['guildsCount', 'memoryUsage', 'receivedAt', 'shards', 'uptime']);
      assert.ok(Number.isInteger(ack.receivedAt) && ack.receivedAt >= before && ack.receivedAt <= Date.now());
      assert.ok(Array.isArray(ack.shards));
      for (const shard of ack.shards) assert.ok('ping' in shard);
      assert.ok(Number.isInteger(ack.guildsCount) && ack.guildsCount >= 0);
      assert.equal(typeof ack.memoryUsage, 'number');
      assert.ok(ack.memoryUsage > 0);
      assert.ok(Number.isInteger(ack.uptime) && ack.uptime >= 0);
      // Data on a heartbeat changes nothing.
      c.send({ code: 20001, data: { anything: 1 } });
      assert.equal((await next(c)).code, 10001);
    });

    it('reflects the reported status, with uptime advancing from the reported value', async () => {
      const c = await connect(app.ws('/felix'), token.token);
      await request(app.http)
        .put('/admin/felix/status')
        .set(adminAuth)
        .send({
          shards: [
            { id: 0, status: 'ready', ping: 41 },
            { id: 1, status: 'ready', latency: 57 },
            { id: 2, status: 'connecting' },
          ],
          guildsCount: 1234,
          memoryUsage: 87.65,
          uptime: 3_600_000,
        })
        .expect(204);
      const first = await heartbeat(c);
      assert.deepEqual(first.shards, [
        { id: 0, status: 'ready', ping: 41 },
        { id: 1, status: 'ready', ping: 57 },
        { id: 2, status: 'connecting', ping: null },
      ]);
      assert.equal(first.guildsCount, 1234);
      assert.equal(first.memoryUsage, 87.65);
      assert.ok(first.uptime >= 3_600_000 && first.uptime < 3_600_000 + 5000, String(first.uptime));
      // Heartbeats until the clock has moved: uptime moves by exactly as much as receivedAt.
      let later = await heartbeat(c);
      while (later.receivedAt === first.receivedAt) later = await heartbeat(c);
      assert.ok(later.uptime > first.uptime);
      assert.equal(later.uptime - first.uptime, later.receivedAt - first.receivedAt);
    });

    it('takes unreported memoryUsage and uptime from the gateway process', async () => {
      const c = await connect(app.ws('/felix'), token.token);
      await request(app.http)
        .put('/admin/felix/status')
        .set(adminAuth)
        .send({ shards: [], guildsCount: 3 })
        .expect(204);
      const ack = await heartbeat(c);
      assert.deepEqual(ack.shards, []);
      assert.equal(ack.guildsCount, 3);
      // The gateway is this process: its heap, in MB (not bytes).
      const heapMb = process.memoryUsage().heapUsed / 1024 / 1024;
      assert.equal(typeof ack.memoryUsage, 'number');
      assert.ok(ack.memoryUsage > 0 && Math.abs(ack.memoryUsage - heapMb) < heapMb, `${ack.memoryUsage} vs ${heapMb}`);
      const processUptime = Math.round(process.uptime() * 1000);
      assert.ok(Math.abs(ack.uptime - processUptime) < 5000, `${ack.uptime} vs ${processUptime}`);
    });

    it('answers a heartbeat flood from memory: a status written to the store unannounced is not seen', async () => {
      await request(app.http)
        .put('/admin/felix/status')
        .set(adminAuth)
        .send({ shards: [{ id: 0, ping: 5 }], guildsCount: 77 })
        .expect(204);
      // The store changes behind the gateway's back, as a report lost with a bus gap leaves it.
      const behind = { shards: [], guildsCount: 88, reportedAt: Date.now() };
      await app.app.get(Store).set(STATUS_KEY, JSON.stringify(behind));
      const clients = await Promise.all([1, 2, 3].map(() => connect(app.ws('/felix'), token.token)));
      const acks = await heartbeatFlood(clients, 200);
      assert.equal(acks.length, 600);
      for (const ack of acks) assert.equal(ack.guildsCount, 77);
      // The next report reaches the heartbeats at once.
      await request(app.http)
        .put('/admin/felix/status')
        .set(adminAuth)
        .send({ shards: [], guildsCount: 99 })
        .expect(204);
      const [first] = clients;
      assert.ok(first);
      assert.equal((await heartbeat(first)).guildsCount, 99);
    });
  });

  describe('guild and user updates', () => {
    it('stores the full object: GET returns it, 404 before any PUT', async () => {
      const [guild, user] = [snowflake(), snowflake()];
      await request(app.http).get(`/admin/felix/guilds/${guild}`).set(adminAuth).expect(404);
      await request(app.http).get(`/admin/felix/users/${user}`).set(adminAuth).expect(404);
      const guildData = { id: guild, generalSettings: { prefix: 'f!', disabledModules: [] }, modLog: { cases: [] } };
      const userData = { id: user, experience: { expCount: 10, level: 1 }, dataPrivacy: { publicLevel: true } };
      await putDocument(app, 'guilds', guild, guildData);
      await putDocument(app, 'users', user, userData);
      const gotGuild = await request(app.http).get(`/admin/felix/guilds/${guild}`).set(adminAuth).expect(200);
      assert.deepEqual(gotGuild.body, guildData);
      const gotUser = await request(app.http).get(`/admin/felix/users/${user}`).set(adminAuth).expect(200);
      assert.deepEqual(gotUser.body, userData);
      // A later PUT replaces the object whole.
      await putDocument(app, 'guilds', guild, { id: guild });
      const replaced = await request(app.http).get(`/admin/felix/guilds/${guild}`).set(adminAuth).expect(200);
      assert.deepEqual(replaced.body, { id: guild });
    });

    it('sends 10002/10003 to exactly the sockets listening to that id, once each', async () => {
      const [guild, user, other] = [snowflake(), snowflake(), snowflake()];
      const guildOnly = await connect(app.ws('/felix'), token.token);
      const both = await connect(app.ws('/felix'), token.token);
      const elsewhere = await connect(app.ws('/felix'), token.token);
      const idle = await connect(app.ws('/felix'), token.token);
      await listen(guildOnly, { guilds: [guild] });
      await listen(both, { users: [user], guilds: [guild, other] });
      await listen(elsewhere, { users: [other], guilds: [other] });

      const guildData = { id: guild, generalSettings: { prefix: '!' } };
      await putDocument(app, 'guilds', guild, guildData);
      await expectGdb(guildOnly, guild, guildData);
      await expectGdb(both, guild, guildData);

      const userData = { id: user, generalSettings: { points: 5 } };
      await putDocument(app, 'users', user, userData);
      await expectUdb(both, user, userData);

      // A user id equal to a listened guild id is a different entry.
      await putDocument(app, 'users', other, { id: other });
      await expectUdb(elsewhere, other, { id: other });
      await putDocument(app, 'guilds', user, { id: user });

      for (const c of [guildOnly, both, elsewhere, idle]) await assertQuiet(c);
    });

    it('replaces the listen lists: ids no longer listed stop, new ones start', async () => {
      const [g1, g2, u1, u2] = [snowflake(), snowflake(), snowflake(), snowflake()];
      const c = await connect(app.ws('/felix'), token.token);
      await listen(c, { users: [u1], guilds: [g1] });
      await putDocument(app, 'guilds', g1, { v: 1 });
      await expectGdb(c, g1, { v: 1 });
      await putDocument(app, 'users', u1, { v: 1 });
      await expectUdb(c, u1, { v: 1 });

      await listen(c, { users: [u2], guilds: [g2] });
      await putDocument(app, 'guilds', g1, { v: 2 });
      await putDocument(app, 'users', u1, { v: 2 });
      // Had either update above been sent, it would be ahead of this one.
      await putDocument(app, 'guilds', g2, { v: 3 });
      await expectGdb(c, g2, { v: 3 });
      await putDocument(app, 'users', u2, { v: 4 });
      await expectUdb(c, u2, { v: 4 });

      // Empty lists: nothing at all.
      await listen(c, {});
      await putDocument(app, 'guilds', g2, { v: 5 });
      await putDocument(app, 'users', u2, { v: 5 });
      await assertQuiet(c);
    });
  });

  describe('ignored input', () => {
    const ids = (n: number): string[] => Array.from({ length: n }, () => snowflake());
    const cases: [string, string | Record<string, unknown>, IgnoredReason][] = [
      ['bad JSON', '{"code": 20001', 'invalid-json'],
      ['JSON null', 'null', 'not-an-object'],
      ['a JSON array', '[{"code":20001}]', 'not-an-object'],
      ['no code', { data: { users: [], guilds: [] } }, 'no-code'],
      ['code 0', { code: 0 }, 'no-code'],
      ['an unknown code', { code: 20003 }, 'unknown-code'],
      ['a server code', { code: 10001 }, 'unknown-code'],
      ['the code as a string', { code: '20001' }, 'unknown-code'],
      ['20002 without data', { code: 20002 }, 'bad-listeners'],
      ['20002 with a missing list', { code: 20002, data: { users: [] } }, 'bad-listeners'],
      ['20002 with a list that is not an array', { code: 20002, data: { users: 'x', guilds: [] } }, 'bad-listeners'],
      ['20002 with number ids', { code: 20002, data: { users: [1], guilds: [] } }, 'bad-listeners'],
      ['20002 with non-snowflake ids', { code: 20002, data: { users: [], guilds: ['abc'] } }, 'bad-listeners'],
      ['20002 with over 1000 ids', { code: 20002, data: { users: ids(1001), guilds: [] } }, 'too-many-listeners'],
    ];

    it('ignores each bad frame without a reply, counts it, and keeps the socket and its lists', async () => {
      const guild = snowflake();
      const c = await connect(app.ws('/felix'), token.token);
      await listen(c, { guilds: [guild] });
      for (const [what, frame, reason] of cases) {
        const before = felix.ignoredCount(reason);
        c.send(frame);
        const ack = await heartbeat(c);
        assert.equal(typeof ack.receivedAt, 'number', what);
        assert.equal(c.pending, 0, `${what}: nothing but the ACK arrived`);
        assert.equal(felix.ignoredCount(reason), before + 1, `${what}: counted as ${reason}`);
      }
      // None of the bad 20002s touched the listen list.
      await putDocument(app, 'guilds', guild, { still: 'listening' });
      await expectGdb(c, guild, { still: 'listening' });
    });

    it('ignores binary frames, even holding a valid heartbeat', async () => {
      const c = await connect(app.ws('/felix'), token.token);
      const before = felix.ignoredCount('binary-frame');
      c.send(Buffer.from(JSON.stringify({ code: 20001 })));
      await assertQuiet(c);
      assert.equal(felix.ignoredCount('binary-frame'), before + 1);
    });

    it('closes a socket that sends a frame over the 64 KiB limit with 1009', async () => {
      const c = await connect(app.ws('/felix'), token.token);
      c.send({ code: 20001, data: 'x'.repeat(70 * 1024) });
      assert.equal((await c.waitClose()).code, 1009);
    });
  });

  describe('revocation', () => {
    it('closes the live sockets of a revoked token (1008) and keeps the others', async () => {
      const doomed = await createToken(app);
      const a = await connect(app.ws('/felix'), doomed.token);
      const b = await connect(app.ws('/felix'), doomed.token);
      const survivor = await connect(app.ws('/felix'), token.token);
      await request(app.http).delete(`/admin/felix/tokens/${doomed.id}`).set(adminAuth).expect(204);
      for (const c of [a, b]) assert.deepEqual(await c.waitClose(), { code: 1008, reason: 'Token revoked' });
      await assertQuiet(survivor);
      await request(app.http).delete(`/admin/felix/tokens/${doomed.id}`).set(adminAuth).expect(404);
    });
  });

  describe('admin API', () => {
    it('creates tokens in Felix format: 201 {id, token, public}, private by default', async () => {
      const issued = await createToken(app, {});
      assert.deepEqual(Object.keys(issued).sort(), ['id', 'public', 'token']);
      assert.match(issued.id, UUID_V4);
      assert.equal(issued.token.length, 260);
      assert.match(issued.token, FELIX_TOKEN_FORMAT);
      assert.equal(issued.public, false);
      const again = await createToken(app, {});
      assert.notEqual(again.token, issued.token);
      assert.notEqual(again.id, issued.id);
    });

    it('refuses to register a token twice (409)', async () => {
      await createToken(app, { token: 'duplicate-token-0123456789' });
      const res = await request(app.http)
        .post('/admin/felix/tokens')
        .set(adminAuth)
        .send({ token: 'duplicate-token-0123456789' })
        .expect(409);
      assert.equal((res.body as { statusCode: number }).statusCode, 409);
    });

    it('answers 401 without the admin bearer token, and changes nothing', async () => {
      const guild = snowflake();
      const routes: [Method, string, unknown?][] = [
        ['post', '/admin/felix/tokens', {}],
        ['delete', `/admin/felix/tokens/${token.id}`],
        ['put', `/admin/felix/guilds/${guild}`, { a: 1 }],
        ['get', `/admin/felix/guilds/${guild}`],
        ['put', `/admin/felix/users/${guild}`, { a: 1 }],
        ['get', `/admin/felix/users/${guild}`],
        ['put', '/admin/felix/status', { shards: [], guildsCount: 999 }],
      ];
      for (const auth of [undefined, 'Bearer wrong-token-0123456789', token.token]) {
        for (const [method, path, body] of routes) {
          let req = call(app, method, path);
          if (auth !== undefined) req = req.set('Authorization', auth);
          const res = await (body === undefined ? req : req.send(body as object));
          assert.equal(res.status, 401, `${method} ${path} with ${auth ?? 'no auth'}`);
          assert.equal((res.body as { statusCode: number }).statusCode, 401);
        }
      }
      await request(app.http).get(`/admin/felix/guilds/${guild}`).set(adminAuth).expect(404);
      const c = await connect(app.ws('/felix'), token.token);
      assert.notEqual((await heartbeat(c)).guildsCount, 999);
    });

    it('answers 400 with one message per bad field', async () => {
      const bad = async (method: 'post' | 'put', path: string, body: unknown): Promise<string[]> => {
        const res = await request(app.http)
          [method](path)
          .set(adminAuth)
          .send(body as object)
          .expect(400);
        return (res.body as { message: string[] }).message;
      };
      assert.deepEqual(await bad('post', '/admin/felix/tokens', { public: 'yes' }), [
        'public: must be a boolean value',
      ]);
      assert.equal((await bad('post', '/admin/felix/tokens', { token: 'short' })).length, 1);
      assert.equal((await bad('post', '/admin/felix/tokens', { token: 'has spaces in it 0123456789' })).length, 1);
      assert.deepEqual(await bad('post', '/admin/felix/tokens', { extra: 1 }), ['extra: should not exist']);
      assert.deepEqual(await bad('post', '/admin/felix/tokens', { token: 5, user: 7, public: 1 }), [
        'token: must be a string',
        'user: must be a string',
        'public: must be a boolean value',
      ]);

      assert.deepEqual(await bad('put', '/admin/felix/status', {}), [
        'shards: must be an array',
        'guildsCount: must be an integer number',
      ]);
      const typed = await bad('put', '/admin/felix/status', {
        shards: [{ id: 0, ping: 'fast' }],
        guildsCount: -1,
        memoryUsage: 'a lot',
        uptime: 1.5,
      });
      assert.deepEqual(typed.map((m) => m.split(':')[0]).sort(), ['guildsCount', 'memoryUsage', 'shards', 'uptime']);
      assert.deepEqual((await bad('put', '/admin/felix/status', { shards: [1], guildsCount: 1 })).length, 1);

      assert.deepEqual(await bad('put', `/admin/felix/guilds/${snowflake()}`, [1, 2]), ['body: must be a JSON object']);
      assert.deepEqual(await bad('put', `/admin/felix/users/${snowflake()}`, [{}]), ['body: must be a JSON object']);
    });

    it('answers 400 for an id that is not a snowflake or a token id that is not a UUID', async () => {
      for (const path of [
        '/admin/felix/guilds/abc',
        '/admin/felix/guilds/123456789012345678901',
        '/admin/felix/users/-1',
        '/admin/felix/users/1e5',
      ]) {
        await request(app.http).get(path).set(adminAuth).expect(400);
        await request(app.http).put(path).set(adminAuth).send({ a: 1 }).expect(400);
      }
      const res = await request(app.http).delete('/admin/felix/tokens/not-a-uuid').set(adminAuth).expect(400);
      assert.equal((res.body as { message: string[] }).message.length, 1);
    });

    it('answers 404 for an unknown token id or stored document', async () => {
      await request(app.http)
        .delete('/admin/felix/tokens/6f1c2d3e-4a5b-4c6d-8e7f-8091a2b3c4d5')
        .set(adminAuth)
        .expect(404);
      await request(app.http).get(`/admin/felix/guilds/${snowflake()}`).set(adminAuth).expect(404);
      await request(app.http).get(`/admin/felix/users/${snowflake()}`).set(adminAuth).expect(404);
    });

    it('documents its routes in the OpenAPI document', async () => {
      const res = await request(app.http).get('/admin/openapi.json').set(adminAuth).expect(200);
      const paths = (res.body as { paths: Record<string, Record<string, unknown>> }).paths;
      assert.ok(paths['/admin/felix/tokens']?.['post']);
      assert.ok(paths['/admin/felix/tokens/{tokenId}']?.['delete']);
      for (const kind of ['guilds', 'users']) {
        assert.ok(paths[`/admin/felix/${kind}/{id}`]?.['put']);
        assert.ok(paths[`/admin/felix/${kind}/{id}`]?.['get']);
      }
      assert.ok(paths['/admin/felix/status']?.['put']);
    });
  });
});

// ---- the dedicated port -----------------------------------------------------------------

describe('felix on FELIX_PORT', () => {
  let app: TestApp;
  let port: number;
  let token: FelixToken;

  before(async () => {
    port = await freePort();
    app = await startApp({ FELIX_PORT: String(port) });
    token = await createToken(app);
  });
  after(() => app.close());

  it('accepts the upgrade on any path of the dedicated port', async () => {
    for (const path of ['', '/', '/anything/at/all?x=1', '/felix', '/websocket']) {
      const c = await connect(`ws://127.0.0.1:${port}${path}`, token.token);
      await assertQuiet(c);
    }
    // The main port keeps /felix, and only /felix.
    const main = await connect(app.ws('/felix'), token.token);
    await assertQuiet(main);
    assert.equal((await expectUpgradeRejected(app.ws('/anything'))).status, 404);
  });

  it('refuses a missing or unknown token on the dedicated port with 403', async () => {
    assert.equal((await expectUpgradeRejected(`ws://127.0.0.1:${port}/`)).status, 403);
    const rejected = await expectUpgradeRejected(`ws://127.0.0.1:${port}/x`, {
      headers: { Authorization: 'unknown-token-0123456789' },
    });
    assert.equal(rejected.status, 403);
  });

  it('answers a plain HTTP request on the dedicated port with 426', async () => {
    const res = await request(`http://127.0.0.1:${port}`).get('/');
    assert.equal(res.status, 426);
  });

  it('delivers updates to sockets on the dedicated port', async () => {
    const guild = snowflake();
    const c = await connect(`ws://127.0.0.1:${port}/`, token.token);
    await listen(c, { guilds: [guild] });
    await putDocument(app, 'guilds', guild, { id: guild });
    await expectGdb(c, guild, { id: guild });
  });
});

// ---- the ping sweep ---------------------------------------------------------------------

describe('felix ping sweep (FELIX_PING_INTERVAL_MS=100)', () => {
  let app: TestApp;
  let token: FelixToken;

  before(async () => {
    app = await startApp({ FELIX_PING_INTERVAL_MS: '100' });
    token = await createToken(app);
  });
  after(() => app.close());

  it('keeps a socket that answers pings', async () => {
    const c = await connect(app.ws('/felix'), token.token);
    let pings = 0;
    await new Promise<void>((resolve) => {
      c.socket.on('ping', () => {
        if (++pings === 3) resolve();
      });
    });
    await assertQuiet(c);
  });

  it('terminates a socket that does not answer a ping before the next one (no close frame)', async () => {
    const c = await connect(app.ws('/felix'), token.token, { autoPong: false });
    let pings = 0;
    c.socket.on('ping', () => pings++);
    const closed = await c.waitClose(2000);
    assert.equal(closed.code, 1006);
    assert.ok(pings >= 1, 'it was pinged before being dropped');
  });
});

// ---- heartbeats and the Redis store -----------------------------------------------------

describe('felix heartbeats with the Redis engine', await redisSuite(), () => {
  const prefix = uniquePrefix();
  let redis: RedisProcess;
  let watch: KeyWatch;
  let app: TestApp;
  let token: FelixToken;

  before(async () => {
    // A Redis of this suite's own: MONITOR slows a server down for everyone using it.
    redis = await RedisProcess.start();
    watch = await KeyWatch.start(redis.url, `${prefix}store:${STATUS_KEY}`, prefix);
    // The heartbeat flood is on purpose: no inbound budget to cut it short.
    app = await startApp({ REDIS_URL: redis.url, REDIS_KEY_PREFIX: prefix, WS_INBOUND_FRAMES_PER_SEC: '0' });
    token = await createToken(app);
  });

  after(async () => {
    await app?.close();
    watch?.stop();
    await redis?.stop();
  });

  it('reads the status once at start-up; a heartbeat flood reads it no more', async () => {
    await waitFor(() => watch.count('GET') === 1, { what: 'the start-up read of the status' });
    const clients = await Promise.all([1, 2, 3, 4].map(() => connect(app.ws('/felix'), token.token)));
    const before = await heartbeatFlood(clients, 250);
    for (const ack of before) assert.equal(ack.guildsCount, 0, 'nothing reported yet');

    await request(app.http)
      .put('/admin/felix/status')
      .set(adminAuth)
      .send({ shards: [{ id: 0, latency: 30 }], guildsCount: 4321, uptime: 1000 })
      .expect(204);
    const after = await heartbeatFlood(clients, 250);
    for (const ack of after) {
      assert.equal(ack.guildsCount, 4321);
      assert.deepEqual(ack.shards, [{ id: 0, ping: 30 }]);
      assert.ok(ack.uptime >= 1000);
    }

    await watch.sync();
    assert.equal(before.length + after.length, 2000);
    assert.equal(watch.count('GET'), 1, '2000 heartbeats, no store read');
    assert.equal(watch.count('SET'), 1, 'the report was stored');
  });
});
