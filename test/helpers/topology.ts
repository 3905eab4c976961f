import { spawnSync } from 'node:child_process';
import { Cluster, Redis } from 'ioredis';
import { RedisProcess, redisAnswers, SHARED_REDIS_URL } from './redis.js';
import { deleteKeys } from './redis-cleanup.js';
import { ClusterSet, SentinelSet } from './redis-topologies.js';
import { waitFor } from './wait.js';

/**
 * The Redis topologies every cluster guarantee is tested on: the shared single Redis, a
 * master and replica behind three Sentinels, and a three-master Redis Cluster. Each suite
 * starts its own Sentinel set or Cluster (private `redis-server` processes on free loopback
 * ports, stopped by pid), so suites never share one.
 */
export type TopologyName = 'single' | 'sentinel' | 'cluster';

/** A topology a suite runs on: the engine's variables for it and a way to look inside. */
export interface TestRedis {
  readonly name: TopologyName;
  /** The engine's environment for this topology, with the suite's key prefix. */
  env(prefix: string): Record<string, string>;
  /** A command connection to the topology (a Cluster client on a Cluster). */
  readonly client: Redis | Cluster;
  /** Waits until `count` instances under `prefix` listen on the bus. */
  busSubscribers(prefix: string, count: number): Promise<void>;
  /** Deletes every key under `prefix`, on every master. */
  deleteKeys(prefix: string): Promise<void>;
  /** Closes the client and stops the servers the suite started. */
  close(): Promise<void>;
}

const ALL: readonly TopologyName[] = ['single', 'sentinel', 'cluster'];

/**
 * The topologies to run, all three unless `TEST_REDIS_TOPOLOGIES` names some
 * (`single,cluster`), for a quicker loop while working on one.
 */
export const TOPOLOGIES: readonly TopologyName[] = (() => {
  const named = process.env.TEST_REDIS_TOPOLOGIES;
  if (!named) return ALL;
  const picked = named.split(',').map((name) => name.trim());
  for (const name of picked) {
    if (!(ALL as readonly string[]).includes(name)) throw new Error(`unknown Redis topology "${name}"`);
  }
  return picked as TopologyName[];
})();

/** How a suite title names the topology. */
export function topologyLabel(name: TopologyName): string {
  return { single: 'one Redis', sentinel: 'Redis Sentinel', cluster: 'Redis Cluster' }[name];
}

/**
 * `describe(..., topologySuite(name))` options: like `redisSuite`, run whenever the topology
 * can be had (the shared Redis answers, or `redis-server` is installed to start one), skipped
 * with a printed notice otherwise, except under CI, where it must run.
 */
export async function topologySuite(name: TopologyName): Promise<{ skip: string | false }> {
  if (process.env.CI) return { skip: false };
  const available = name === 'single' ? await redisAnswers() : redisServerInstalled();
  if (available) return { skip: false };
  const reason =
    name === 'single'
      ? `no Redis answers at ${SHARED_REDIS_URL}; Redis-backed tests skipped (set CI=1 to force them)`
      : `redis-server is not installed; ${topologyLabel(name)} tests skipped (set CI=1 to force them)`;
  console.log(`NOTICE: ${reason}`);
  return { skip: reason };
}

