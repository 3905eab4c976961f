import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { RedisProcess, redisSuite, uniquePrefix } from '../../../test/helpers/redis.js';
import { waitFor } from '../../../test/helpers/wait.js';
import { RedisConnections } from '../engine/redis-connections.js';
import { RedisBusLog } from './bus-log.js';
import { bytesTopic, routedTo } from './bus-topic.js';
import { decodeBusMessage, encodeBusMessage } from './bus-wire.js';
import { LogCursors, type LoggedFrame } from './log-cursors.js';
import { RedisEventBus } from './redis-event-bus.js';

const log = pino({ level: 'silent' });
const EVENTS = bytesTopic('spec-logged', routedTo('spec', ['channel']));

/** A bus frame as an instance publishes it, with `text` as its payload. */
function frameOf(text: string): Buffer {
  return encodeBusMessage('spec-origin', {
    topic: EVENTS.name,
    target: { kind: 'channel', ids: ['c'] },
    payload: Buffer.from(text),
  });
}

function decode(frame: Buffer): LoggedFrame<string> | null {
  const decoded = decodeBusMessage(frame);
  return decoded?.logged ? { ...decoded.logged, frame: decoded.message.payload.toString() } : null;
}

/** Cursors over `busLog` that record what they deliver and what they report. */
function cursorsOver(busLog: RedisBusLog) {
  const seen = { delivered: [] as string[], unrepaired: [] as number[], repaired: 0 };
  const cursors = new LogCursors<string>({
    read: (channel, epoch, position) => busLog.read(channel, epoch, position),
    decode,
    deliver: (_, text) => seen.delivered.push(text),
    unrepaired: (_, missed) => seen.unrepaired.push(missed),
    repaired: (count) => (seen.repaired += count),
    readFailed: (_, err) => assert.fail(String(err)),
    maxQueued: 1000,
  });
  return { cursors, seen };
}

