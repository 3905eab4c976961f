import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { RedisProcess, SHARED_REDIS_URL, redisSuite, uniquePrefix } from '../../../test/helpers/redis.js';
import { waitFor } from '../../../test/helpers/wait.js';
import { RedisConnections } from '../engine/redis-connections.js';
import { EngineUnavailableError } from '../errors/engine-unavailable.error.js';
import { bytesTopic, routedTo } from './bus-topic.js';
import { encodeBusMessage } from './bus-wire.js';
import type { Target } from './event-bus.js';
import { RedisEventBus } from './redis-event-bus.js';

const log = pino({ level: 'silent' });

/** A routed topic, as a protocol's events are: only the instances with a matching connection get them. */
const EVENTS = bytesTopic('spec-events', routedTo('spec', ['user', 'channel', 'client', 'all']));
/** A broadcast topic, as cluster housekeeping is: every instance using it gets every message. */
const HOUSEKEEPING = bytesTopic('spec-housekeeping');

interface Seen {
  text: string;
  target: Target;
}

interface Node {
  redis: RedisConnections;
  bus: RedisEventBus;
  seen: Seen[];
  housekeeping: string[];
}

/** A bus instance as the Engine builds it, collecting what reaches its subscribers. */
async function openNode(url: string, prefix: string, nodes: Node[]): Promise<Node> {
  const redis = new RedisConnections({ kind: 'single', url }, prefix, log);
  const bus = new RedisEventBus(redis, log);
  const node: Node = { redis, bus, seen: [], housekeeping: [] };
  nodes.push(node);
  bus.subscribe(EVENTS, (payload, target) => node.seen.push({ text: payload.toString(), target }));
  bus.subscribe(HOUSEKEEPING, (payload) => node.housekeeping.push(payload.toString()));
  bus.start();
  await redis.connect();
  await waitFor(() => bus.isListening, { what: 'the bus to listen' });
  return node;
}

const texts = (node: Node): string[] => node.seen.map((s) => s.text);

async function commandCalls(inspect: Redis, command: string): Promise<number> {
  const info = await inspect.info('commandstats');
  const match = new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(info);
  return match ? Number(match[1]) : 0;
}

async function closeAll(nodes: Node[]): Promise<void> {
  await Promise.all(nodes.map((node) => node.redis.close()));
  nodes.length = 0;
}

