import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { RedisEventBus } from '../../src/core/bus/redis-event-bus.js';
import { Engine } from '../../src/core/engine/engine.js';
import { startApp, type TestApp } from '../helpers/app.js';
import { waitReady } from '../helpers/http.js';
import { connectJac, issueToken, type JacSocket } from '../helpers/jac-client.js';
import { RedisProcess, redisSuite, uniquePrefix } from '../helpers/redis.js';
import { waitFor } from '../helpers/wait.js';

/** Bus messages an instance has received from the others, over every topic. */
function received(app: TestApp): number {
  let total = 0;
  for (const topic of app.app.get(Engine).bus.topicStats()) total += topic.received;
  return total;
}

/** How many bus channels an instance subscribes to now. */
function channels(app: TestApp): number {
  const bus = app.app.get(Engine).bus;
  assert.ok(bus instanceof RedisEventBus);
  return bus.channelCount;
}

async function commandCalls(inspect: Redis, command: string): Promise<number> {
  const info = await inspect.info('commandstats');
  const match = new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(info);
  return match ? Number(match[1]) : 0;
}

describe('interest routing between gateway instances', await redisSuite(), () => {
  const prefix = uniquePrefix();
  const sockets: JacSocket[] = [];
  let redis: RedisProcess;
  let inspect: Redis;
  let a: TestApp;
  let b: TestApp;
  let c: TestApp;
  let publisher: JacSocket;
  /** A socket on C that only the markers reach. */
  let onC: JacSocket;

  async function open(app: TestApp, channel?: string): Promise<JacSocket> {
    const socket = await connectJac(app, channel === undefined ? {} : { channel });
    sockets.push(socket);
    return socket;
  }

  /**
   * A message to C's own socket, awaited there. One Redis hands every subscriber the
   * messages of one publisher in the order they were published, so once it arrives, C has
   * heard everything published before it that was meant for C.
   */
  async function markerThroughC(n: number): Promise<void> {
    publisher.ws.send({ type: 'client', client_ids: [onC.clientId], data: { marker: n } });
    assert.deepEqual(await onC.ws.next(), { marker: n });
  }

  before(async () => {
    redis = await RedisProcess.start();
    inspect = new Redis(redis.url);
    const env = { REDIS_URL: redis.url, REDIS_KEY_PREFIX: prefix };
    [a, b, c] = await Promise.all([startApp(env), startApp(env), startApp(env)]);
    await Promise.all([a, b, c].map((app) => waitReady(app, 200)));
    publisher = await connectJac(a, { token: await issueToken(a) });
    sockets.push(publisher);
    onC = await open(c);
  });

  after(async () => {
    await Promise.all(sockets.map((s) => s.ws.close()));
    await Promise.all([a?.close(), b?.close(), c?.close()]);
    inspect?.disconnect();
    await redis?.stop();
  });

  it("sends a channel's messages to the instances with a socket in it and to no other", async () => {
    const room = [await open(b, 'room'), await open(b, 'room'), await open(b, 'room')];
    const beforeB = received(b);
    const beforeC = received(c);
    const count = 100;
    for (let i = 0; i < count; i++) publisher.ws.send({ type: 'channel', channel_ids: ['room'], data: { i } });
    for (const socket of room) {
      for (let i = 0; i < count; i++) assert.deepEqual(await socket.ws.next(), { i });
    }
    await markerThroughC(1);
    // B got each message once (not once per socket); C only the marker.
    assert.equal(received(b) - beforeB, count);
    assert.equal(received(c) - beforeC, 1);
    for (const socket of room) await socket.ws.close();
  });

  it('subscribes as sockets join and leave, never per message', async () => {
    const idle = channels(b);
    const room = [await open(b, 'busy'), await open(b, 'busy')];
    const joined = channels(b);
    assert.ok(joined > idle, 'joining subscribes');

    const subscribes = await commandCalls(inspect, 'subscribe');
    const unsubscribes = await commandCalls(inspect, 'unsubscribe');
    for (let i = 0; i < 300; i++) publisher.ws.send({ type: 'channel', channel_ids: ['busy'], data: { i } });
    for (const socket of room) {
      for (let i = 0; i < 300; i++) assert.deepEqual(await socket.ws.next(), { i });
    }
    assert.equal((await commandCalls(inspect, 'subscribe')) - subscribes, 0, 'no SUBSCRIBE for messages');
    assert.equal((await commandCalls(inspect, 'unsubscribe')) - unsubscribes, 0, 'no UNSUBSCRIBE for messages');
    assert.equal(channels(b), joined);

    // Joins and leaves: at most one SUBSCRIBE and one UNSUBSCRIBE each (a join's channels go
    // out together), however many messages come in between.
    const cycles = 20;
    const churnSubscribes = await commandCalls(inspect, 'subscribe');
    for (let cycle = 0; cycle < cycles; cycle++) {
      const socket = await open(b, `churn-${cycle}`);
      for (let i = 0; i < 5; i++) {
        publisher.ws.send({ type: 'channel', channel_ids: [`churn-${cycle}`], data: { cycle, i } });
      }
      for (let i = 0; i < 5; i++) assert.deepEqual(await socket.ws.next(), { cycle, i });
      await socket.ws.close();
      await waitFor(() => channels(b) === joined, { what: "the leaver's channels to be dropped" });
    }
    const churn = (await commandCalls(inspect, 'subscribe')) - churnSubscribes;
    assert.ok(churn >= 1 && churn <= cycles, `${churn} SUBSCRIBEs for ${cycles} joins`);

    for (const socket of room) await socket.ws.close();
    await waitFor(() => channels(b) === idle, { what: 'B to drop the room' });
    await b.app.get(Engine).bus.settled();
    const [, subscribers] = (await inspect.call('PUBSUB', 'NUMSUB', `${prefix}bus:{jac:channel:busy}`)) as [
      string,
      number,
    ];
    assert.equal(subscribers, 0, 'nobody subscribes to an empty room');
  });
});
