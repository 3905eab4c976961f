import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { FatesModule } from '../../src/protocols/fates/fates.module.js';
import { startApp, type TestApp } from '../helpers/app.js';
import {
  eidsOf,
  FatesClient,
  FLAMEPAW_PATH,
  history,
  INVALID_AUTH,
  newBot,
  postEvent,
  setToken,
  V2_PATH,
  vote,
  type FlamepawEnvelope,
} from '../helpers/fates-client.js';
import { admin, readyStatus } from '../helpers/http.js';
import { RedisProcess, redisSuite, uniquePrefix } from '../helpers/redis.js';
import { openTopology, TOPOLOGIES, topologyLabel, topologySuite, type TestRedis } from '../helpers/topology.js';
import { waitFor } from '../helpers/wait.js';

const LIMIT = 8;

for (const topology of TOPOLOGIES) {
  describe(`fates across two instances on ${topologyLabel(topology)}`, await topologySuite(topology), () => {
    const prefix = uniquePrefix();
    const clients: FatesClient[] = [];
    let redis: TestRedis;
    let env: Record<string, string>;
    let a: TestApp;
    let b: TestApp;

    async function start(): Promise<TestApp> {
      const app = await startApp(env, { protocols: [FatesModule] });
      await waitFor(async () => (await readyStatus(app)) === 200, {
        what: 'the instance to be ready',
      });
      return app;
    }

    async function ready(app: TestApp, path: string, identify: Record<string, unknown>): Promise<FatesClient> {
      const { client } = await FatesClient.ready(app, path, identify);
      clients.push(client);
      return client;
    }

    before(async () => {
      redis = await openTopology(topology);
      env = { ...redis.env(prefix), FATES_RATE_LIMIT: String(LIMIT) };
      [a, b] = await Promise.all([start(), start()]);
      await redis.busSubscribers(prefix, 2);
    });

    after(async () => {
      await Promise.all(clients.map((c) => c.close()));
      await Promise.all([a?.close(), b?.close()]);
      await redis?.deleteKeys(prefix);
      await redis?.close();
    });

    it('delivers an event posted right after a client is ready, on the other instance', async () => {
      for (let i = 0; i < 5; i++) {
        const { id, token } = await newBot(a);
        const onB = await ready(b, i % 2 ? V2_PATH : FLAMEPAW_PATH, i % 2 ? { id, token } : { id, token, bot: true });
        const eid = await postEvent(a, `bots/${id}`, vote(String(i), i));
        assert.deepEqual(eidsOf(await onB.takeEvents(1)), [eid]);
      }
    });

    it('delivers an event published on A to clients identified on B exactly once, in both eras', async () => {
      const { id, token } = await newBot(a);
      const v2OnB = await ready(b, V2_PATH, { id, token });
      const flamepawOnB = await ready(b, FLAMEPAW_PATH, { id, token, bot: true });
      const flamepawOnA = await ready(a, '/api/dragon/ws', { id, token, bot: true });
      const first = await postEvent(a, `bots/${id}`, vote('1', 1));
      // A second event published on the other instance can only arrive after any duplicate of the first.
      const marker = await postEvent(b, `bots/${id}`, vote('2', 2));
      for (const client of [v2OnB, flamepawOnB, flamepawOnA]) {
        assert.deepEqual(eidsOf(await client.takeEvents(1)), [first]);
        assert.deepEqual(eidsOf(await client.takeEvents(1)), [marker]);
      }
      const global = await postEvent(b, 'global', { m: { e: 81 }, ctx: { user: null } });
      const events = (await flamepawOnA.takeEvents(1)) as FlamepawEnvelope[];
      assert.equal(events[0]?.chan, 'global');
      assert.deepEqual(eidsOf(events), [global]);
      assert.deepEqual(eidsOf(await v2OnB.takeEvents(1)), [global]);
    });

    it('shares the rate limit between instances', async () => {
      const { id, token } = await newBot(a);
      const expected = [LIMIT - 2, LIMIT - 4, LIMIT - 6, LIMIT - 8];
      for (const [i, remaining] of expected.entries()) {
        const { client, ready: control } = await FatesClient.ready(i % 2 ? b : a, V2_PATH, { id, token });
        assert.equal(control.requests_remaining, remaining);
        await client.close();
      }
      const over = await FatesClient.open(b, FLAMEPAW_PATH);
      const control = await over.identify({ id, token, bot: true });
      assert.equal(control.code, 'ratelimited');
      assert.equal(control.detail, `Past max requests that can be sent (${LIMIT + 2})`);
      await over.expectClose(4012, 'Ratelimited');
    });

    it('counts chatter on one instance against a connection on the other', async () => {
      const { id, token } = await newBot(a);
      const onA = await ready(a, FLAMEPAW_PATH, { id, token, bot: true });
      const onB = await FatesClient.ready(b, V2_PATH, { id, token });
      assert.equal(onB.ready.requests_remaining, LIMIT - 4);
      for (let i = 0; i < LIMIT - 4; i++) onB.client.send('chatter');
      await waitFor(async () => (await redis.client.get(`${prefix}store:fates:ratelimit:bot:${id}`)) === String(LIMIT));
      onA.send('one more');
      const control = await onA.control();
      assert.equal(control.code, 'ratelimited');
      assert.equal(control.requests_remaining, -1);
      await onA.expectClose(4012, 'Ratelimited');
      await onB.client.close();
    });

    it('closes a socket on B with 4004 when the token is rotated on A', async () => {
      const { id, token } = await newBot(a);
      const onB = await FatesClient.ready(b, FLAMEPAW_PATH, { id, token, bot: true });
      await setToken(a, 'bots', id, 'rotated-on-a');
      await onB.client.expectClose(4004, INVALID_AUTH);
    });

    it('replays the stored history from an instance restarted on the same Redis', async () => {
      const { id, token } = await newBot(a);
      const eids = [];
      for (let i = 0; i < 3; i++) eids.push(await postEvent(a, `bots/${id}`, vote(String(i), i)));
      const global = eidsOf(await history(b, 'global'));
      const before = await FatesClient.ready(a, V2_PATH, { id, token });
      assert.equal(before.ready.requests_remaining, LIMIT - 2);
      await a.close();
      assert.equal((await before.client.waitClose()).code, 1001);
      a = await start();
      await redis.busSubscribers(prefix, 2);
      assert.deepEqual(eidsOf(await history(a, `bots/${id}`)), eids);
      const client = await ready(a, FLAMEPAW_PATH, { id, token, bot: true, send_all: true });
      const replay = await client.eventsUntil('done_prior');
      assert.deepEqual(eidsOf(replay.events), [...eids, ...global]);
      // The token and the budget survived the restart too.
      assert.equal(replay.control.requests_remaining, LIMIT - 4);
      const live = await postEvent(b, `bots/${id}`, vote('after restart', 9));
      assert.deepEqual(eidsOf(await client.takeEvents(1)), [live]);
    });
  });
}

