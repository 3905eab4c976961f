import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { Cluster, Redis } from 'ioredis';
import { Engine } from '../../src/core/engine/engine.js';
import { startApp, type TestApp } from '../helpers/app.js';
import { FatesClient, newBot, V2_PATH, vote } from '../helpers/fates-client.js';
import { connectFelix, createToken, listen, nextFelix } from '../helpers/felix-client.js';
import { connectHatsu, newUser } from '../helpers/hatsu-client.js';
import { admin, waitReady } from '../helpers/http.js';
import { snowflake } from '../helpers/ids.js';
import { connectJac } from '../helpers/jac-client.js';
import { RedisProcess, uniquePrefix } from '../helpers/redis.js';
import { ClusterSet, SentinelSet } from '../helpers/redis-topologies.js';
import { topologySuite, type TopologyName } from '../helpers/topology.js';
import { waitFor } from '../helpers/wait.js';

/** Between two publishes of one feed: a steady stream, about 150 a second per protocol. */
const PACE_MS = 5;
/** How long a hung Redis stays stopped. */
const PAUSE_MS = 3000;
/** A reader waits this long for its next message: through the longest fault, and then some. */
const READ_TIMEOUT_MS = 30_000;

/** One protocol's stream of numbered messages: published through A's admin API, read on B. */
interface Feed {
  readonly protocol: string;
  /** Publishes message `n`; true when the gateway accepted it (a refusal throws, saying what it was). */
  publish(n: number): Promise<boolean>;
  /** The numbers of the next message (or frame of messages) the subscriber on B reads. */
  read(): Promise<number[]>;
  close(): Promise<void>;
}

/** True when the gateway answered `status`; any other answer is thrown, for the run to report. */
const accepted =
  (status: number) =>
  (answer: { status: number; text: string }): boolean => {
    if (answer.status !== status) throw new Error(`${answer.status} ${answer.text.slice(0, 200)}`);
    return true;
  };

async function openFeeds(a: TestApp, b: TestApp): Promise<Feed[]> {
  const channel = `gap-${snowflake()}`;
  const jac = await connectJac(b, { channel });

  const bot = await newBot(a);
  const { client: fates } = await FatesClient.ready(b, V2_PATH, bot);

  const guild = snowflake();
  const felix = await connectFelix(b.ws('/felix'), (await createToken(a)).token, { timeoutMs: READ_TIMEOUT_MS });
  await listen(felix, { guilds: [guild] });

  const { userId, sessionId } = await newUser(a);
  const hatsu = await connectHatsu(b, sessionId);

  return [
    {
      protocol: 'jac',
      publish: (n) =>
        admin(a, 'POST', '/admin/jac/notify', { channel_ids: [channel], data: { n } }).then(accepted(202)),
      read: async () => [(await jac.ws.next<{ n: number }>(READ_TIMEOUT_MS)).n],
      close: () => jac.ws.close(),
    },
    {
      protocol: 'fates',
      publish: (n) => admin(a, 'POST', `/admin/fates/bots/${bot.id}/events`, vote(String(n), n)).then(accepted(202)),
      read: async () => (await fates.events(READ_TIMEOUT_MS)).map((event) => (event as { votes: number }).votes),
      close: () => fates.close(),
    },
    {
      protocol: 'felix',
      publish: (n) => admin(a, 'PUT', `/admin/felix/guilds/${guild}`, { id: guild, n }).then(accepted(204)),
      read: async () => {
        const message = await nextFelix(felix);
        assert.equal(message.code, 10002, JSON.stringify(message));
        return [(message.data as { guildData: { n: number } }).guildData.n];
      },
      close: () => felix.close(),
    },
    {
      protocol: 'hatsu',
      publish: (n) =>
        admin(a, 'POST', '/admin/hatsu/dispatch', { t: 'SEQUENCE', d: { n }, to: { user_id: userId } }).then(
          accepted(202),
        ),
      read: async () => {
        const message = await hatsu.next(READ_TIMEOUT_MS);
        return message.t === 'SEQUENCE' ? [(message.d as { n: number }).n] : [];
      },
      close: () => hatsu.close(),
    },
  ];
}

