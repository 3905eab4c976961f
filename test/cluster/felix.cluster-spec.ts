import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { EventBus } from '../../src/core/bus/event-bus.js';
import { Store } from '../../src/core/store/store.js';
import { STATUS_KEY, STATUS_TOPIC } from '../../src/protocols/felix/felix-status.service.js';
import { startApp, type TestApp } from '../helpers/app.js';
import {
  assertQuiet,
  connectFelix,
  createToken,
  heartbeat,
  heartbeatFlood,
  listen,
  putDocument,
  putStatus,
  type AckData,
} from '../helpers/felix-client.js';
import { admin, expectStatus, readyStatus } from '../helpers/http.js';
import { snowflake } from '../helpers/ids.js';
import { KeyWatch, killSubscribers, RedisProcess, redisSuite, uniquePrefix } from '../helpers/redis.js';
import { openTopology, TOPOLOGIES, topologyLabel, topologySuite, type TestRedis } from '../helpers/topology.js';
import { waitFor } from '../helpers/wait.js';
import { expectUpgradeRejected, type WsTestClient } from '../helpers/ws-client.js';

const opened: WsTestClient[] = [];

async function connect(app: TestApp, token: string): Promise<WsTestClient> {
  const client = await connectFelix(app.ws('/felix'), token);
  opened.push(client);
  return client;
}

/**
 * Heartbeats until the ACK reports `guildsCount`, and returns that ACK. A report reaches the
 * instance that took it before its PUT is answered, the others a moment later: Redis answers
 * a publish before it writes the message to the subscribers.
 */
async function ackOnceReported(c: WsTestClient, guildsCount: number): Promise<AckData> {
  return waitFor(
    async () => {
      const ack = await heartbeat(c);
      return ack.guildsCount === guildsCount ? ack : undefined;
    },
    { intervalMs: 2, what: `an ACK with guildsCount ${guildsCount}` },
  );
}