function redisServerInstalled(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

/**
 * Opens the topology: the shared Redis, or a Sentinel set or Cluster of the suite's own,
 * started now and stopped by `close`.
 */
export async function openTopology(name: TopologyName): Promise<TestRedis> {
  if (name === 'single') return single();
  if (name === 'sentinel') {
    const set = await SentinelSet.start();
    return sentinel(set.sentinelList, set.name, set);
  }
  const set = await ClusterSet.start();
  return cluster(set.nodeList, set);
}

/** A topology of the suite's own that a test may strike: hang it or empty it. */
export interface FaultyRedis extends TestRedis {
  /**
   * SIGSTOP every master: Redis hangs with its connections open, as in a long fork, a
   * swapping host or a partition (the sentinels stay up and wait longer than a test runs).
   */
  pause(): void;
  resume(): void;
  /** `FLUSHALL` on every master: what an eviction storm or an operator's mistake leaves. */
  flushAll(): Promise<void>;
}

/**
 * Opens a topology of the suite's own whatever its kind (a private single Redis too), so
 * that its faults hit no other suite.
 */
export async function openFaultyTopology(name: TopologyName): Promise<FaultyRedis> {
  if (name === 'single') {
    const server = await RedisProcess.start();
    const redis = single(server.url, () => server.stop());
    return {
      ...redis,
      pause: () => server.pause(),
      resume: () => server.resume(),
      flushAll: async () => {
        await redis.client.flushall();
      },
    };
  }
  if (name === 'sentinel') {
    // Down-after far beyond a test: a paused master is a hang here, not a failover.
    const set = await SentinelSet.start({ downAfterMs: 60_000 });
    const master = set.server(await set.masterPort());
    const redis = sentinel(set.sentinelList, set.name, set);
    return {
      ...redis,
      pause: () => master.pause(),
      resume: () => master.resume(),
      flushAll: async () => {
        await redis.client.flushall();
      },
    };
  }
  const set = await ClusterSet.start();
  const redis = cluster(set.nodeList, set);
  return {
    ...redis,
    pause: () => set.nodes.forEach((node) => node.pause()),
    resume: () => set.nodes.forEach((node) => node.resume()),
    flushAll: async () => {
      await Promise.all((redis.client as Cluster).nodes('master').map((node) => node.flushall()));
    },
  };
}

function single(url = SHARED_REDIS_URL, stop: () => Promise<void> = () => Promise.resolve()): TestRedis {
  const client = new Redis(url);
  client.on('error', () => undefined);
  return {
    name: 'single',
    client,
    env: (prefix) => ({ REDIS_URL: url, REDIS_KEY_PREFIX: prefix }),
    busSubscribers: (prefix, count) => waitForSubscribers(() => numsub(client, revokeChannel(prefix)), count),
    deleteKeys: async (prefix) => {
      await deleteKeys(url, prefix);
    },
    close: async () => {
      client.disconnect();
      await stop();
    },
  };
}

function sentinel(list: string, masterName: string, owned: SentinelSet): TestRedis {
  const sentinels = list.split(',').map((entry) => {
    const [host, port] = entry.split(':');
    return { host: host as string, port: Number(port) };
  });
  const client = new Redis({ sentinels, name: masterName, role: 'master', maxRetriesPerRequest: 1 });
  client.on('error', () => undefined);
  return {
    name: 'sentinel',
    client,
    env: (prefix) => ({ REDIS_SENTINELS: list, REDIS_SENTINEL_NAME: masterName, REDIS_KEY_PREFIX: prefix }),
    busSubscribers: (prefix, count) => waitForSubscribers(() => numsub(client, revokeChannel(prefix)), count),
    deleteKeys: (prefix) => scanDelete([client], prefix),
    close: async () => {
      client.disconnect();
      await owned.stop();
    },
  };
}

function cluster(list: string, owned: ClusterSet): TestRedis {
  const nodes = list.split(',').map((entry) => {
    const [host, port] = entry.split(':');
    return { host: host as string, port: Number(port) };
  });
  const client = new Cluster(nodes, { redisOptions: { maxRetriesPerRequest: 1 } });
  client.on('error', () => undefined);
  return {
    name: 'cluster',
    client,
    env: (prefix) => ({ REDIS_CLUSTER_NODES: list, REDIS_KEY_PREFIX: prefix }),
    // Sharded subscriptions are counted on the master that owns the channel's slot alone.
    busSubscribers: (prefix, count) =>
      waitForSubscribers(async () => {
        let total = 0;
        for (const master of client.nodes('master')) {
          const [, subscribers] = (await master.call('PUBSUB', 'SHARDNUMSUB', revokeChannel(prefix))) as [
            string,
            number,
          ];
          total += subscribers;
        }
        return total;
      }, count),
    deleteKeys: (prefix) => scanDelete(client.nodes('master'), prefix),
    close: async () => {
      client.disconnect();
      await owned.stop();
    },
  };
}

/** Every instance subscribes to the broadcast channel of the registry's revocations. */
function revokeChannel(prefix: string): string {
  return `${prefix}bus:{control.revoke}`;
}

async function numsub(client: Redis, channel: string): Promise<number> {
  const [, subscribers] = (await client.call('PUBSUB', 'NUMSUB', channel)) as [string, number];
  return subscribers;
}

async function waitForSubscribers(count: () => Promise<number>, expected: number): Promise<void> {
  await waitFor(async () => (await count()) === expected, {
    timeoutMs: 10_000,
    what: `${expected} instances to subscribe to the bus`,
  });
}

async function scanDelete(masters: Redis[], prefix: string): Promise<void> {
  const pattern = `${prefix.replace(/[*?[\]\\]/g, (c) => `\\${c}`)}*`;
  for (const master of masters) {
    let cursor = '0';
    do {
      const [next, keys] = await master.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
      cursor = next;
      // One key at a time: on a Cluster the keys of one scan lie in many slots.
      for (const key of keys) await master.del(key);
    } while (cursor !== '0');
  }
}