/** A feed under way: its publisher on A at a steady pace, its reader on B, and what each saw. */
class FeedRun {
  private attempted = 0;
  private readonly accepted = new Set<number>();
  readonly got: number[] = [];
  private stopped = false;
  private readonly publishing: Promise<void>;

  constructor(readonly feed: Feed) {
    this.publishing = this.publishAll();
    void this.readAll();
  }

  private async publishAll(): Promise<void> {
    while (!this.stopped) {
      const n = ++this.attempted;
      const ok = await this.feed.publish(n).catch((err: unknown) => {
        this.lastRefusal = err instanceof Error ? err.message : String(err);
        return false;
      });
      if (ok) this.accepted.add(n);
      await delay(PACE_MS);
    }
  }

  /** The last publish the gateway refused, and how it answered. */
  private lastRefusal = 'none';
  /** Why the reader stopped: its socket closed, or it read something else. */
  private readError: unknown = null;

  private async readAll(): Promise<void> {
    for (;;) {
      try {
        this.got.push(...(await this.feed.read()));
      } catch (err) {
        this.readError = err;
        return;
      }
    }
  }

  /** Waits until the subscriber has read `count` messages. */
  async received(count: number): Promise<void> {
    await waitFor(() => this.got.length >= count, {
      timeoutMs: 30_000,
      what: `${this.feed.protocol}: ${count} messages on B (${this.got.length} so far, ${this.accepted.size} of ${this.attempted} accepted, last refusal: ${this.lastRefusal}; reader: ${this.readError instanceof Error ? this.readError.message : 'reading'})`,
    });
  }

  /** Stops publishing (a failed test must not leave its publisher running). */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.publishing;
  }

  /**
   * Stops the stream with one last message, published until accepted and awaited on B: once
   * it is there, everything accepted before it is there too, or lost.
   */
  async finish(): Promise<void> {
    await this.stop();
    const last = ++this.attempted;
    await waitFor(() => this.feed.publish(last), {
      timeoutMs: 20_000,
      what: `${this.feed.protocol}: the last publish`,
    });
    this.accepted.add(last);
    await waitFor(() => this.got.at(-1) === last, {
      timeoutMs: 20_000,
      what: `${this.feed.protocol}: the last message`,
    });
  }

  /** Zero lost, zero duplicated, in order; nothing that was never published. */
  check(): void {
    const { protocol } = this.feed;
    for (let i = 1; i < this.got.length; i++) {
      assert.ok(
        (this.got[i] as number) > (this.got[i - 1] as number),
        `${protocol}: ${this.got[i]} after ${this.got[i - 1]}`,
      );
    }
    const got = new Set(this.got);
    const lost = [...this.accepted].filter((n) => !got.has(n));
    assert.deepEqual(lost, [], `${protocol}: accepted but never delivered`);
    assert.ok((this.got.at(-1) as number) <= this.attempted, `${protocol}: a message never published`);
  }
}

/** A private topology of the spec's own, so that its faults hit no other suite. */
interface Faulty {
  env: Record<string, string>;
  /** `CLIENT KILL TYPE pubsub` on every server that holds subscriptions. */
  killSubscribers(): Promise<void>;
  stop(): Promise<void>;
}

async function killPubsub(client: Redis): Promise<void> {
  await client.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
}

function onSingle(server: RedisProcess): Faulty {
  const client = new Redis(server.url, { maxRetriesPerRequest: 1 });
  client.on('error', () => undefined);
  return {
    env: { REDIS_URL: server.url },
    killSubscribers: () => killPubsub(client),
    stop: async () => {
      client.disconnect();
      await server.stop();
    },
  };
}

function onSentinel(set: SentinelSet): Faulty {
  return {
    env: { REDIS_SENTINELS: set.sentinelList, REDIS_SENTINEL_NAME: set.name },
    killSubscribers: async () => {
      const master = new Redis({ host: '127.0.0.1', port: await set.masterPort(), maxRetriesPerRequest: 1 });
      try {
        await killPubsub(master);
      } finally {
        master.disconnect();
      }
    },
    stop: () => set.stop(),
  };
}