describe('RedisEventBus on the shared Redis', await redisSuite(), () => {
  const prefix = uniquePrefix();
  const nodes: Node[] = [];
  let inspect: Redis;
  let a: Node;
  let b: Node;
  let c: Node;

  before(async () => {
    inspect = new Redis(SHARED_REDIS_URL);
    a = await openNode(SHARED_REDIS_URL, prefix, nodes);
    b = await openNode(SHARED_REDIS_URL, prefix, nodes);
    c = await openNode(SHARED_REDIS_URL, prefix, nodes);
  });

  after(async () => {
    await closeAll(nodes);
    inspect.disconnect();
  });

  const clear = (): void => {
    for (const node of nodes) node.seen.length = 0;
  };

  it('delivers locally before publish returns, whoever else is interested', async () => {
    clear();
    const done = a.bus.publish(EVENTS, { kind: 'user', ids: ['nobody'] }, Buffer.from('sync'));
    assert.deepEqual(texts(a), ['sync']);
    await done;
  });

  it('sends a message only to the instances watching its target, and reaches them once it is settled', async () => {
    clear();
    b.bus.watch('spec', 'channel', 'room-1');
    await b.bus.settled();
    // Published at once after `settled`: it must not be lost to a subscription still on its way.
    await a.bus.publish(EVENTS, { kind: 'channel', ids: ['room-1'] }, Buffer.from('to-room-1'));
    await waitFor(() => texts(b).includes('to-room-1'), { what: 'B to get it' });
    // C watches nothing: a marker C does watch proves the first message would have come before it.
    c.bus.watch('spec', 'user', 'marker-c');
    await c.bus.settled();
    await a.bus.publish(EVENTS, { kind: 'user', ids: ['marker-c'] }, Buffer.from('marker'));
    await waitFor(() => texts(c).includes('marker'), { what: 'C to get its marker' });
    assert.deepEqual(texts(c), ['marker']);
    assert.equal([...c.bus.topicStats()].find((t) => t.topic === EVENTS.name)?.received, 1);
    c.bus.unwatch('spec', 'user', 'marker-c');
    b.bus.unwatch('spec', 'channel', 'room-1');
  });

  it('stops sending once the last interest is gone, and never watches what a topic does not route', async () => {
    clear();
    b.bus.watch('spec', 'client', 'c-1');
    b.bus.watch('other-protocol', 'client', 'c-2');
    await b.bus.settled();
    const channels = b.bus.channelCount;
    b.bus.unwatch('spec', 'client', 'c-1');
    await b.bus.settled();
    assert.equal(b.bus.channelCount, channels - 1, "another protocol's interest subscribes nothing here");
    await a.bus.publish(EVENTS, { kind: 'client', ids: ['c-1'] }, Buffer.from('late'));
    b.bus.watch('spec', 'client', 'marker-b');
    await b.bus.settled();
    await a.bus.publish(EVENTS, { kind: 'client', ids: ['marker-b'] }, Buffer.from('marker'));
    await waitFor(() => texts(b).includes('marker'), { what: 'the marker on B' });
    assert.deepEqual(texts(b), ['marker']);
    b.bus.unwatch('spec', 'client', 'marker-b');
    b.bus.unwatch('other-protocol', 'client', 'c-2');
  });

  it("hands on a message naming several watched ids once per id, in that id's order, sharing one seen set", async () => {
    clear();
    for (const id of ['x', 'y']) b.bus.watch('spec', 'user', id);
    await b.bus.settled();
    const tapped: Target[] = [];
    const untap = b.bus.tap((message) => {
      if (message.topic === EVENTS.name) tapped.push(message.target);
    });
    await a.bus.publish(EVENTS, { kind: 'user', ids: ['x', 'y', 'z'] }, Buffer.from('three'));
    await a.bus.publish(EVENTS, { kind: 'user', ids: ['y'] }, Buffer.from('marker'));
    await waitFor(() => texts(b).includes('marker'), { what: 'the marker' });
    untap();
    // One call per watched id (z is watched nowhere here), each with its own id.
    assert.deepEqual(texts(b), ['three', 'three', 'marker']);
    const parts = b.seen.slice(0, 2).map((s) => s.target);
    assert.deepEqual(parts.map((t) => (t.kind === 'all' ? null : t.ids)).sort(), [['x'], ['y']]);
    const sets = parts.map((t) => (t.kind === 'all' ? undefined : t.seen));
    assert.ok(sets[0] instanceof Set && sets[0] === sets[1], 'both parts share the seen set');
    assert.equal(b.seen[2]?.target.kind === 'user' && b.seen[2].target.seen, undefined, 'one id: no seen set');
    // The feed shows the message once, whole.
    assert.deepEqual(tapped, [
      { kind: 'user', ids: ['x', 'y', 'z'] },
      { kind: 'user', ids: ['y'] },
    ]);
    for (const id of ['x', 'y']) b.bus.unwatch('spec', 'user', id);
  });

  it('sends `all` to the instances with a connection of the protocol, and broadcast topics to every instance', async () => {
    clear();
    b.bus.watch('spec', 'all', '');
    await b.bus.settled();
    await a.bus.publish(EVENTS, { kind: 'all' }, Buffer.from('everyone-of-spec'));
    await a.bus.publish(HOUSEKEEPING, { kind: 'all' }, Buffer.from('for-all'));
    await waitFor(() => c.housekeeping.includes('for-all') && b.housekeeping.includes('for-all'), {
      what: 'every instance to hear the broadcast',
    });
    await waitFor(() => texts(b).includes('everyone-of-spec'), { what: 'B to get it' });
    assert.deepEqual(texts(c), []);
    b.bus.unwatch('spec', 'all', '');
  });

  it('subscribes as interest changes, never per message', async () => {
    b.bus.watch('spec', 'channel', 'busy');
    await b.bus.settled();
    const before = await commandCalls(inspect, 'subscribe');
    for (let i = 0; i < 200; i++) await a.bus.publish(EVENTS, { kind: 'channel', ids: ['busy'] }, Buffer.from(`m${i}`));
    await waitFor(() => texts(b).includes('m199'), { what: 'every message on B' });
    assert.equal((await commandCalls(inspect, 'subscribe')) - before, 0);
    b.bus.unwatch('spec', 'channel', 'busy');
  });

  it('drops frames it cannot decode and keeps going', async () => {
    clear();
    b.bus.watch('spec', 'user', 'garbage');
    await b.bus.settled();
    const channel = `${prefix}bus:{${EVENTS.name}:user:garbage}`;
    await inspect.publish(channel, Buffer.from([0, 0, 0, 2, 0x7b]));
    await inspect.publish(channel, Buffer.from('null-header-ish'));
    await inspect.publish(
      channel,
      Buffer.concat([Buffer.from([0, 0, 0, 4]), Buffer.from('null'), Buffer.from('payload')]),
    );
    // A well-formed frame from a third instance arrives afterwards, alone.
    const good = {
      topic: EVENTS.name,
      target: { kind: 'user', ids: ['garbage'] } as Target,
      payload: Buffer.from('good'),
    };
    await inspect.publish(channel, encodeBusMessage('someone-else', good));
    await waitFor(() => b.seen.length > 0, { what: 'the good frame' });
    assert.deepEqual(texts(b), ['good']);
    b.bus.unwatch('spec', 'user', 'garbage');
  });

  it('still tells other instances when a local subscriber throws', async () => {
    clear();
    const off = a.bus.subscribe(EVENTS, () => {
      throw new Error('subscriber bug');
    });
    b.bus.watch('spec', 'user', 'bug');
    await b.bus.settled();
    try {
      await a.bus.publish(EVENTS, { kind: 'user', ids: ['bug'] }, Buffer.from('despite-bug'));
      assert.deepEqual(texts(a), ['despite-bug']);
      await waitFor(() => b.seen.length === 1, { what: 'B to see it' });
    } finally {
      off();
      b.bus.unwatch('spec', 'user', 'bug');
    }
  });

  it('is a different instance per bus', () => {
    assert.notEqual(a.bus.instanceId, b.bus.instanceId);
    assert.match(a.bus.instanceId, new RegExp(`^${process.pid}-[0-9a-f]{12}$`));
  });
});

