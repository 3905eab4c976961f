import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { RedisProcess, SHARED_REDIS_URL, redisSuite, uniquePrefix } from '../../../test/helpers/redis.js';
import { waitFor } from '../../../test/helpers/wait.js';
import { RedisConnections } from '../engine/redis-connections.js';
import { EngineUnavailableError } from '../errors/engine-unavailable.error.js';
import { bytesTopic } from './bus-topic.js';
import { encodeBusMessage } from './bus-wire.js';
import type { BusMessage, EventBus } from './event-bus.js';
import { RedisEventBus } from './redis-event-bus.js';

const log = pino({ level: 'silent' });

interface Node {
  redis: RedisConnections;
  bus: RedisEventBus;
  seen: BusMessage[];
}

function text(messages: BusMessage[]): string[] {
  return messages.map((m) => m.payload.toString());
}

function message(text: string, topic = 'jac'): BusMessage {
  return { topic, target: { kind: 'user', ids: ['n::u'] }, payload: Buffer.from(text) };
}

/** Publishes `message` on its topic as a topic of opaque bytes. */
function send(bus: EventBus, { topic, target, payload }: BusMessage): Promise<void> {
  return bus.publish(bytesTopic(topic), target, payload);
}

/** Subscribes to a topic of opaque bytes, handing each message on as it travelled. */
function collect(bus: EventBus, topic: string, into: (message: BusMessage) => void): () => void {
  return bus.subscribe(bytesTopic(topic), (payload, target) => into({ topic, target, payload }));
}

/** A bus instance as the Engine builds it, collecting what reaches its `jac` subscribers. */
async function openNode(url: string, prefix: string, nodes: Node[]): Promise<Node> {
  const redis = new RedisConnections(url, prefix, log);
  const bus = new RedisEventBus(redis, log);
  const node: Node = { redis, bus, seen: [] };
  nodes.push(node);
  collect(bus, 'jac', (m) => node.seen.push(m));
  bus.start();
  await redis.connect();
  return node;
}

async function subscribers(inspect: Redis, channel: string): Promise<number> {
  const reply = (await inspect.call('PUBSUB', 'NUMSUB', channel)) as [string, number];
  return Number(reply[1]);
}