// A private Redis: what these specs subscribe must not show in another spec's command counts.
describe('the bus log', await redisSuite(), () => {
  const prefix = uniquePrefix();
  let server: RedisProcess;
  let redis: RedisConnections;
  let inspect: Redis;
  let busLog: RedisBusLog;
  let channels = 0;
  const channel = (): string => redis.key(`bus:{spec-logged:channel:c${++channels}}`);

  /** Appends `texts` to `name`'s log: each as the cursors get it when heard live. */
  async function append(name: string, texts: string[]): Promise<LoggedFrame<string>[]> {
    const logged: LoggedFrame<string>[] = [];
    for (const text of texts)
      logged.push({ ...(await busLog.append(name, frameOf(text))), publish: null, frame: text });
    return logged;
  }

  before(async () => {
    server = await RedisProcess.start();
    redis = new RedisConnections({ kind: 'single', url: server.url }, prefix, log);
    await redis.connect();
    inspect = new Redis(server.url);
    busLog = new RedisBusLog(redis, { maxLength: 100, ttlMs: 60_000 });
  });

  after(async () => {
    await redis.close();
    inspect.disconnect();
    await server.stop();
  });

  it('publishes each frame with its epoch and position, which count up by one, its bytes kept', async () => {
    const name = channel();
    const heard: Buffer[] = [];
    const listener = new Redis(server.url);
    listener.on('messageBuffer', (_, message: Buffer) => heard.push(message));
    await listener.subscribe(name);
    const binary = Buffer.from([0, 255, 10, 13, 0x7b]).toString('latin1');
    const logged = await append(name, ['one', 'two', binary]);
    await waitFor(() => heard.length === 3, { what: 'the three publishes' });
    listener.disconnect();
    assert.deepEqual(
      logged.map((l) => [l.position, l.frame]),
      [
        [1, 'one'],
        [2, 'two'],
        [3, binary],
      ],
    );
    assert.equal(new Set(logged.map((l) => l.epoch)).size, 1);
    // What subscribers hear is what the log holds, byte for byte.
    assert.deepEqual(
      heard.map((frame) => decode(frame)),
      logged,
    );
    // A build that does not know the log reads the frame as any other.
    assert.equal(decodeBusMessage(heard[0] as Buffer)?.message.payload.toString(), 'one');
  });

  it('applies frames once each, in order: a duplicate is dropped, a jump is filled from the log first', async () => {
    const name = channel();
    const logged = await append(name, ['1', '2', '3', '4', '5']);
    const { cursors, seen } = cursorsOver(busLog);
    const [first, second, , , fifth] = logged as [
      LoggedFrame<string>,
      LoggedFrame<string>,
      unknown,
      unknown,
      LoggedFrame<string>,
    ];
    cursors.heard(name, first);
    cursors.heard(name, first);
    cursors.heard(name, second);
    cursors.heard(name, fifth);
    await waitFor(() => seen.delivered.length === 5, { what: 'the gap to be filled' });
    assert.deepEqual(seen.delivered, ['1', '2', '3', '4', '5']);
    assert.equal(seen.repaired, 2);
    assert.deepEqual(seen.unrepaired, []);
  });

  it('catches up every channel it knows from where it stood, and frames heard meanwhile wait their turn', async () => {
    const names = [channel(), channel()];
    const { cursors, seen } = cursorsOver(busLog);
    for (const name of names) cursors.heard(name, (await append(name, [`${name}:1`]))[0] as LoggedFrame<string>);
    const missed = await Promise.all(names.map((name) => append(name, [`${name}:2`, `${name}:3`])));
    const late = (await append(names[0] as string, [`${names[0]}:4`]))[0] as LoggedFrame<string>;
    const catchingUp = cursors.catchUp();
    // Heard live while the log is being read: after what the log holds, once.
    cursors.heard(names[0] as string, late);
    await catchingUp;
    for (const [i, name] of names.entries()) {
      const got = seen.delivered.filter((text) => text.startsWith(`${name}:`));
      const expected = [`${name}:1`, ...(missed[i] ?? []).map((l) => l.frame), ...(i === 0 ? [`${name}:4`] : [])];
      assert.deepEqual(got, expected);
    }
    assert.deepEqual(seen.unrepaired, []);
  });

  it('says a gap is not repaired when the log no longer holds it, and goes on in order', async () => {
    const name = channel();
    const [first] = await append(name, ['0']);
    const { cursors, seen } = cursorsOver(busLog);
    cursors.heard(name, first as LoggedFrame<string>);
    // About 100 kept (Redis trims whole blocks): most of these 400 are gone.
    const texts = Array.from({ length: 400 }, (_, i) => String(i + 1));
    const logged = await append(name, texts);
    cursors.heard(name, logged.at(-1) as LoggedFrame<string>);
    await waitFor(() => seen.delivered.at(-1) === '400', { what: 'the last frame' });
    assert.equal(seen.unrepaired.length, 1);
    const kept = seen.delivered.length - 1;
    assert.ok(kept >= 100 && kept < 400, `${kept} kept`);
    assert.equal(seen.unrepaired[0], 400 - kept);
    assert.deepEqual(seen.delivered.slice(1), texts.slice(400 - kept));
  });

  it('takes a log that began again (Redis lost it) from its first position, not as duplicates', async () => {
    const name = channel();
    const { cursors, seen } = cursorsOver(busLog);
    for (const l of await append(name, ['a1', 'a2', 'a3'])) cursors.heard(name, l);
    const tag = name.slice(name.indexOf('{'));
    await inspect.del(redis.key(`bus-log:${tag}`), redis.key(`bus-log-n:${tag}`));
    const again = await append(name, ['b1', 'b2']);
    // The first frame of the new log is missed; the second reveals it.
    cursors.heard(name, again[1] as LoggedFrame<string>);
    await waitFor(() => seen.delivered.length === 5, { what: 'the new log' });
    assert.deepEqual(seen.delivered, ['a1', 'a2', 'a3', 'b1', 'b2']);
    assert.notEqual(again[0]?.epoch, undefined);
    assert.deepEqual(seen.unrepaired, []);
  });

  it('applies a log rewritten by a failover (positions handed out again), and still drops true repeats', () => {
    const name = channel();
    const { cursors, seen } = cursorsOver(busLog);
    const at = (position: number, publish: string): LoggedFrame<string> => ({
      epoch: '1',
      position,
      publish,
      frame: publish,
    });
    for (const [position, publish] of [
      [1, 'a:1'],
      [2, 'a:2'],
      [3, 'a:3'],
      [3, 'a:3'],
    ] as const)
      cursors.heard(name, at(position, publish));
    // The new master had only position 1: its next publishes take positions 2 and 3 again.
    cursors.heard(name, at(2, 'b:1'));
    cursors.heard(name, at(3, 'b:2'));
    cursors.heard(name, at(3, 'b:2'));
    cursors.heard(name, at(4, 'b:3'));
    assert.deepEqual(seen.delivered, ['a:1', 'a:2', 'a:3', 'b:1', 'b:2', 'b:3']);
    assert.deepEqual(seen.unrepaired, []);
  });

  it('keeps the log no longer than its time to live after the last publish', async () => {
    const name = channel();
    await append(name, ['x']);
    const tag = name.slice(name.indexOf('{'));
    for (const key of [redis.key(`bus-log:${tag}`), redis.key(`bus-log-n:${tag}`)]) {
      const ttl = await inspect.pttl(key);
      assert.ok(ttl > 0 && ttl <= 60_000, `${key}: ${ttl}`);
    }
  });
});

