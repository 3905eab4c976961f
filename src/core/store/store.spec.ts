import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { RedisProcess, SHARED_REDIS_URL, redisSuite, uniquePrefix } from '../../../test/helpers/redis.js';
import { deleteKeys } from '../../../test/helpers/redis-cleanup.js';
import { waitFor } from '../../../test/helpers/wait.js';
import { RedisConnections } from '../engine/redis-connections.js';
import { EngineUnavailableError } from '../errors/engine-unavailable.error.js';
import { MemoryStore } from './memory-store.js';
import { RedisStore } from './redis-store.js';
import type { Store } from './store.js';

const log = pino({ level: 'silent' });
const WINDOW_MS = 50;

/** The Store contract: every driver must pass it unchanged. */
function contract(open: () => Store): void {
  let store: Store;
  before(() => {
    store = open();
  });

  it('gets what was set, null for a missing key, and overwrites', async () => {
    assert.equal(await store.get('doc:missing'), null);
    await store.set('doc:1', '{"a":1}');
    assert.equal(await store.get('doc:1'), '{"a":1}');
    await store.set('doc:1', 'ünïcødé ✓ \u0000 end');
    assert.equal(await store.get('doc:1'), 'ünïcødé ✓ \u0000 end');
    await store.set('doc:empty', '');
    assert.equal(await store.get('doc:empty'), '');
  });

  it('deletes values and lists, telling whether the key existed', async () => {
    await store.set('del:value', 'v');
    assert.equal(await store.delete('del:value'), true);
    assert.equal(await store.get('del:value'), null);
    assert.equal(await store.delete('del:value'), false);
    assert.equal(await store.delete('del:never'), false);
    await store.append('del:list', 'x', 10);
    assert.equal(await store.delete('del:list'), true);
    assert.deepEqual(await store.range('del:list'), []);
    await store.hit('del:rate', 3, 10_000);
    assert.equal(await store.delete('del:rate'), true);
    assert.equal((await store.peek('del:rate')).used, 0);
    assert.equal((await store.hit('del:rate', 1, 10_000)).used, 1);
  });

  it('appends, keeping only the newest `limit` items, oldest first', async () => {
    const lengths: number[] = [];
    for (const item of ['e1', 'e2', 'e3', 'e4', 'e5']) lengths.push(await store.append('hist:a', item, 3));
    assert.deepEqual(lengths, [1, 2, 3, 3, 3]);
    assert.deepEqual(await store.range('hist:a'), ['e3', 'e4', 'e5']);
    assert.equal(await store.append('hist:a', 'e6', 3), 3);
    assert.deepEqual(await store.range('hist:a'), ['e4', 'e5', 'e6']);
    // Lists are independent of one another.
    await store.append('hist:b', 'only', 3);
    assert.deepEqual(await store.range('hist:b'), ['only']);
    assert.deepEqual(await store.range('hist:a'), ['e4', 'e5', 'e6']);
  });

  it('keeps a single item with limit 1', async () => {
    await store.append('hist:one', 'first', 1);
    await store.append('hist:one', 'second', 1);
    assert.deepEqual(await store.range('hist:one'), ['second']);
  });

  it('gives [] for the range of a missing key', async () => {
    assert.deepEqual(await store.range('hist:missing'), []);
  });

  it('returns a copy from range, not a live view', async () => {
    await store.append('hist:copy', 'a', 5);
    const items = await store.range('hist:copy');
    items.push('mutated');
    assert.deepEqual(await store.range('hist:copy'), ['a']);
  });

  it('counts hits within a window and starts again after it expires', async () => {
    const first = await store.hit('rate:a', 2, WINDOW_MS);
    assert.equal(first.used, 2);
    assert.ok(first.resetInMs > 0 && first.resetInMs <= WINDOW_MS, `resetInMs ${first.resetInMs}`);
    const second = await store.hit('rate:a', 3, WINDOW_MS);
    assert.equal(second.used, 5);
    assert.ok(second.resetInMs <= first.resetInMs, 'the window does not move with later hits');
    const peeked = await store.peek('rate:a');
    assert.equal(peeked.used, 5);
    assert.ok(peeked.resetInMs > 0 && peeked.resetInMs <= WINDOW_MS);
    // Other keys have windows of their own.
    assert.equal((await store.hit('rate:b', 1, WINDOW_MS)).used, 1);

    await waitFor(async () => (await store.peek('rate:a')).used === 0, {
      timeoutMs: 1000,
      intervalMs: 10,
      what: 'the window to end',
    });
    assert.deepEqual(await store.peek('rate:a'), { used: 0, resetInMs: 0 });
    const fresh = await store.hit('rate:a', 1, WINDOW_MS);
    assert.equal(fresh.used, 1);
    assert.ok(fresh.resetInMs > 0 && fresh.resetInMs <= WINDOW_MS);
  });

  it('ends the window even while it keeps being hit', async () => {
    const start = Date.now();
    let last = await store.hit('rate:busy', 1, WINDOW_MS);
    await waitFor(
      async () => {
        last = await store.hit('rate:busy', 1, WINDOW_MS);
        return last.used === 1;
      },
      { timeoutMs: 1000, intervalMs: 5, what: 'a new window despite constant hits' },
    );
    assert.ok(Date.now() - start >= WINDOW_MS - 5, 'not before the window could have ended');
  });

  it('peeks a missing counter as zero without creating it', async () => {
    assert.deepEqual(await store.peek('rate:none'), { used: 0, resetInMs: 0 });
    assert.deepEqual(await store.peek('rate:none'), { used: 0, resetInMs: 0 });
    assert.equal((await store.hit('rate:none', 4, WINDOW_MS)).used, 4);
  });
}

