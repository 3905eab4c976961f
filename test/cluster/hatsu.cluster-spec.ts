import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { Engine } from '../../src/core/engine/engine.js';
import type { CountTarget } from '../../src/core/registry/client-registry.js';
import { HatsuModule } from '../../src/protocols/hatsu/hatsu.module.js';
import { instanceId, startApp, type TestApp } from '../helpers/app.js';
import { spawnGateway } from '../helpers/gateway-process.js';
import { connectHatsu, dispatch, HatsuClient, newUser, putGuild, type HatsuMessage } from '../helpers/hatsu-client.js';
import { admin, waitReady, type ClientInfo } from '../helpers/http.js';
import { snowflake } from '../helpers/ids.js';
import { uniquePrefix } from '../helpers/redis.js';
import { openTopology, TOPOLOGIES, topologyLabel, topologySuite, type TestRedis } from '../helpers/topology.js';
import { waitFor } from '../helpers/wait.js';

/** Two instances on `redis` under a key prefix of their own, serving hatsu only. */
async function startPair(prefix: string, redis: TestRedis): Promise<[TestApp, TestApp]> {
  const env = redis.env(prefix);
  const pair = await Promise.all([
    startApp(env, { protocols: [HatsuModule] }),
    startApp(env, { protocols: [HatsuModule] }),
  ]);
  await Promise.all(pair.map((app) => waitReady(app, 200)));
  // Both buses must be listening before anything is published across.
  await redis.busSubscribers(prefix, 2);
  return pair;
}

/** The hatsu clients the cluster-wide registry lists (what dispatch counts come from). */
async function registryView(app: TestApp): Promise<ClientInfo[]> {
  const answer = await admin(app, 'GET', '/admin/connections?protocol=hatsu&limit=1000');
  assert.equal(answer.status, 200, answer.text);
  return (answer.json as { clients: ClientInfo[] }).clients;
}