describe('fates while Redis is away', await redisSuite(), () => {
  let redis: RedisProcess;
  let app: TestApp;

  before(async () => {
    redis = await RedisProcess.start();
    app = await startApp({ REDIS_URL: redis.url, REDIS_KEY_PREFIX: uniquePrefix() }, { protocols: [FatesModule] });
    await waitFor(async () => (await readyStatus(app)) === 200, { what: 'ready' });
  });

  after(async () => {
    await app?.close();
    await redis?.stop();
  });

  it('answers admin writes 503, closes a new identify 4500, keeps live clients, and recovers', async () => {
    const { id, token } = await newBot(app);
    const live = await FatesClient.ready(app, V2_PATH, { id, token });
    await redis.stop();
    await waitFor(async () => (await readyStatus(app)) === 503, { what: 'not ready' });

    const post = await admin(app, 'POST', `/admin/fates/bots/${id}/events`, vote('1', 1));
    assert.equal(post.status, 503, post.text);
    const put = await admin(app, 'PUT', `/admin/fates/bots/${id}/token`, { token: 'x' });
    assert.equal(put.status, 503, put.text);
    const fresh = await FatesClient.open(app, FLAMEPAW_PATH);
    fresh.send({ id, token, bot: true });
    assert.deepEqual(await fresh.waitClose(), { code: 4500, reason: 'Internal Server Error, try reconnecting?' });
    // Chatter cannot be counted meanwhile; the identified client is not punished for it.
    live.client.send('chatter');

    await redis.start();
    await waitFor(async () => (await readyStatus(app)) === 200, { what: 'ready again', timeoutMs: 8000 });
    // This redis-server keeps nothing across a restart, so the token is gone: when the bus
    // rejoins, the connection that held it is closed like any revoked one.
    assert.equal((await live.client.waitClose()).code, 4004);
    await setToken(app, 'bots', id, token);
    const again = await FatesClient.ready(app, V2_PATH, { id, token });
    const eid = await postEvent(app, `bots/${id}`, vote('2', 2));
    assert.deepEqual(eidsOf(await again.client.takeEvents(1)), [eid]);
    await again.client.close();
  });
});
