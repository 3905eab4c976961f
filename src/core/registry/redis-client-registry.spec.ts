import assert from 'node:assert/strict';
import { once } from 'node:events';
import { setImmediate as nextTick } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { SHARED_REDIS_URL, redisSuite, uniquePrefix } from '../../../test/helpers/redis.js';
import { deleteKeys } from '../../../test/helpers/redis-cleanup.js';
import { waitFor } from '../../../test/helpers/wait.js';
import type { WsTestClient } from '../../../test/helpers/ws-client.js';
import { WsPairFactory } from '../../../test/helpers/ws-pair.js';
import { signalTopic } from '../bus/bus-topic.js';
import { RedisEventBus } from '../bus/redis-event-bus.js';
import { RedisConnections } from '../engine/redis-connections.js';
import { EngineUnavailableError } from '../errors/engine-unavailable.error.js';
import type { CountTarget } from './client-registry.js';
import { Connection, type ClientId, type ClientInfo } from './connection.js';
import { RedisClientRegistry, type RedisRegistryTiming } from './redis-client-registry.js';

const log = pino({ level: 'silent' });

interface Instance {
  redis: RedisConnections;
  bus: RedisEventBus;
  registry: RedisClientRegistry;
}

interface Client {
  connection: Connection;
  client: WsTestClient;
}

