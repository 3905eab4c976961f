import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { startApp, type TestApp } from '../helpers/app.js';
import { putDocument } from '../helpers/felix-client.js';
import { admin, expectStatus, waitReady, type ConnectionsPage } from '../helpers/http.js';
import { snowflake } from '../helpers/ids.js';
import { figure } from '../helpers/figure.js';
import { connectJac, expectMessages, issueToken, type JacSocket } from '../helpers/jac-client.js';
import { uniquePrefix } from '../helpers/redis.js';
import { ClusterSet, SentinelSet } from '../helpers/redis-topologies.js';
import { topologySuite } from '../helpers/topology.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Two instances, a jac publisher on A and a channel with a socket on each; what a failover
 * must leave working.
 */
class Pair {
  readonly sockets: JacSocket[] = [];
  private marks = 0;

  private constructor(
    readonly a: TestApp,
    readonly b: TestApp,
    readonly publisher: JacSocket,
    readonly onA: JacSocket,
    readonly onB: JacSocket,
    readonly channel: string,
  ) {}

  static async start(env: Record<string, string>, channel: string): Promise<Pair> {
    const [a, b] = await Promise.all([startApp(env), startApp(env)]);
    await Promise.all([waitReady(a, 200, 15_000), waitReady(b, 200, 15_000)]);
    const publisher = await connectJac(a, { token: await issueToken(a) });
    const onA = await connectJac(a, { channel });
    const onB = await connectJac(b, { channel });
    const pair = new Pair(a, b, publisher, onA, onB, channel);
    pair.sockets.push(publisher, onA, onB);
    return pair;
  }

  /** A publish to the channel from A reaches the sockets on A and on B exactly once, in order. */
  async deliversExactlyOnce(): Promise<void> {
    const first = { n: ++this.marks };
    const second = { n: ++this.marks };
    this.publisher.ws.send({ type: 'channel', channel_ids: [this.channel], data: first });
    this.publisher.ws.send({ type: 'channel', channel_ids: [this.channel], data: second });
    for (const socket of [this.onA, this.onB]) await expectMessages(socket, [first, second]);
  }

  /**
   * Publishes to the channel until one reaches both sockets: after a failover or a slot move,
   * the publishes sent before the instances have found the new layout may be lost.
   */
  async deliversAgain(): Promise<void> {
    await waitFor(
      async () => {
        const probe = { probe: ++this.marks };
        this.publisher.ws.send({ type: 'channel', channel_ids: [this.channel], data: probe });
        for (const socket of [this.onA, this.onB]) {
          // Earlier probes that were not lost come first, in order.
          while (JSON.stringify(await socket.ws.next(1000)) !== JSON.stringify(probe));
        }
        return true;
      },
      { timeoutMs: 30_000, intervalMs: 0, what: 'a publish to reach both sockets' },
    );
  }

  /** Both instances list every socket of the pair. */
  async listed(): Promise<void> {
    for (const app of [this.a, this.b]) {
      await waitFor(
        async () => {
          const page = (await admin(app, 'GET', '/admin/connections')).json as ConnectionsPage;
          return page.total === this.sockets.length;
        },
        { timeoutMs: 10_000, what: 'every socket in the cluster view' },
      );
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.sockets.map((s) => s.ws.close()));
    await Promise.all([this.a.close(), this.b.close()]);
  }
}