async function publishCalls(inspect: Redis): Promise<number> {
  const info = await inspect.info('commandstats');
  const match = /cmdstat_publish:calls=(\d+)/.exec(info);
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

  before(async () => {
    inspect = new Redis(SHARED_REDIS_URL);
    a = await openNode(SHARED_REDIS_URL, prefix, nodes);
    b = await openNode(SHARED_REDIS_URL, prefix, nodes);
    await waitFor(async () => (await subscribers(inspect, `${prefix}bus`)) === 2, { what: 'two bus subscriptions' });
    await waitFor(() => a.bus.isListening && b.bus.isListening, { what: 'both buses to know they listen' });
  });

  after(async () => {
    await closeAll(nodes);
    inspect.disconnect();
  });

  it('delivers locally before publish returns', async () => {
    const before = a.seen.length;
    const done = send(a.bus, message('sync'));
    assert.deepEqual(text(a.seen.slice(before)), ['sync']);
    await done;
    await waitFor(() => text(b.seen).includes('sync'), { what: 'B to see it' });
  });

  it("delivers each instance the other's messages exactly once and skips its own echo", async () => {
    a.seen.length = 0;
    b.seen.length = 0;
    await send(a.bus, message('from-a'));
    await send(a.bus, message('marker-a'));
    await waitFor(() => text(b.seen).includes('marker-a'), { what: 'B to see marker-a' });
    await send(b.bus, message('from-b'));
    await send(b.bus, message('marker-b'));
    await waitFor(() => text(a.seen).includes('marker-b'), { what: 'A to see marker-b' });
    // A's echoes of its own publishes would have reached A before marker-b (one
    // ordered subscriber connection), so their absence here is final.
    assert.deepEqual(text(a.seen), ['from-a', 'marker-a', 'from-b', 'marker-b']);
    // B's own publishes are dispatched locally; their echo would follow them.
    await send(a.bus, message('final'));
    await waitFor(() => text(b.seen).includes('final'), { what: 'B to see final' });
    assert.deepEqual(text(b.seen), ['from-a', 'marker-a', 'from-b', 'marker-b', 'final']);
  });

  it('carries the payload bytes unchanged, including bytes that are not UTF-8', async () => {
    const bytes = Buffer.from([0x00, 0xff, 0xfe, 0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x82, 0x0a, 0x0d, 0x80]);
    b.seen.length = 0;
    await send(a.bus, { topic: 'jac', target: { kind: 'channel', ids: ['c1', 'c2'] }, payload: bytes });
    const got = await waitFor(() => b.seen[0], { what: 'the binary message' });
    assert.ok(got.payload.equals(bytes), `got ${got.payload.toString('hex')}`);
    assert.equal(got.topic, 'jac');
    assert.deepEqual(got.target, { kind: 'channel', ids: ['c1', 'c2'] });
  });

  it('delivers only to subscribers of the message topic, and not after unsubscribe', async () => {
    const other: string[] = [];
    const off = collect(b.bus, 'other', (m) => other.push(m.payload.toString()));
    b.seen.length = 0;
    await send(a.bus, message('to-other', 'other'));
    await send(a.bus, message('marker-1'));
    await waitFor(() => b.seen.length === 1, { what: 'marker-1 on B' });
    assert.deepEqual(other, ['to-other']);
    off();
    await send(a.bus, message('to-other-again', 'other'));
    await send(a.bus, message('marker-2'));
    await waitFor(() => b.seen.length === 2, { what: 'marker-2 on B' });
    assert.deepEqual(other, ['to-other']);
    assert.deepEqual(text(b.seen), ['marker-1', 'marker-2']);
  });

  it('drops frames it cannot decode and keeps going', async () => {
    b.seen.length = 0;
    await inspect.publish(`${prefix}bus`, Buffer.from([0, 0, 0, 2, 0x7b]));
    await inspect.publish(`${prefix}bus`, Buffer.from('null-header-ish'));
    await inspect.publish(
      `${prefix}bus`,
      Buffer.concat([Buffer.from([0, 0, 0, 4]), Buffer.from('null'), Buffer.from('payload')]),
    );
    // A well-formed frame from a third instance arrives afterwards, alone.
    await inspect.publish(`${prefix}bus`, encodeBusMessage('someone-else', message('good')));
    await waitFor(() => b.seen.length > 0, { what: 'the good frame' });
    assert.deepEqual(text(b.seen), ['good']);
  });

  it('still tells other instances when a local subscriber throws', async () => {
    const off = a.bus.subscribe(bytesTopic('jac'), () => {
      throw new Error('subscriber bug');
    });
    const offRemote = b.bus.subscribe(bytesTopic('jac'), () => {
      throw new Error('remote subscriber bug');
    });
    try {
      a.seen.length = 0;
      b.seen.length = 0;
      await send(a.bus, message('despite-bug'));
      assert.deepEqual(text(a.seen), ['despite-bug']);
      await waitFor(() => b.seen.length === 1, { what: 'B to see it' });
      assert.deepEqual(text(b.seen), ['despite-bug']);
    } finally {
      off();
      offRemote();
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
    await waitFor(async () => (await subscribers(inspect, `${prefix}bus`)) === 3, { what: 'three subscriptions' });
  });

  after(async () => {
    await closeAll(nodes);
    inspect.disconnect();
    await server.stop();
  });

  it('knows whether it listens: not before it connects', () => {
    const redis = new RedisConnections(server.url, prefix, log);
    const bus = new RedisEventBus(redis, log);
    bus.start();
    assert.equal(bus.isListening, false);
    redis.subscriber.disconnect();
    redis.command.disconnect();
  });

  it('sends one PUBLISH per publish, whatever the number of instances and subscribers', async () => {
    const [a, b, c] = nodes as [Node, Node, Node];
    for (const node of nodes) {
      node.bus.subscribe(bytesTopic('jac'), () => undefined);
      node.bus.subscribe(bytesTopic('fates'), () => undefined);
    }
    // Still one channel subscription per instance, not one per topic or handler.
    assert.equal(await subscribers(inspect, `${prefix}bus`), 3);
    b.seen.length = 0;
    c.seen.length = 0;
    const before = await publishCalls(inspect);
    await send(a.bus, message('counted'));
    await waitFor(() => b.seen.length === 1 && c.seen.length === 1, { what: 'B and C to receive' });
    assert.equal((await publishCalls(inspect)) - before, 1);
    await send(a.bus, message('counted-2'));
    await send(a.bus, message('counted-3'));
    await waitFor(() => b.seen.length === 3 && c.seen.length === 3, { what: 'B and C to receive two more' });
    assert.equal((await publishCalls(inspect)) - before, 3);
  });

  it('rejects with EngineUnavailableError while Redis is down, after local delivery, and recovers', async () => {
    const [a, b] = nodes as [Node, Node, Node];
    await server.stop();
    await waitFor(() => !a.redis.isUp, { what: 'A to notice the outage' });
    await waitFor(() => !a.bus.isListening && !b.bus.isListening, { what: 'the buses to stop listening' });
    a.seen.length = 0;
    b.seen.length = 0;
    await assert.rejects(send(a.bus, message('outage')), EngineUnavailableError);
    assert.deepEqual(text(a.seen), ['outage']);

    await server.start();
    // Pub/sub is fire-and-forget: poll until B has resubscribed and hears A again.
    let attempt = 0;
    await waitFor(
      async () => {
        attempt++;
        if (a.redis.isUp) await send(a.bus, message(`probe-${attempt}`)).catch(() => undefined);
        return b.seen.length > 0;
      },
      { timeoutMs: 8000, intervalMs: 50, what: 'cross-instance delivery after the restart' },
    );
    assert.ok(text(b.seen).every((t) => t.startsWith('probe-')));
    await waitFor(() => nodes.every((node) => node.bus.isListening), { what: 'every bus to listen again' });
    assert.ok(!text(b.seen).includes('outage'));
  });
});