describe('RedisClientRegistry', await redisSuite(), () => {
  const prefix = uniquePrefix();
  const instances: Instance[] = [];
  let pairs: WsPairFactory;
  let inspect: Redis;
  let a: Instance;
  let b: Instance;
  let counter = 0;

  async function startInstance(
    timing: RedisRegistryTiming = { heartbeatMs: 100, ttlMs: 1000 },
    { joined = true } = {},
  ): Promise<Instance> {
    const redis = new RedisConnections({ kind: 'single', url: SHARED_REDIS_URL }, prefix, log);
    const bus = new RedisEventBus(redis, log);
    const registry = new RedisClientRegistry(bus, log, redis, timing);
    registry.shareCounts('jac');
    registry.shareCounts('fates');
    const instance = { redis, bus, registry };
    instances.push(instance);
    bus.start();
    registry.start();
    await redis.connect();
    if (!joined) return instance;
    await waitFor(async () => (await inspect.zscore(`${prefix}instances`, registry.instanceId)) !== null, {
      what: 'the instance to register',
    });
    return instance;
  }

  async function open(
    on: Instance,
    user: string | null,
    channels: string[] = [],
    { add = true } = {},
  ): Promise<Client> {
    const { server, client } = await pairs.pair();
    const connection = new Connection({
      id: `${Date.now()}:${++counter}` as ClientId,
      protocol: 'jac',
      socket: server,
      user,
      normalClose: { code: 1000, reason: 'Closed by server' },
      slowConsumerClose: { code: 1013, reason: 'slow' },
      sendBufferLimit: 1 << 20,
    });
    on.registry.setChannels(connection, channels);
    if (add) on.registry.add(connection);
    return { connection, client };
  }

  /** The view from `from`, once it shows exactly `expected` (ids) for clients of this suite. */
  async function viewOf(from: Instance, expected: string[]): Promise<ClientInfo[]> {
    const want = [...expected].sort();
    let last: string[] = [];
    try {
      return await waitFor(
        async () => {
          const list = await from.registry.list();
          last = list.map((c) => c.id).sort();
          return JSON.stringify(last) === JSON.stringify(want) ? list : undefined;
        },
        { timeoutMs: 3000, what: 'the registry view' },
      );
    } catch (err) {
      assert.deepEqual(last, want, String(err));
      throw err;
    }
  }

  before(async () => {
    pairs = await WsPairFactory.start();
    inspect = new Redis(SHARED_REDIS_URL);
    a = await startInstance();
    b = await startInstance();
  });

  after(async () => {
    for (const instance of instances) {
      await instance.registry.stop();
      await instance.redis.close();
    }
    await pairs.close();
    await deleteKeys(SHARED_REDIS_URL, prefix);
    inspect.disconnect();
  });

  it("shows each instance the other's connections, with the instance that holds them", async () => {
    const onA = await open(a, 'n::u1', ['ch-a']);
    const onB1 = await open(b, 'n::u2', ['ch-b', 'ch-shared']);
    const onB2 = await open(b, null);
    const ids = [onA.connection.id, onB1.connection.id, onB2.connection.id];
    const fromA = await viewOf(a, ids);
    const fromB = await viewOf(b, ids);
    const byId = (list: ClientInfo[]): Map<string, ClientInfo> => new Map(list.map((c) => [c.id, c]));
    for (const view of [byId(fromA), byId(fromB)]) {
      assert.equal(view.get(onA.connection.id)?.instance, a.registry.instanceId);
      assert.equal(view.get(onB1.connection.id)?.instance, b.registry.instanceId);
      assert.equal(view.get(onB2.connection.id)?.instance, b.registry.instanceId);
      assert.equal(view.get(onA.connection.id)?.user, 'n::u1');
      assert.deepEqual(view.get(onB1.connection.id)?.channels.sort(), ['ch-b', 'ch-shared']);
      assert.equal(view.get(onB2.connection.id)?.user, null);
      assert.equal(view.get(onB2.connection.id)?.protocol, 'jac');
    }
    assert.notEqual(a.registry.instanceId, b.registry.instanceId);

    const located = await a.registry.locate(onB1.connection.id);
    assert.equal(located?.instance, b.registry.instanceId);
    assert.equal(located?.user, 'n::u2');
    assert.equal((await b.registry.locate(onA.connection.id))?.instance, a.registry.instanceId);
    assert.equal((await a.registry.locate(onA.connection.id))?.instance, a.registry.instanceId);
    assert.equal(await a.registry.locate('0:nobody'), null);

    for (const c of [onA, onB1, onB2]) c.connection.socket.close();
    for (const c of [onA, onB1, onB2]) {
      await c.client.waitClose();
      (c === onA ? a : b).registry.remove(c.connection);
    }
    await viewOf(a, []);
  });

  it('is settled only once it is in the live set, so a client made ready at start-up is counted elsewhere', async () => {
    // A heartbeat far off: only the join at connect can put the instance in the live set.
    const c = await startInstance({ heartbeatMs: 60_000, ttlMs: 120_000 }, { joined: false });
    const pending = c.registry.settled();
    assert.ok(pending, 'the join is under way');
    const onC = await open(c, 'n::early');
    await c.registry.settled();
    await pending;
    assert.notEqual(await inspect.zscore(`${prefix}instances`, c.registry.instanceId), null);
    assert.equal(await a.registry.remoteCount('jac', { kind: 'user', id: 'n::early' }), 1);
    onC.connection.socket.close();
    await onC.client.waitClose();
    c.registry.remove(onC.connection);
    await c.registry.stop();
  });

  it('mirrors user and channel changes and removals to the other instances', async () => {
    const onB = await open(b, 'n::before', ['c1']);
    await viewOf(a, [onB.connection.id]);
    b.registry.setUser(onB.connection, 'n::after');
    b.registry.setChannels(onB.connection, ['c2', 'c3']);
    await waitFor(
      async () => {
        const info = await a.registry.locate(onB.connection.id);
        return info?.user === 'n::after' && info.channels.sort().join() === 'c2,c3';
      },
      { what: 'the update to be mirrored' },
    );
    b.registry.remove(onB.connection);
    await viewOf(a, []);
    assert.equal(await a.registry.locate(onB.connection.id), null);
    onB.client.terminate();
  });

  /** The counts hash of an instance, as Redis holds it. */
  function countsOf(instance: Instance): Promise<Record<string, string>> {
    return inspect.hgetall(`${prefix}counts:{${instance.registry.instanceId}}`);
  }

  /** Waits until `from` counts `n` for `target` across the cluster. */
  async function countReaches(from: Instance, target: CountTarget, n: number): Promise<void> {
    let last = -1;
    try {
      await waitFor(async () => (last = await from.registry.count('jac', target)) === n, {
        timeoutMs: 3000,
        what: `count ${JSON.stringify(target)} to reach ${n}`,
      });
    } catch (err) {
      assert.equal(last, n, String(err));
    }
  }

  it("counts the other instances' connections from their mirrored index sizes", async () => {
    const onB1 = await open(b, 'n::c1', ['room-a', 'room-b']);
    const onB2 = await open(b, 'n::c1', ['room-b']);
    const onB3 = await open(b, 'n::c2');
    const onA = await open(a, 'n::c1', ['room-b']);
    await countReaches(a, { kind: 'user', id: 'n::c1' }, 3);
    for (const from of [a, b]) {
      assert.equal(await from.registry.count('jac', { kind: 'channel', id: 'room-b' }), 3);
      assert.equal(await from.registry.count('jac', { kind: 'channel', id: 'room-a' }), 1);
      assert.equal(await from.registry.count('jac', { kind: 'all' }), 4);
      assert.equal(await from.registry.count('jac', { kind: 'user', id: 'n::c2' }), 1);
      assert.equal(await from.registry.count('jac', { kind: 'channel', id: 'nowhere' }), 0);
      assert.equal(await from.registry.count('fates', { kind: 'all' }), 0);
    }
    assert.equal(await a.registry.remoteCount('jac', { kind: 'channel', id: 'room-b' }), 2);
    assert.equal(await b.registry.remoteCount('jac', { kind: 'channel', id: 'room-b' }), 1);
    // One field per index that has connections, holding its size.
    assert.deepEqual(await countsOf(b), {
      'jac:all': '3',
      'jac:user:n::c1': '2',
      'jac:user:n::c2': '1',
      'jac:channel:room-a': '1',
      'jac:channel:room-b': '2',
    });

    // Changes are mirrored within a tick; a count that reaches zero loses its field.
    b.registry.setChannels(onB1.connection, ['room-b']);
    b.registry.setUser(onB3.connection, 'n::c1');
    await countReaches(a, { kind: 'channel', id: 'room-a' }, 0);
    await countReaches(a, { kind: 'user', id: 'n::c1' }, 4);
    assert.deepEqual(await countsOf(b), { 'jac:all': '3', 'jac:user:n::c1': '3', 'jac:channel:room-b': '2' });
    for (const c of [onB1, onB2, onB3]) b.registry.remove(c.connection);
    await countReaches(a, { kind: 'all' }, 1);
    await waitFor(async () => (await inspect.exists(`${prefix}counts:{${b.registry.instanceId}}`)) === 0, {
      what: "B's empty counts hash to go",
    });
    a.registry.remove(onA.connection);
    await countReaches(b, { kind: 'channel', id: 'room-b' }, 0);
    for (const c of [onB1, onB2, onB3, onA]) c.client.terminate();
  });

  it('rewrites its counts after a reconnect, changes made while Redis was away included', async () => {
    const d = await startInstance();
    const before = await open(d, 'n::d', ['room-d']);
    await countReaches(a, { kind: 'channel', id: 'room-d' }, 1);
    const during = await open(d, 'n::d', ['room-d'], { add: false });
    // Redis lost the hash (a restart without persistence) and the connection drops.
    await inspect.del(`${prefix}counts:{${d.registry.instanceId}}`);
    const dropped = once(d.redis.command, 'close');
    d.redis.command.disconnect(true);
    await dropped;
    // Added while the command connection is down: the flush drops it, the resync writes it.
    assert.equal(d.redis.commandUp, false);
    d.registry.add(during.connection);
    await countReaches(a, { kind: 'channel', id: 'room-d' }, 2);
    assert.deepEqual(await countsOf(d), { 'jac:all': '2', 'jac:user:n::d': '2', 'jac:channel:room-d': '2' });
    assert.ok((await inspect.pttl(`${prefix}counts:{${d.registry.instanceId}}`)) > 0, 'the rewritten hash expires');
    for (const c of [before, during]) {
      d.registry.remove(c.connection);
      c.client.terminate();
    }
    await countReaches(a, { kind: 'channel', id: 'room-d' }, 0);
    await d.registry.stop();
  });

  it('answers 503 (EngineUnavailableError) when it cannot ask Redis', async () => {
    const e = await startInstance();
    e.redis.command.disconnect(false);
    await assert.rejects(e.registry.count('jac', { kind: 'all' }), EngineUnavailableError);
    await assert.rejects(e.registry.remoteCount('jac', { kind: 'all' }), EngineUnavailableError);
    await e.registry.stop();
  });

  it('disconnects a client held by another instance with its normal close', async () => {
    const onB = await open(b, 'n::victim');
    const bystander = await open(b, 'n::victim');
    await viewOf(a, [onB.connection.id, bystander.connection.id]);
    assert.equal(await a.registry.disconnect(onB.connection.id), true);
    assert.deepEqual(await onB.client.waitClose(), { code: 1000, reason: 'Closed by server' });
    assert.equal(await a.registry.disconnect('0:unknown'), false);
    // Only the named client was closed.
    b.registry.deliver('jac', { kind: 'client', ids: [bystander.connection.id] }, Buffer.from('alive'));
    assert.equal((await bystander.client.nextRaw()).data.toString(), 'alive');
    b.registry.remove(onB.connection);
    b.registry.remove(bystander.connection);
    bystander.client.terminate();
    await viewOf(a, []);
  });

  it("removes an instance's entries on stop(), including writes still pending", async () => {
    const c = await startInstance();
    const first = await open(c, 'n::c');
    await viewOf(a, [first.connection.id]);
    // Changes made just before stop() are flushed on a later tick; they must not
    // re-create the hash after stop() deleted it.
    const late = await open(c, 'n::late');
    c.registry.setUser(first.connection, 'n::changed');
    await c.registry.stop();
    await nextTick();
    await c.redis.command.ping();
    assert.equal(await inspect.exists(`${prefix}conns:{${c.registry.instanceId}}`), 0);
    assert.equal(await inspect.exists(`${prefix}counts:{${c.registry.instanceId}}`), 0);
    assert.equal(await inspect.zscore(`${prefix}instances`, c.registry.instanceId), null);
    await viewOf(a, []);
    assert.equal(await a.registry.locate(late.connection.id), null);
    first.client.terminate();
    late.client.terminate();
  });

  it('drops an instance that stops beating, with its clients, after the ttl', async () => {
    const timing = { heartbeatMs: 50, ttlMs: 300 };
    const watcher = await startInstance(timing);
    const doomed = await startInstance(timing);
    const onDoomed = await open(doomed, 'n::doomed');
    await viewOf(watcher, [onDoomed.connection.id]);
    await countReaches(watcher, { kind: 'user', id: 'n::doomed' }, 1);
    // A crash: the connections go, no stop() runs, nothing is cleaned up.
    doomed.redis.command.disconnect();
    doomed.redis.subscriber.disconnect();
    const started = Date.now();
    await viewOf(watcher, []);
    assert.ok(Date.now() - started <= 2000);
    assert.equal(await watcher.registry.count('jac', { kind: 'user', id: 'n::doomed' }), 0);
    // Its hash expires on its own too.
    await waitFor(async () => (await inspect.exists(`${prefix}conns:{${doomed.registry.instanceId}}`)) === 0, {
      what: "the dead instance's hash to expire",
    });
    await waitFor(async () => (await inspect.exists(`${prefix}counts:{${doomed.registry.instanceId}}`)) === 0, {
      what: "the dead instance's counts to expire",
    });
    onDoomed.client.terminate();
  });

  it('revokes a credential on every instance, once per instance', async () => {
    const revoked = { code: 4004, reason: 'revoked' };
    const onA = await open(a, 'n::revoked');
    const onB = await open(b, 'n::revoked');
    const kept = await open(b, 'n::revoked');
    a.registry.setCredential(onA.connection, 'token-1');
    b.registry.setCredential(onB.connection, 'token-1');
    b.registry.setCredential(kept.connection, 'token-2');
    const calls = new Map<string, number>();
    const stops = [a, b].map(({ registry }) =>
      registry.onRevoke('jac', (connection, close) => {
        calls.set(registry.instanceId, (calls.get(registry.instanceId) ?? 0) + 1);
        connection.close(close);
      }),
    );

    await a.registry.revoke('jac', 'token-1', revoked);
    assert.deepEqual(await onA.client.waitClose(), revoked);
    assert.deepEqual(await onB.client.waitClose(), revoked);
    // One subscriber connection keeps A's order: once B has A's next message, any second copy
    // would have come.
    const probe = signalTopic('probe');
    const probed = new Promise<void>((resolve) => {
      const stop = b.bus.subscribe(probe, () => {
        stop();
        resolve();
      });
    });
    await b.bus.settled();
    await a.bus.publish(probe, { kind: 'all' }, true);
    await probed;
    assert.equal(kept.connection.send('marker'), true);
    assert.equal((await kept.client.nextRaw()).data.toString(), 'marker');
    assert.deepEqual([calls.get(a.registry.instanceId), calls.get(b.registry.instanceId)], [1, 1]);
    for (const stop of stops) stop();
    kept.client.terminate();
  });
});