for (const topology of TOPOLOGIES) {
  describe(`hatsu across two instances on ${topologyLabel(topology)}`, await topologySuite(topology), () => {
    const prefix = uniquePrefix();
    const clients: HatsuClient[] = [];
    let redis: TestRedis;
    let a: TestApp;
    let b: TestApp;
    let markers = 0;

    /** A user written through A whose session is written through B. */
    const user = (): Promise<{ userId: string; sessionId: string }> => newUser(a, { sessionOn: b });

    async function connect(
      app: TestApp,
      sessionId: string,
      options: Parameters<typeof connectHatsu>[2] = {},
    ): Promise<HatsuClient> {
      const client = await connectHatsu(app, sessionId, options);
      clients.push(client);
      return client;
    }

    /** Waits until the registry (read from `app`) lists `n` identified hatsu sessions matching `filter`. */
    async function registryShows(app: TestApp, n: number, filter: (c: ClientInfo) => boolean): Promise<void> {
      await waitFor(async () => (await registryView(app)).filter((c) => c.user !== null && filter(c)).length === n, {
        what: `the registry to list ${n} matching sessions`,
      });
    }

    /** Waits until the cluster-wide registry count (read from `app`) of a hatsu index is `n`. */
    async function countShows(app: TestApp, target: CountTarget, n: number): Promise<void> {
      const registry = app.app.get(Engine).registry;
      await waitFor(async () => (await registry.count('hatsu', target)) === n, {
        what: `the count of ${JSON.stringify(target)} to be ${n}`,
      });
    }

    /**
     * Proves that what `trigger` sent reached each receiver exactly once and no bystander:
     * a marker dispatched to everyone from A, then one from B, follow it. Any duplicate or
     * stray copy of the message would arrive before one of them, so each receiver must read
     * exactly [message, marker A, marker B] and each bystander [marker A, marker B].
     */
    async function proveExactlyOnce(
      trigger: () => Promise<void>,
      expected: HatsuMessage,
      receivers: HatsuClient[],
      bystanders: HatsuClient[],
    ): Promise<void> {
      await trigger();
      for (const client of receivers) assert.deepEqual(await client.next(), expected);
      const markerA = { t: 'MARKER', d: { from: 'a', n: ++markers } };
      await dispatch(a, { ...markerA, to: { all: true } });
      for (const client of [...receivers, ...bystanders]) assert.deepEqual(await client.next(), markerA);
      const markerB = { t: 'MARKER', d: { from: 'b', n: ++markers } };
      await dispatch(b, { ...markerB, to: { all: true } });
      for (const client of [...receivers, ...bystanders]) assert.deepEqual(await client.next(), markerB);
    }

    before(async () => {
      redis = await openTopology(topology);
      [a, b] = await startPair(prefix, redis);
    });

    after(async () => {
      await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
      await Promise.all([a?.close(), b?.close()]);
      await redis?.deleteKeys(prefix);
      await redis?.close();
    });

    it('delivers a dispatch sent right after READY, on the other instance', async () => {
      for (let i = 0; i < 5; i++) {
        const { userId, sessionId } = await user();
        const onB = await connect(b, sessionId);
        const event = { t: 'JUST_READY', d: { i } };
        assert.equal(await dispatch(a, { ...event, to: { user_id: userId } }), 1);
        assert.deepEqual(await onB.next(), event);
      }
    });

    it('shares users, guilds and sessions: data written on one instance identifies on the other', async () => {
      const { userId, sessionId } = await user();
      const guild = snowflake();
      await putGuild(b, guild, [userId]);
      const onA = await connect(a, sessionId, { guilds: 0 });
      const init = await onA.expect('GUILD_INIT');
      assert.equal((init.d as { _id: string })._id, guild);
    });

    it('delivers guild, user and all dispatches to sessions on both instances exactly once, with the right count', async () => {
      const u1 = await user();
      const u2 = await user();
      const u3 = await user();
      const guild = snowflake();
      await putGuild(a, guild, [u1.userId, u2.userId]);
      const u1a = await connect(a, u1.sessionId, { guilds: 1 });
      const u1b = await connect(b, u1.sessionId, { guilds: 1 });
      const u2b = await connect(b, u2.sessionId, { guilds: 1 });
      const u3a = await connect(a, u3.sessionId);
      const u3b = await connect(b, u3.sessionId);
      const members = [u1.userId, u2.userId];
      await registryShows(a, 3, (c) => c.user !== null && members.includes(c.user));

      let count = -1;
      const guildEvent = { t: 'GUILD_UPDATE', d: { name: 'cluster' } };
      await proveExactlyOnce(
        async () => {
          count = await dispatch(a, { ...guildEvent, to: { guild_id: guild } });
        },
        guildEvent,
        [u1a, u1b, u2b],
        [u3a, u3b],
      );
      assert.equal(count, 3);

      const userEvent = { t: 'NOTIFICATION', type: 'FRIEND_REQUEST', excerpt: { from: u2.userId } };
      await proveExactlyOnce(
        async () => {
          count = await dispatch(b, { ...userEvent, to: { user_id: u1.userId } });
        },
        userEvent,
        [u1a, u1b],
        [u2b, u3a, u3b],
      );
      assert.equal(count, 2);

      // Everyone in this cluster: these five and the first test's session.
      const everyone = [u1a, u1b, u2b, u3a, u3b];
      const allEvent = { t: 'CHANNEL_CREATE', d: { id: '1', name: 'all' } };
      await proveExactlyOnce(
        async () => {
          count = await dispatch(b, { ...allEvent, to: { all: true } });
        },
        allEvent,
        everyone,
        [],
      );
      assert.equal(count, (await registryView(a)).filter((c) => c.user !== null).length);
      assert.ok(count >= everyone.length);
    });

    it('fans a presence out to both instances exactly once, honouring presences false', async () => {
      const sender = await user();
      const watcher = await user();
      const quiet = await user();
      const guild = snowflake();
      await putGuild(b, guild, [sender.userId, watcher.userId, quiet.userId]);
      const s = await connect(a, sender.sessionId, { guilds: 1 });
      const wA = await connect(a, watcher.sessionId, { guilds: 1 });
      const wB = await connect(b, watcher.sessionId, { guilds: 1 });
      const q = await connect(b, quiet.sessionId, { guilds: 1, presences: false });
      const expected: HatsuMessage = {
        t: 'PRESENCE_UPDATE',
        id: sender.userId,
        _id: sender.userId,
        d: { type: 1, description: 'online', emoji: null, embed: null },
      };
      await proveExactlyOnce(
        () => {
          s.send({ t: 'PRESENCE', type: 1, description: 'online' });
          return Promise.resolve();
        },
        expected,
        [wA, wB, s],
        [q],
      );
    });

    it('counts guild, user and everyone across both instances, presence dispatches included', async () => {
      const open1 = await user();
      const quiet = await user();
      const guild = snowflake();
      await putGuild(a, guild, [open1.userId, quiet.userId]);
      const oA = await connect(a, open1.sessionId, { guilds: 1 });
      const oB = await connect(b, open1.sessionId, { guilds: 1, encoding: 'zlib' });
      const qB = await connect(b, quiet.sessionId, { guilds: 1, presences: false });
      // What dispatch counts comes from the registry's mirrored counts: wait for B's to show.
      await countShows(a, { kind: 'channel', id: `presence:guild:${guild}` }, 2);
      await countShows(a, { kind: 'channel', id: `guild:${guild}` }, 3);

      const presence = (n: number): HatsuMessage => ({
        t: 'PRESENCE_UPDATE',
        id: quiet.userId,
        _id: quiet.userId,
        d: { n },
      });
      const send = async (app: TestApp, n: number, to: Record<string, unknown>): Promise<number> =>
        dispatch(app, { t: 'PRESENCE_UPDATE', id: quiet.userId, d: { n }, to });
      let count = -1;
      await proveExactlyOnce(
        async () => {
          count = await send(a, 1, { guild_id: guild });
        },
        presence(1),
        [oA, oB],
        [qB],
      );
      assert.equal(count, 2);
      await proveExactlyOnce(
        async () => {
          count = await send(b, 2, { user_id: open1.userId });
        },
        presence(2),
        [oA, oB],
        [qB],
      );
      assert.equal(count, 2);
      assert.equal(await send(a, 3, { user_id: quiet.userId }), 0);
      assert.equal(await dispatch(a, { t: 'GUILD_UPDATE', d: { n: 4 }, to: { guild_id: guild } }), 3);
      assert.equal(await dispatch(a, { t: 'NOTIFICATION', type: 'X', excerpt: {}, to: { user_id: quiet.userId } }), 1);
      for (const client of [oA, oB]) assert.deepEqual(await client.next(), { t: 'GUILD_UPDATE', d: { n: 4 } });
      assert.deepEqual(await qB.next(), { t: 'GUILD_UPDATE', d: { n: 4 } });
      assert.deepEqual(await qB.next(), { t: 'NOTIFICATION', type: 'X', excerpt: {} });

      // Everyone, from both sides: as many as the cluster registry lists.
      const view = (await registryView(a)).filter((c) => c.user !== null);
      const accepting = view.filter((c) => c.channels.includes('presences')).length;
      for (const app of [a, b]) {
        assert.equal(await send(app, 5, { all: true }), accepting);
        assert.equal(await dispatch(app, { t: 'PING', to: { all: true } }), view.length);
      }
      for (const client of [oA, oB]) {
        for (let i = 0; i < 2; i++) {
          assert.deepEqual(await client.next(), presence(5));
          assert.deepEqual(await client.next(), { t: 'PING', d: null });
        }
      }
      for (let i = 0; i < 2; i++) assert.deepEqual(await qB.next(), { t: 'PING', d: null });

      // A session that leaves and a member who leaves drop out of the other instance's count.
      await oB.close();
      await countShows(a, { kind: 'channel', id: `presence:guild:${guild}` }, 1);
      assert.equal(await send(a, 6, { guild_id: guild }), 1);
      assert.deepEqual(await oA.next(), presence(6));
      await putGuild(a, guild, [open1.userId]);
      await countShows(a, { kind: 'channel', id: `guild:${guild}` }, 1);
      assert.equal(await dispatch(a, { t: 'GUILD_UPDATE', d: { n: 7 }, to: { guild_id: guild } }), 1);
      assert.deepEqual(await oA.next(), { t: 'GUILD_UPDATE', d: { n: 7 } });
      await qB.expectNothingPending();
    });

    it('a membership change on one instance moves live sessions on the other', async () => {
      const member = await user();
      const joiner = await user();
      const guild = snowflake();
      await putGuild(a, guild, [member.userId]);
      const m = await connect(a, member.sessionId, { guilds: 1 });
      const j = await connect(a, joiner.sessionId);
      await putGuild(b, guild, [joiner.userId]);
      await registryShows(b, 1, (c) => c.channels.includes(`guild:${guild}`));
      const event = { t: 'GUILD_UPDATE', d: { name: 'moved' } };
      let count = -1;
      await proveExactlyOnce(
        async () => {
          count = await dispatch(b, { ...event, to: { guild_id: guild } });
        },
        event,
        [j],
        [m],
      );
      assert.equal(count, 1);
    });

    it('DELETE of a session on one instance closes its connections on both', async () => {
      const { sessionId } = await user();
      const onA = await connect(a, sessionId);
      const onB = await connect(b, sessionId);
      const answer = await admin(a, 'DELETE', `/admin/hatsu/sessions/${sessionId}`);
      assert.equal(answer.status, 204, answer.text);
      assert.deepEqual(await onA.waitClose(), { code: 4002, reason: 'Invalid authorization' });
      assert.deepEqual(await onB.waitClose(), { code: 4002, reason: 'Invalid authorization' });
    });
  });

  describe(`hatsu discovery across two instances on ${topologyLabel(topology)}`, await topologySuite(topology), () => {
    const prefix = uniquePrefix();
    const sockets: HatsuClient[] = [];
    let redis: TestRedis;
    let a: TestApp;
    let b: TestApp;
    let child: ChildProcess | null = null;

    async function offered(app: TestApp): Promise<{ port: number; url: string }> {
      const answer = await admin(app, 'GET', '/available');
      assert.equal(answer.status, 200, answer.text);
      return answer.json as { port: number; url: string };
    }

    before(async () => {
      redis = await openTopology(topology);
      [a, b] = await startPair(prefix, redis);
    });

    after(async () => {
      if (child && child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await once(child, 'exit');
      }
      await Promise.all(sockets.map((c) => c.close().catch(() => undefined)));
      await Promise.all([a?.close(), b?.close()]);
      await redis?.deleteKeys(prefix);
      await redis?.close();
    });

    it("gives each instance's entry a time to live that its refreshes renew, so a crash leaves nothing", async () => {
      for (const app of [a, b]) {
        const key = `${prefix}store:hatsu:instance:${instanceId(app)}`;
        // The first entry is written once the instance listens, a moment after it started.
        let ttl = -2;
        await waitFor(async () => (ttl = await redis.client.pttl(key)) !== -2, { what: `${key} to be written` });
        // Three refresh periods (2 s each) at most, renewed by every refresh.
        assert.ok(ttl > 0 && ttl <= 6000, `${key}: ${ttl}`);
      }
    });

    it('offers the instance with fewer hatsu sessions, from either instance', async () => {
      assert.notEqual(instanceId(a), instanceId(b));
      // One socket on A (not even identified: an open socket is load) makes B the emptier.
      sockets.push(await HatsuClient.connect(a.ws('/hatsu')));
      const expected = { port: b.port, url: `ws://127.0.0.1:${b.port}/hatsu` };
      for (const app of [a, b]) {
        await waitFor(async () => (await offered(app)).port === b.port, { what: 'B to be offered' });
        assert.deepEqual(await offered(app), expected);
      }
      // Two on B: now A is the emptier.
      for (let i = 0; i < 2; i++) sockets.push(await HatsuClient.connect(b.ws('/hatsu')));
      for (const app of [a, b]) {
        await waitFor(async () => (await offered(app)).port === a.port, { what: 'A to be offered' });
      }
      for (const socket of sockets.splice(1)) await socket.close();
      await waitFor(async () => (await offered(a)).port === b.port, { what: 'B to be offered again' });
    });

    it('stops offering an instance once it is stopped', async () => {
      assert.equal((await offered(a)).port, b.port);
      await b.close();
      // Gone at once after a clean stop; a crashed one within the registry TTL (~6 s).
      await waitFor(async () => (await offered(a)).port === a.port, {
        what: 'the stopped instance to drop out',
        timeoutMs: 15_000,
        intervalMs: 100,
      });
      assert.deepEqual(await offered(a), { port: a.port, url: `ws://127.0.0.1:${a.port}/hatsu` });
    });

    it('stops offering an instance that died without a word (SIGKILL) within the registry TTL', async () => {
      // A real gateway process, so it can die with no shutdown hook at all.
      const gateway = await spawnGateway({ ...redis.env(prefix), LOG_LEVEL: 'silent' });
      child = gateway.child;
      const { port } = gateway;
      // A still holds one socket; the new process has none, so it is offered once it is up.
      await waitFor(async () => (await offered(a)).port === port, {
        what: 'the child instance to be offered',
        timeoutMs: 15_000,
        intervalMs: 100,
      });
      child.kill('SIGKILL');
      await once(child, 'exit');
      const killed = Date.now();
      await waitFor(async () => (await offered(a)).port === a.port, {
        what: 'the dead instance to drop out',
        timeoutMs: 15_000,
        intervalMs: 200,
      });
      const gone = Date.now() - killed;
      assert.ok(gone < 10_000, `dropped out after ${gone} ms`);
    });
  });
}