describe('Store contract: MemoryStore', () => {
  contract(() => new MemoryStore());
});

describe('Store contract: RedisStore', await redisSuite(), () => {
  const prefix = uniquePrefix();
  const connections: RedisConnections[] = [];

  function open(): RedisStore {
    const redis = new RedisConnections({ kind: 'single', url: SHARED_REDIS_URL }, prefix, log);
    connections.push(redis);
    return new RedisStore(redis);
  }

  before(async () => {
    open();
    await Promise.all(connections.map((c) => c.connect()));
  });

  after(async () => {
    await Promise.all(connections.map((c) => c.close()));
    await deleteKeys(SHARED_REDIS_URL, prefix);
  });

  contract(() => new RedisStore(connections[0] as RedisConnections));

  it('is shared by every instance on the same Redis and prefix, and kept under the prefix', async () => {
    const other = open();
    await (connections.at(-1) as RedisConnections).connect();
    const first = new RedisStore(connections[0] as RedisConnections);
    await first.set('shared:doc', 'from first');
    await first.append('shared:list', 'one', 5);
    assert.equal(await other.get('shared:doc'), 'from first');
    assert.deepEqual(await other.range('shared:list'), ['one']);
    assert.equal((await first.hit('shared:rate', 1, 10_000)).used, 1);
    assert.equal((await other.hit('shared:rate', 1, 10_000)).used, 2);
    const raw = (connections[0] as RedisConnections).command;
    assert.equal(await raw.get(`${prefix}store:shared:doc`), 'from first');
  });
});

describe('RedisStore while Redis is down', await redisSuite(), () => {
  let server: RedisProcess;
  let redis: RedisConnections;
  let store: RedisStore;

  before(async () => {
    server = await RedisProcess.start();
    redis = new RedisConnections({ kind: 'single', url: server.url }, uniquePrefix(), log);
    await redis.connect();
    store = new RedisStore(redis);
  });

  after(async () => {
    await redis.close();
    await server.stop();
  });

  it('rejects every operation with EngineUnavailableError, then works again after a restart', async () => {
    await store.set('k', 'before');
    assert.equal(await store.get('k'), 'before');
    await server.stop();
    await waitFor(() => !redis.isUp, { what: 'the outage to be noticed' });
    const operations: [string, () => Promise<unknown>][] = [
      ['get', () => store.get('k')],
      ['set', () => store.set('k', 'v')],
      ['delete', () => store.delete('k')],
      ['append', () => store.append('list', 'v', 3)],
      ['range', () => store.range('list')],
      ['hit', () => store.hit('rate', 1, 1000)],
      ['peek', () => store.peek('rate')],
    ];
    for (const [name, operation] of operations) {
      const started = Date.now();
      await assert.rejects(operation(), EngineUnavailableError, name);
      assert.ok(Date.now() - started < 1000, `${name} failed fast`);
    }

    await server.start();
    await waitFor(() => redis.isUp, { timeoutMs: 8000, what: 'the reconnect' });
    await store.set('k', 'after');
    assert.equal(await store.get('k'), 'after');
    assert.equal(await store.append('list', 'v', 3), 1);
  });
});
