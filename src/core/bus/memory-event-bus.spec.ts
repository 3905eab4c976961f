import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bytesTopic, jsonTopic } from './bus-topic.js';
import type { Target } from './event-bus.js';
import { MemoryEventBus } from './memory-event-bus.js';

const ALL: Target = { kind: 'all' };
const text = (value: string): Buffer => Buffer.from(value);

describe('MemoryEventBus', () => {
  it('delivers to local subscribers synchronously, before publish returns', () => {
    const bus = new MemoryEventBus();
    const seen: string[] = [];
    bus.subscribe(bytesTopic('jac'), (payload) => seen.push(payload.toString()));
    const done = bus.publish(bytesTopic('jac'), ALL, text('one'));
    assert.deepEqual(seen, ['one']);
    assert.ok(done instanceof Promise);
    return done;
  });

  it('delivers the same bytes and target untouched', async () => {
    const bus = new MemoryEventBus();
    let got: { payload: Buffer; target: Target } | undefined;
    bus.subscribe(bytesTopic('jac'), (payload, target) => (got = { payload, target }));
    await bus.publish(bytesTopic('jac'), { kind: 'user', ids: ['n::a'] }, Buffer.from([0xff, 0x00, 0xfe]));
    assert.deepEqual(got?.target, { kind: 'user', ids: ['n::a'] });
    assert.ok(got?.payload.equals(Buffer.from([0xff, 0x00, 0xfe])));
  });

  it('delivers only to subscribers of the topic, each once', async () => {
    const bus = new MemoryEventBus();
    const seen: string[] = [];
    bus.subscribe(bytesTopic('jac'), (p) => seen.push(`a:${p.toString()}`));
    bus.subscribe(bytesTopic('jac'), (p) => seen.push(`b:${p.toString()}`));
    bus.subscribe(bytesTopic('fates'), (p) => seen.push(`f:${p.toString()}`));
    await bus.publish(bytesTopic('jac'), ALL, text('x'));
    await bus.publish(bytesTopic('hatsu'), ALL, text('nobody'));
    assert.deepEqual(seen.sort(), ['a:x', 'b:x']);
  });

  it('stops delivering after unsubscribe, leaving other subscribers in place', async () => {
    const bus = new MemoryEventBus();
    const first: string[] = [];
    const second: string[] = [];
    const off = bus.subscribe(bytesTopic('jac'), (p) => first.push(p.toString()));
    bus.subscribe(bytesTopic('jac'), (p) => second.push(p.toString()));
    await bus.publish(bytesTopic('jac'), ALL, text('1'));
    off();
    off(); // idempotent
    await bus.publish(bytesTopic('jac'), ALL, text('2'));
    assert.deepEqual(first, ['1']);
    assert.deepEqual(second, ['1', '2']);
  });

  it('keeps delivering to the others when one subscriber throws', async () => {
    const bus = new MemoryEventBus();
    const seen: string[] = [];
    bus.subscribe(bytesTopic('jac'), () => {
      throw new Error('subscriber bug');
    });
    bus.subscribe(bytesTopic('jac'), (p) => seen.push(p.toString()));
    await bus.publish(bytesTopic('jac'), ALL, text('still delivered'));
    assert.deepEqual(seen, ['still delivered']);
  });

  it('has an instance id of its own', () => {
    const a = new MemoryEventBus();
    const b = new MemoryEventBus();
    assert.match(a.instanceId, /^local-[0-9a-f]{8}$/);
    assert.notEqual(a.instanceId, b.instanceId);
  });

  it('shows every delivered message to a tap, after its subscribers, until the tap is removed', async () => {
    const bus = new MemoryEventBus();
    const seen: string[] = [];
    bus.subscribe(bytesTopic('jac'), (p) => seen.push(`sub:${p.toString()}`));
    const stop = bus.tap((m, local) => seen.push(`tap:${m.topic}:${m.payload.toString()}:${String(local)}`));
    await bus.publish(bytesTopic('jac'), ALL, text('one'));
    await bus.publish(bytesTopic('nobody-listens'), ALL, text('two'));
    stop();
    await bus.publish(bytesTopic('jac'), ALL, text('three'));
    assert.deepEqual(seen, ['sub:one', 'tap:jac:one:true', 'tap:nobody-listens:two:true', 'sub:three']);
  });

  it('hands local subscribers of a JSON topic the value itself, and its encoding to the wire', async () => {
    const bus = new MemoryEventBus();
    const topic = jsonTopic<{ n: number }>('numbers', (v) =>
      typeof (v as { n?: unknown }).n === 'number' ? (v as { n: number }) : null,
    );
    const sent = { n: 7 };
    let got: unknown;
    let wire: string | undefined;
    bus.subscribe(topic, (value) => (got = value));
    bus.tap((m) => (wire = m.payload.toString()));
    await bus.publish(topic, ALL, sent);
    assert.equal(got, sent);
    assert.equal(wire, '{"n":7}');
    assert.deepEqual(topic.parse(text('{"n":8}')), { n: 8 });
    for (const bad of ['{"n":"8"}', 'not json', '']) assert.equal(topic.parse(text(bad)), null, bad);
  });

  it('refuses a second, different definition of one topic name', () => {
    const bus = new MemoryEventBus();
    bus.subscribe(bytesTopic('shared'), () => undefined);
    assert.equal(bytesTopic('shared'), bytesTopic('shared'), 'a bytes topic is one definition per name');
    assert.throws(
      () =>
        bus.subscribe(
          jsonTopic('shared', () => null),
          () => undefined,
        ),
      /bus topic shared is defined twice/,
    );
  });
});