function onCluster(set: ClusterSet): Faulty {
  const nodes = set.nodeList.split(',').map((entry) => ({ host: '127.0.0.1', port: Number(entry.split(':')[1]) }));
  const client = new Cluster(nodes, { redisOptions: { maxRetriesPerRequest: 1 } });
  client.on('error', () => undefined);
  return {
    env: { REDIS_CLUSTER_NODES: set.nodeList },
    killSubscribers: async () => {
      await Promise.all(client.nodes('master').map(killPubsub));
    },
    stop: async () => {
      client.disconnect();
      await set.stop();
    },
  };
}

/**
 * Two instances, a publisher on A sending at a steady pace to subscribers on B, on every
 * protocol at once; `fault` strikes once every stream flows, and each stream must come
 * through it whole.
 */
interface Fault {
  strike(redis: Faulty): Promise<void>;
  /**
   * A publishes while B's subscriptions are gone, so B must read messages back (in a
   * failover nobody can publish until B is back too).
   */
  readonly publishesWhileAway: boolean;
}

function gapSuite(topology: TopologyName, open: () => Promise<Faulty>, faults: Record<string, Fault>) {
  return async () => {
    const title = { single: 'one Redis', sentinel: 'Redis Sentinel', cluster: 'Redis Cluster' }[topology];
    describe(`the bus fills its own gaps on ${title}`, await topologySuite(topology), () => {
      let redis: Faulty;
      let a: TestApp;
      let b: TestApp;

      before(async () => {
        redis = await open();
        const env = { ...redis.env, REDIS_KEY_PREFIX: uniquePrefix() };
        [a, b] = await Promise.all([startApp(env), startApp(env)]);
        await Promise.all([waitReady(a, 200, 15_000), waitReady(b, 200, 15_000)]);
      });

      after(async () => {
        await Promise.all([a?.close(), b?.close()]);
        await redis?.stop();
      });

      for (const [name, fault] of Object.entries(faults)) {
        it(`loses, repeats and reorders nothing through ${name}, on every protocol`, async () => {
          const feeds = await openFeeds(a, b);
          const runs = feeds.map((feed) => new FeedRun(feed));
          try {
            await Promise.all(runs.map((run) => run.received(10)));
            const engineB = b.app.get(Engine);
            const repairedBefore = engineB.busRepaired;
            /** Strikes, then waits until every stream flows again. */
            const strike = async (): Promise<void> => {
              await fault.strike(redis);
              const counts = runs.map((run) => run.got.length);
              await Promise.all(runs.map((run, i) => run.received((counts[i] as number) + 10)));
            };
            if (fault.publishesWhileAway) {
              // Struck again until a message was published while B's subscriptions were gone
              // (B comes back within some 50 ms, so the first strike nearly always does it):
              // B must have read it back from the log.
              await waitFor(
                async () => {
                  await strike();
                  return engineB.busRepaired > repairedBefore;
                },
                { timeoutMs: 60_000, intervalMs: 0, what: 'B to read back a message it missed' },
              );
            } else {
              await strike();
            }
            await Promise.all(runs.map((run) => run.finish()));
            for (const run of runs) run.check();
            assert.equal(engineB.busUnrepaired, 0);
          } finally {
            await Promise.all(runs.map((run) => run.stop()));
            await Promise.all(feeds.map((feed) => feed.close()));
          }
        });
      }
    });
  };
}

const killSubscribers: Fault = { strike: (redis) => redis.killSubscribers(), publishesWhileAway: true };

let single: RedisProcess;
await gapSuite(
  'single',
  async () => {
    single = await RedisProcess.start();
    return onSingle(single);
  },
  {
    'a killed subscription': killSubscribers,
    [`a Redis stopped for ${PAUSE_MS / 1000} s`]: {
      strike: async () => {
        single.pause();
        await delay(PAUSE_MS);
        single.resume();
      },
      // Nothing is dropped: what was published waits in Redis' input until it runs again.
      publishesWhileAway: false,
    },
  },
)();

let sentinels: SentinelSet;
await gapSuite(
  'sentinel',
  async () => {
    sentinels = await SentinelSet.start();
    return onSentinel(sentinels);
  },
  {
    'a killed subscription': killSubscribers,
    'a Sentinel failover': {
      strike: async () => {
        await sentinels.failover();
      },
      publishesWhileAway: false,
    },
  },
)();

await gapSuite('cluster', async () => onCluster(await ClusterSet.start()), {
  'a killed subscription': killSubscribers,
})();