describe('RedisEventBus on a private Redis', await redisSuite(), () => {
  const prefix = uniquePrefix();
  const nodes: Node[] = [];
  let server: RedisProcess;
  let inspect: Redis;

  before(async () => {
    server = await RedisProcess.start();
    inspect = new Redis(server.url, { retryStrategy: () => 50, maxRetriesPerRequest: 1 });
    inspect.on('error', () => undefined);
    for (let i = 0; i < 3; i++) await openNode(server.url, prefix, nodes);
  });

  after(async () => {
    await closeAll(nodes);
    inspect.disconnect();
    await server.stop();
  });

  it('knows whether it listens: not before it connects', () => {
    const redis = new RedisConnections({ kind: 'single', url: server.url }, prefix, log);
    const bus = new RedisEventBus(redis, log);
    bus.start();
    assert.equal(bus.isListening, false);
    redis.subscriber.disconnect();
    redis.command.disconnect();
  });

  it('sends one PUBLISH per publish to one target, whatever the number of instances watching it', async () => {
    const [a, b, c] = nodes as [Node, Node, Node];
    for (const node of [b, c]) node.bus.watch('spec', 'channel', 'shared');
    await Promise.all([b.bus.settled(), c.bus.settled()]);
    b.seen.length = 0;
    c.seen.length = 0;
    const before = await commandCalls(inspect, 'publish');
    await a.bus.publish(EVENTS, { kind: 'channel', ids: ['shared'] }, Buffer.from('counted'));
    await waitFor(() => b.seen.length === 1 && c.seen.length === 1, { what: 'B and C to receive' });
    assert.equal((await commandCalls(inspect, 'publish')) - before, 1);
  });

  it('rejects with EngineUnavailableError while Redis is down, after local delivery, and recovers its subscriptions', async () => {
    const [a, b] = nodes as [Node, Node, Node];
    b.bus.watch('spec', 'user', 'after-outage');
    await b.bus.settled();
    await server.stop();
    await waitFor(() => !a.redis.isUp, { what: 'A to notice the outage' });
    await waitFor(() => !a.bus.isListening && !b.bus.isListening, { what: 'the buses to stop listening' });
    a.seen.length = 0;
    b.seen.length = 0;
    await assert.rejects(
      a.bus.publish(EVENTS, { kind: 'user', ids: ['after-outage'] }, Buffer.from('outage')),
      EngineUnavailableError,
    );
    assert.deepEqual(texts(a), ['outage']);

    await server.start();
    await waitFor(() => nodes.every((node) => node.bus.isListening), { what: 'every bus to listen again' });
    // Subscribed again without anyone asking: B's interest survived the outage.
    await waitFor(
      async () => {
        if (a.redis.isUp)
          await a.bus
            .publish(EVENTS, { kind: 'user', ids: ['after-outage'] }, Buffer.from('back'))
            .catch(() => undefined);
        return texts(b).includes('back');
      },
      { timeoutMs: 8000, intervalMs: 50, what: 'cross-instance delivery after the restart' },
    );
    assert.ok(!texts(b).includes('outage'));
  });
});