describe('a Sentinel failover under two instances', await topologySuite('sentinel'), () => {
  const prefix = uniquePrefix();
  let set: SentinelSet;
  let pair: Pair;

  before(async () => {
    set = await SentinelSet.start({ replicas: 1, sentinels: 3 });
    pair = await Pair.start(
      { REDIS_SENTINELS: set.sentinelList, REDIS_SENTINEL_NAME: set.name, REDIS_KEY_PREFIX: prefix },
      'sentinel-room',
    );
  });

  after(async () => {
    await pair?.close();
    await set?.stop();
  });

  it('follows the new master by itself: not ready while there is none, then data, bus and registry are back', async () => {
    await pair.deliversExactlyOnce();
    await pair.listed();
    const guild = snowflake();
    const document = { id: guild, generalSettings: { prefix: 'before-failover' } };
    await putDocument(pair.a, 'guilds', guild, document);
    // Replication is asynchronous: the test makes sure the write reached the replica first.
    const master = new Redis({ host: '127.0.0.1', port: await set.masterPort(), lazyConnect: true });
    await master.connect();
    assert.equal(await master.wait(1, 5000), 1, 'the write reached the replica');
    master.disconnect();

    const oldMaster = await set.masterPort();
    const killed = Date.now();
    const promoted = set.failover();
    await Promise.all([waitReady(pair.a, 503, 15_000), waitReady(pair.b, 503, 15_000)]);
    figure('failover', 'sentinel-not-ready', Date.now() - killed, 'ms');
    assert.notEqual(await promoted, oldMaster);
    figure('failover', 'sentinel-promoted', Date.now() - killed, 'ms');
    await Promise.all([waitReady(pair.a, 200, 30_000), waitReady(pair.b, 200, 30_000)]);
    figure('failover', 'sentinel-ready-again', Date.now() - killed, 'ms');

    // The same processes, the same sockets: nothing was restarted.
    const stored = await expectStatus(pair.b, 200, 'GET', `/admin/felix/guilds/${guild}`);
    assert.deepEqual(stored.json, document);
    await pair.deliversExactlyOnce();
    await pair.listed();
  });
});

describe('a master failover inside a Redis Cluster under two instances', await topologySuite('cluster'), () => {
  const prefix = uniquePrefix();
  const channel = 'cluster-room';
  let set: ClusterSet;
  let pair: Pair;

  before(async () => {
    set = await ClusterSet.start({ masters: 3, replicasPerMaster: 1 });
    pair = await Pair.start({ REDIS_CLUSTER_NODES: set.nodeList, REDIS_KEY_PREFIX: prefix }, channel);
  });

  after(async () => {
    await pair?.close();
    await set?.stop();
  });

  it("survives the loss of the master that serves the channel's bus slot", async () => {
    await pair.deliversExactlyOnce();
    await pair.listed();
    const guild = snowflake();
    const document = { id: guild, generalSettings: { prefix: 'before-failover' } };
    await putDocument(pair.a, 'guilds', guild, document);

    // The master that carries the channel's sharded messages is the one to lose.
    const busChannel = `${prefix}bus:{jac:channel:${channel}}`;
    const victim = await set.ownerOf(busChannel);
    const owner = new Redis({ host: '127.0.0.1', port: victim });
    try {
      const [, subscribers] = (await owner.call('PUBSUB', 'SHARDNUMSUB', busChannel)) as [string, number];
      assert.equal(subscribers, 2, 'both instances subscribe to the channel on its shard');
    } finally {
      owner.disconnect();
    }
    // Replication is asynchronous: the test makes sure every write reached the replicas.
    for (const port of await set.masters()) {
      const master = new Redis({ host: '127.0.0.1', port });
      assert.equal(await master.wait(1, 5000), 1);
      master.disconnect();
    }

    const killed = Date.now();
    await set.failover(victim);
    figure('failover', 'cluster-promoted', Date.now() - killed, 'ms');
    assert.notEqual(await set.ownerOf(busChannel), victim);
    await Promise.all([waitReady(pair.a, 200, 30_000), waitReady(pair.b, 200, 30_000)]);
    // The instances learn the new layout from the first commands that miss; a publish sent
    // meanwhile may be lost (the bus keeps no log), so the first arrival is awaited.
    await pair.deliversAgain();
    figure('failover', 'cluster-delivering-again', Date.now() - killed, 'ms');

    const stored = await expectStatus(pair.b, 200, 'GET', `/admin/felix/guilds/${guild}`);
    assert.deepEqual(stored.json, document);
    await pair.deliversExactlyOnce();
    await pair.listed();
  });

  it("follows the channel's slot when it moves to another master", async () => {
    const busChannel = `${prefix}bus:{jac:channel:${channel}}`;
    const from = await set.ownerOf(busChannel);
    const moved = Date.now();
    const to = await set.moveSlotOf(busChannel);
    assert.notEqual(to, from);
    await pair.deliversAgain();
    figure('failover', 'cluster-slot-moved-delivering-again', Date.now() - moved, 'ms');
    const owner = new Redis({ host: '127.0.0.1', port: to });
    try {
      const [, subscribers] = (await owner.call('PUBSUB', 'SHARDNUMSUB', busChannel)) as [string, number];
      assert.equal(subscribers, 2, 'both instances subscribe on the new owner');
    } finally {
      owner.disconnect();
    }
    await pair.deliversExactlyOnce();
  });
});