for (const topology of TOPOLOGIES) {
  describe(`felix across two instances on ${topologyLabel(topology)}`, await topologySuite(topology), () => {
    const prefix = uniquePrefix();
    let redis: TestRedis;
    let a: TestApp;
    let b: TestApp;

    before(async () => {
      redis = await openTopology(topology);
      const env = redis.env(prefix);
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
            await putDocument(from, 'guilds', guild, {});
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
      await redis?.deleteKeys(prefix);
      await redis?.close();
    });

    it('delivers an update made right after a listen is acknowledged, on the other instance', async () => {
      const token = await createToken(a);
      const onB = await connect(b, token.token);
      for (let i = 0; i < 5; i++) {
        const guild = snowflake();
        await listen(onB, { guilds: [guild] });
        await putDocument(a, 'guilds', guild, { id: guild });
        assert.deepEqual(await onB.next(), {
          code: 10002,
          name: 'GDB Update',
          data: { guildID: guild, guildData: { id: guild } },
        });
      }
    });

    it('authenticates on B with a token created on A', async () => {
      const token = await createToken(a, { user: '1234' });
      const c = await connect(b, token.token);
      await assertQuiet(c);
      const open = await createToken(a, { public: true });
      assert.equal(
        (await expectUpgradeRejected(b.ws('/felix'), { headers: { Authorization: open.token } })).status,
        403,
      );
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
      await putDocument(a, 'guilds', guild, guildData);
      const expected = { code: 10002, name: 'GDB Update', data: { guildID: guild, guildData } };
      for (const c of [onB, alsoOnB, onA]) assert.deepEqual(await c.next(), expected);
      // A duplicate would have arrived before the ACK...
      for (const c of [onB, alsoOnB, onA, notListening]) await assertQuiet(c);
      // ...or, coming through Redis, before the next update over the same bus channel.
      const second = { id: guild, generalSettings: { prefix: '?' } };
      await putDocument(a, 'guilds', guild, second);
      const expectedSecond = { code: 10002, name: 'GDB Update', data: { guildID: guild, guildData: second } };
      for (const c of [onB, alsoOnB, onA]) assert.deepEqual(await c.next(), expectedSecond);
      for (const c of [onB, alsoOnB, onA, notListening]) await assertQuiet(c);

      const stored = await expectStatus(b, 200, 'GET', `/admin/felix/guilds/${guild}`);
      assert.deepEqual(stored.json, second);
    });

    it('delivers a user update made through B to a listener on A', async () => {
      const token = await createToken(b);
      const user = snowflake();
      const onA = await connect(a, token.token);
      await listen(onA, { users: [user] });
      await putDocument(b, 'users', user, { id: user });
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
      await expectStatus(a, 204, 'DELETE', `/admin/felix/tokens/${token.id}`);
      assert.deepEqual(await onB.waitClose(), { code: 1008, reason: 'Token revoked' });
      assert.deepEqual(await onA.waitClose(), { code: 1008, reason: 'Token revoked' });
      const rejected = await expectUpgradeRejected(b.ws('/felix'), { headers: { Authorization: token.token } });
      assert.equal(rejected.status, 403);
    });

    it('answers heartbeats on B with the status reported on A', async () => {
      const token = await createToken(a);
      const onB = await connect(b, token.token);
      await putStatus(a, { shards: [{ id: 0, ping: 12 }], guildsCount: 4242, memoryUsage: 10.5, uptime: 1000 });
      const ack = await ackOnceReported(onB, 4242);
      assert.deepEqual(ack['shards'], [{ id: 0, ping: 12 }]);
      assert.equal(ack['guildsCount'], 4242);
      assert.equal(ack['memoryUsage'], 10.5);
      assert.ok(ack.uptime >= 1000);
    });

    it('pushes each status report to both instances once: once it is there, every later heartbeat has it', async () => {
      const token = await createToken(a);
      const onA = await connect(a, token.token);
      const onB = await connect(b, token.token);
      const pushes = new Map<TestApp, number>([
        [a, 0],
        [b, 0],
      ]);
      const unsubscribe = [a, b].map((app) =>
        app.app.get(EventBus).subscribe(STATUS_TOPIC, () => pushes.set(app, (pushes.get(app) ?? 0) + 1)),
      );
      try {
        const rounds = 8;
        for (let i = 0; i < rounds; i++) {
          const through = i % 2 === 0 ? a : b;
          await putStatus(through, { shards: [{ id: i, ping: i }], guildsCount: 5000 + i });
          // The instance that took the PUT has the report already; no heartbeat waits for it.
          const own = await heartbeat(through === a ? onA : onB);
          assert.equal(own['guildsCount'], 5000 + i, `round ${i}, reported through ${through === a ? 'A' : 'B'}`);
          for (const c of [onB, onA]) {
            await ackOnceReported(c, 5000 + i);
            const ack = await heartbeat(c);
            assert.equal(ack['guildsCount'], 5000 + i, `round ${i}, reported through ${through === a ? 'A' : 'B'}`);
            assert.deepEqual(ack['shards'], [{ id: i, ping: i }]);
          }
        }
        // A duplicate of a push would have come in ahead of the next one on the same channel.
        assert.deepEqual([pushes.get(a), pushes.get(b)], [rounds, rounds]);
      } finally {
        for (const stop of unsubscribe) stop();
      }
    });
  });
}

