import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import request from 'supertest';
import { adminAuth, startApp, type TestApp } from '../helpers/app.js';
import { deleteKeys } from '../helpers/redis-cleanup.js';
import { redisSuite, SHARED_REDIS_URL, uniquePrefix } from '../helpers/redis.js';
import { waitFor } from '../helpers/wait.js';
import { expectUpgradeRejected, WsTestClient } from '../helpers/ws-client.js';

interface Issued {
  id: string;
  token: string;
  public: boolean;
}

interface ServerMessage {
  code: number;
  name: string;
  data: Record<string, unknown>;
}

const opened: WsTestClient[] = [];

let nextId = 200_000_000_000_000_000n;
const snowflake = (): string => String(nextId++);

async function createToken(app: TestApp, body: Record<string, unknown> = {}): Promise<Issued> {
  const res = await request(app.http).post('/admin/felix/tokens').set(adminAuth).send(body).expect(201);
  return res.body as Issued;
}

async function connect(app: TestApp, token: string): Promise<WsTestClient> {
  const client = await WsTestClient.connect(app.ws('/felix'), { headers: { Authorization: token } });
  opened.push(client);
  return client;
}

/** Sends a heartbeat and returns the ACK data, asserting the ACK is the very next frame. */
async function heartbeat(c: WsTestClient): Promise<Record<string, unknown>> {
  c.send({ code: 20001 });
  const message = await c.next<ServerMessage>();
  assert.equal(message.code, 10001, `expected the ACK, got ${JSON.stringify(message).slice(0, 200)}`);
  return message.data;
}

async function listen(c: WsTestClient, lists: { users?: string[]; guilds?: string[] }): Promise<void> {
  c.send({ code: 20002, data: { users: lists.users ?? [], guilds: lists.guilds ?? [] } });
  await heartbeat(c);
}

async function assertQuiet(c: WsTestClient): Promise<void> {
  await heartbeat(c);
  assert.equal(c.pending, 0, 'nothing but the ACK arrived');
}

describe('felix across two instances on one Redis', await redisSuite(), () => {
  const prefix = uniquePrefix();
  const env = { REDIS_URL: SHARED_REDIS_URL, REDIS_KEY_PREFIX: prefix };
  let a: TestApp;
  let b: TestApp;

  before(async () => {
    [a, b] = await Promise.all([startApp(env), startApp(env)]);
    // Both instances' bus subscriptions are live once a publish from each reaches the other.
    const token = await createToken(a);
    for (const [from, to] of [
      [a, b],
      [b, a],
    ] as const) {
      const guild = snowflake();
      const probe = await connect(to, token.token);
      await listen(probe, { guilds: [guild] });
      await waitFor(
        async () => {
          await request(from.http).put(`/admin/felix/guilds/${guild}`).set(adminAuth).send({}).expect(204);
          return probe.next(200).then(
            () => true,
            () => false,
          );
        },
        { what: 'the bus between the instances' },
      );
      await probe.close();
    }
  });

  afterEach(async () => {
    await Promise.all(opened.splice(0).map((c) => c.close()));
  });

  after(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await deleteKeys(SHARED_REDIS_URL, prefix);
  });

  it('authenticates on B with a token created on A', async () => {
    const token = await createToken(a, { user: '1234' });
    const c = await connect(b, token.token);
    await assertQuiet(c);
    const open = await createToken(a, { public: true });
    assert.equal((await expectUpgradeRejected(b.ws('/felix'), { headers: { Authorization: open.token } })).status, 403);
  });

  it('delivers a guild update made through A to a listener on B exactly once', async () => {
    const token = await createToken(a);
    const guild = snowflake();
    const onB = await connect(b, token.token);
    const alsoOnB = await connect(b, token.token);
    const onA = await connect(a, token.token);
    const notListening = await connect(b, token.token);
    for (const c of [onB, alsoOnB, onA]) await listen(c, { guilds: [guild] });

    const guildData = { id: guild, generalSettings: { prefix: 'f!' } };
    await request(a.http).put(`/admin/felix/guilds/${guild}`).set(adminAuth).send(guildData).expect(204);
    const expected = { code: 10002, name: 'GDB Update', data: { guildID: guild, guildData } };
    for (const c of [onB, alsoOnB, onA]) assert.deepEqual(await c.next(), expected);
    // A duplicate would have arrived before the ACK...
    for (const c of [onB, alsoOnB, onA, notListening]) await assertQuiet(c);
    // ...or, coming through Redis, before the next update over the same bus channel.
    const second = { id: guild, generalSettings: { prefix: '?' } };
    await request(a.http).put(`/admin/felix/guilds/${guild}`).set(adminAuth).send(second).expect(204);
    const expectedSecond = { code: 10002, name: 'GDB Update', data: { guildID: guild, guildData: second } };
    for (const c of [onB, alsoOnB, onA]) assert.deepEqual(await c.next(), expectedSecond);
    for (const c of [onB, alsoOnB, onA, notListening]) await assertQuiet(c);

    const stored = await request(b.http).get(`/admin/felix/guilds/${guild}`).set(adminAuth).expect(200);
    assert.deepEqual(stored.body, second);
  });

  it('delivers a user update made through B to a listener on A', async () => {
    const token = await createToken(b);
    const user = snowflake();
    const onA = await connect(a, token.token);
    await listen(onA, { users: [user] });
    await request(b.http).put(`/admin/felix/users/${user}`).set(adminAuth).send({ id: user }).expect(204);
    assert.deepEqual(await onA.next(), {
      code: 10003,
      name: 'UDB Update',
      data: { userID: user, userData: { id: user } },
    });
    await assertQuiet(onA);
  });

  it('closes a socket on B when its token is revoked on A', async () => {
    const token = await createToken(a);
    const onB = await connect(b, token.token);
    const onA = await connect(a, token.token);
    await assertQuiet(onB);
    await request(a.http).delete(`/admin/felix/tokens/${token.id}`).set(adminAuth).expect(204);
    assert.deepEqual(await onB.waitClose(), { code: 1008, reason: 'Token revoked' });
    assert.deepEqual(await onA.waitClose(), { code: 1008, reason: 'Token revoked' });
    const rejected = await expectUpgradeRejected(b.ws('/felix'), { headers: { Authorization: token.token } });
    assert.equal(rejected.status, 403);
  });

  it('answers heartbeats on B with the status reported on A', async () => {
    const token = await createToken(a);
    const onB = await connect(b, token.token);
    await request(a.http)
      .put('/admin/felix/status')
      .set(adminAuth)
      .send({ shards: [{ id: 0, ping: 12 }], guildsCount: 4242, memoryUsage: 10.5, uptime: 1000 })
      .expect(204);
    const ack = await heartbeat(onB);
    assert.deepEqual(ack['shards'], [{ id: 0, ping: 12 }]);
    assert.equal(ack['guildsCount'], 4242);
    assert.equal(ack['memoryUsage'], 10.5);
    assert.ok((ack['uptime'] as number) >= 1000);
  });
});