describe('RedisEventBus with the log, across a dropped subscription', await redisSuite(), () => {
  const prefix = uniquePrefix();
  const opened: RedisConnections[] = [];
  let server: RedisProcess;

  before(async () => {
    server = await RedisProcess.start();
  });

  async function node(maxLength = 1000) {
    const redis = new RedisConnections({ kind: 'single', url: server.url }, prefix, log);
    opened.push(redis);
    const bus = new RedisEventBus(redis, log, { busLog: { maxLength, ttlMs: 60_000 } });
    const seen: string[] = [];
    bus.subscribe(EVENTS, (payload) => seen.push(payload.toString()));
    bus.start();
    await redis.connect();
    await waitFor(() => bus.isListening, { what: 'the bus to listen' });
    return { redis, bus, seen };
  }

  after(async () => {
    await Promise.all(opened.map((redis) => redis.close()));
    await server.stop();
  });

  it('delivers what was published while its subscriber was away, in order, once, then what follows', async () => {
    const a = await node();
    const b = await node();
    b.bus.watch('spec', 'channel', 'room');
    await b.bus.settled();
    const target = { kind: 'channel', ids: ['room'] } as const;
    await a.bus.publish(EVENTS, target, Buffer.from('before'));
    await waitFor(() => b.seen.length === 1, { what: 'the first message' });

    const lost = new Promise((resolve) => b.redis.subscriber.once('end', resolve));
    b.redis.subscriber.disconnect();
    await lost;
    const away = Array.from({ length: 50 }, (_, i) => `away-${i}`);
    for (const text of away) await a.bus.publish(EVENTS, target, Buffer.from(text));
    const rejoins = b.bus.rejoins;
    await b.redis.subscriber.connect();
    await waitFor(() => b.bus.rejoins === rejoins + 1, { what: 'B to rejoin' });
    await a.bus.publish(EVENTS, target, Buffer.from('after'));
    await waitFor(() => b.seen.at(-1) === 'after', { what: 'the message after the gap' });
    assert.deepEqual(b.seen, ['before', ...away, 'after']);
    assert.equal(b.bus.repaired, 50);
    assert.equal(b.bus.unrepaired, 0);
  });

  it('counts a gap longer than the log as not repaired, and delivers what the log still holds', async () => {
    const a = await node(100);
    const b = await node(100);
    b.bus.watch('spec', 'channel', 'long');
    await b.bus.settled();
    const target = { kind: 'channel', ids: ['long'] } as const;
    await a.bus.publish(EVENTS, target, Buffer.from('0'));
    await waitFor(() => b.seen.length === 1, { what: 'the first message' });
    const lost = new Promise((resolve) => b.redis.subscriber.once('end', resolve));
    b.redis.subscriber.disconnect();
    await lost;
    for (let i = 1; i <= 400; i++) await a.bus.publish(EVENTS, target, Buffer.from(String(i)));
    await b.redis.subscriber.connect();
    await waitFor(() => b.seen.at(-1) === '400', { what: 'the last message' });
    assert.equal(b.bus.unrepaired, 1);
    const got = b.seen.slice(1).map(Number);
    assert.ok(got.length >= 100 && got.length < 400, `${got.length} repaired`);
    assert.deepEqual(
      got,
      Array.from({ length: got.length }, (_, i) => 401 - got.length + i),
    );
  });
});