describe('felix status across a bus gap and a Redis outage', await redisSuite(), () => {
  const prefix = uniquePrefix();
  const statusKey = `${prefix}store:${STATUS_KEY}`;
  let dir: string;
  let redis: RedisProcess;
  let watch: KeyWatch;
  let a: TestApp;
  let b: TestApp;

  const ready = (app: TestApp): Promise<true> =>
    waitFor(async () => (await readyStatus(app)) === 200, { what: 'ready' });

  before(async () => {
    // Its own Redis: the test drops every bus subscription, watches with MONITOR and stops
    // the server, none of which may touch anyone else. Persisted, so tokens outlive the stop.
    dir = await mkdtemp(join(tmpdir(), 'felix-status-'));
    redis = await RedisProcess.start({ persistDir: dir });
    watch = await KeyWatch.start(redis.url, statusKey, prefix);
    const env = { REDIS_URL: redis.url, REDIS_KEY_PREFIX: prefix };
    [a, b] = await Promise.all([startApp(env), startApp(env)]);
    await Promise.all([ready(a), ready(b)]);
  });

  afterEach(async () => {
    await Promise.all(opened.splice(0).map((c) => c.close()));
  });

  after(async () => {
    await Promise.all([a?.close(), b?.close()]);
    watch?.stop();
    await redis?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('reads the store once per instance at start-up and after a bus gap, never for heartbeats', async () => {
    await waitFor(() => watch.count('GET') === 2, { what: 'one start-up read per instance' });
    const token = await createToken(a);
    const onA = [await connect(a, token.token), await connect(a, token.token)];
    const onB = [await connect(b, token.token), await connect(b, token.token)];

    await putStatus(a, { shards: [{ id: 0, ping: 1 }], guildsCount: 11, uptime: 500 });
    for (const c of onB) await ackOnceReported(c, 11);
    const flood = await heartbeatFlood([...onA, ...onB], 250);
    assert.equal(flood.length, 1000);
    for (const ack of flood) assert.equal(ack['guildsCount'], 11);
    await watch.sync();
    assert.equal(watch.count('GET'), 2, '1000 heartbeats on two instances, no store read');

    // A report whose push is lost: stored, never announced (a publish during a gap is gone).
    await a.app.get(Store).set(STATUS_KEY, JSON.stringify({ shards: [], guildsCount: 22, reportedAt: Date.now() }));
    for (const c of [...onA, ...onB]) assert.equal((await heartbeat(c))['guildsCount'], 11);

    // A gap in the bus: both instances' subscriptions drop and come back by themselves.
    assert.equal(await killSubscribers(redis.url), 2);
    for (const c of [onA[0], onB[0]]) {
      assert.ok(c);
      await waitFor(async () => (await heartbeat(c))['guildsCount'] === 22, { what: 'the status re-read' });
    }
    await watch.sync();
    assert.equal(watch.count('GET'), 4, 'one re-read per instance');
    const after = await heartbeatFlood([...onA, ...onB], 100);
    for (const ack of after) assert.equal(ack['guildsCount'], 22);
    await watch.sync();
    assert.equal(watch.count('GET'), 4);
  });

  it('keeps answering heartbeats with the last status while Redis is down, and after it is back', async () => {
    const token = await createToken(a);
    const onA = await connect(a, token.token);
    const onB = await connect(b, token.token);
    await putStatus(b, { shards: [{ id: 3, ping: 3 }], guildsCount: 33, uptime: 1000 });
    assert.equal((await heartbeat(onB))['guildsCount'], 33);
    await ackOnceReported(onA, 33);

    watch.stop();
    await redis.stop();
    await waitFor(async () => (await readyStatus(a)) === 503, { what: 'not ready' });
    const during = await heartbeatFlood([onA, onB], 50);
    for (const ack of during) {
      assert.equal(ack['guildsCount'], 33);
      assert.deepEqual(ack['shards'], [{ id: 3, ping: 3 }]);
    }
    assert.equal((await admin(a, 'PUT', '/admin/felix/status', { shards: [], guildsCount: 44 })).status, 503);
    assert.equal((await heartbeat(onB))['guildsCount'], 33, 'a refused report changes nothing');

    await redis.start();
    await Promise.all([ready(a), ready(b)]);
    // Back with its data: the re-read after the gap finds the same report, the sockets stay.
    for (const c of [onA, onB]) assert.equal((await heartbeat(c))['guildsCount'], 33);
    await putStatus(a, { shards: [], guildsCount: 55 });
    assert.equal((await heartbeat(onA))['guildsCount'], 55);
    await ackOnceReported(onB, 55);
  });
});
