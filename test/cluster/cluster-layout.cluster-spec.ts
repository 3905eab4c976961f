import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { startApp, type TestApp } from '../helpers/app.js';
import { FatesClient, newBot, postEvent, V2_PATH, vote } from '../helpers/fates-client.js';
import { connectFelix, createToken, listen, putDocument } from '../helpers/felix-client.js';
import { connectHatsu, newUser, putGuild, type HatsuClient } from '../helpers/hatsu-client.js';
import { waitReady } from '../helpers/http.js';
import { snowflake } from '../helpers/ids.js';
import { connectJac, issueToken, type JacSocket } from '../helpers/jac-client.js';
import { uniquePrefix } from '../helpers/redis.js';
import { ClusterSet } from '../helpers/redis-topologies.js';
import { topologySuite } from '../helpers/topology.js';
import type { WsTestClient } from '../helpers/ws-client.js';

/** A command to one node of the cluster, as it answers it (no redirections followed). */
async function onNode<T>(port: number, ...args: string[]): Promise<T> {
  const node = new Redis({ host: '127.0.0.1', port });
  try {
    return (await node.call(...(args as [string, ...string[]]))) as T;
  } finally {
    node.disconnect();
  }
}

/** Every key under `prefix` on the master at `port`. */
async function keysOn(port: number, prefix: string): Promise<string[]> {
  const node = new Redis({ host: '127.0.0.1', port });
  const keys: string[] = [];
  try {
    let cursor = '0';
    do {
      const [next, found] = await node.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      keys.push(...found);
    } while (cursor !== '0');
  } finally {
    node.disconnect();
  }
  return keys;
}

describe('the Redis engine laid out over a Redis Cluster', await topologySuite('cluster'), () => {
  const prefix = uniquePrefix();
  const closers: (() => Promise<unknown>)[] = [];
  let set: ClusterSet;
  let a: TestApp;
  let b: TestApp;

  before(async () => {
    set = await ClusterSet.start({ masters: 3 });
    const env = { REDIS_CLUSTER_NODES: set.nodeList, REDIS_KEY_PREFIX: prefix };
    [a, b] = await Promise.all([startApp(env), startApp(env)]);
    await Promise.all([waitReady(a, 200, 15_000), waitReady(b, 200, 15_000)]);

    // Some of everything, on both instances: many bots, guilds, users, channels and sockets.
    for (let i = 0; i < 8; i++) {
      const app = i % 2 ? b : a;
      const { id, token } = await newBot(app);
      await postEvent(app, `bots/${id}`, vote(String(i), i));
      const fates = await FatesClient.ready(app, V2_PATH, { id, token });
      closers.push(() => fates.client.close());

      const jac: JacSocket = await connectJac(app, { token: await issueToken(app), channel: `room-${i}` });
      closers.push(() => jac.ws.close());

      const felixToken = await createToken(app);
      const guild = snowflake();
      await putDocument(app, 'guilds', guild, { id: guild });
      const felix: WsTestClient = await connectFelix(app.ws('/felix'), felixToken.token);
      await listen(felix, { guilds: [guild] });
      closers.push(() => felix.close());

      const { userId, sessionId } = await newUser(app);
      await putGuild(app, snowflake(), [userId]);
      const hatsu: HatsuClient = await connectHatsu(app, sessionId, { guilds: 1 });
      closers.push(() => hatsu.close());
    }
  });

  after(async () => {
    await Promise.all(closers.map((close) => close().catch(() => undefined)));
    await Promise.all([a?.close(), b?.close()]);
    await set?.stop();
  });

  it("spreads the keys of different bots, guilds, users and instances over every master's slots", async () => {
    const masters = await set.masters();
    assert.equal(masters.length, 3);
    const perMaster = await Promise.all(masters.map((port) => keysOn(port, prefix)));
    for (const [i, keys] of perMaster.entries()) {
      assert.ok(keys.length > 0, `master ${masters[i]} holds some of the keys`);
    }
    const all = perMaster.flat();
    const slots = new Set(
      await Promise.all(all.map((key) => onNode<number>(masters[0] as number, 'CLUSTER', 'KEYSLOT', key))),
    );
    // Not one slot (a prefix-wide hash tag), nor one per family: one per bot, guild, user...
    assert.ok(slots.size >= all.length / 4, `${all.length} keys in ${slots.size} slots`);
  });

  it('carries the bus on sharded pub/sub only: each channel subscribed on the master that owns its slot', async () => {
    const masters = await set.masters();
    for (const port of set.nodes.filter((n) => n.running).map((n) => n.port)) {
      assert.deepEqual(
        await onNode<string[]>(port, 'PUBSUB', 'CHANNELS', `${prefix}*`),
        [],
        `no classic channel on ${port}`,
      );
    }
    let sharded = 0;
    for (const port of masters) {
      const channels = await onNode<string[]>(port, 'PUBSUB', 'SHARDCHANNELS', `${prefix}*`);
      for (const channel of channels) assert.equal(await set.ownerOf(channel), port, channel);
      sharded += channels.length;
    }
    // Both instances' broadcast channels and one per room, user, bot, guild and socket that has interest.
    assert.ok(sharded > 8 * 4, `${sharded} sharded channels`);
    const room = `${prefix}bus:{jac:channel:room-0}`;
    const [, subscribers] = await onNode<[string, number]>(await set.ownerOf(room), 'PUBSUB', 'SHARDNUMSUB', room);
    assert.equal(subscribers, 1, 'only the instance with a socket in the room subscribes to it');
  });
});
