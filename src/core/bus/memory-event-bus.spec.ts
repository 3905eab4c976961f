import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { BusMessage } from './event-bus.js';
import { MemoryEventBus } from './memory-event-bus.js';

function message(topic: string, text: string): BusMessage {
  return { topic, target: { kind: 'all' }, payload: Buffer.from(text) };
}

describe('MemoryEventBus', () => {
  it('delivers to local subscribers synchronously, before publish returns', () => {
    const bus = new MemoryEventBus();
    const seen: string[] = [];
    bus.subscribe('jac', (m) => seen.push(m.payload.toString()));
    const done = bus.publish(message('jac', 'one'));
    assert.deepEqual(seen, ['one']);
    assert.ok(done instanceof Promise);
    return done;
  });

  it('delivers the same message object, bytes and target untouched', async () => {
    const bus = new MemoryEventBus();
    const sent: BusMessage = {
      topic: 'jac',
      target: { kind: 'user', ids: ['n::a'] },
      payload: Buffer.from([0xff, 0x00, 0xfe]),
    };
    let got: BusMessage | undefined;
    bus.subscribe('jac', (m) => (got = m));
    await bus.publish(sent);
    assert.deepEqual(got?.target, { kind: 'user', ids: ['n::a'] });
    assert.ok(got?.payload.equals(Buffer.from([0xff, 0x00, 0xfe])));
  });

  it('delivers only to subscribers of the topic, each once', async () => {
    const bus = new MemoryEventBus();
    const seen: string[] = [];
    bus.subscribe('jac', (m) => seen.push(`a:${m.payload.toString()}`));
    bus.subscribe('jac', (m) => seen.push(`b:${m.payload.toString()}`));
    bus.subscribe('fates', (m) => seen.push(`f:${m.payload.toString()}`));
    await bus.publish(message('jac', 'x'));
    await bus.publish(message('hatsu', 'nobody'));
    assert.deepEqual(seen.sort(), ['a:x', 'b:x']);
  });

  it('stops delivering after unsubscribe, leaving other subscribers in place', async () => {
    const bus = new MemoryEventBus();
    const first: string[] = [];
    const second: string[] = [];
    const off = bus.subscribe('jac', (m) => first.push(m.payload.toString()));
    bus.subscribe('jac', (m) => second.push(m.payload.toString()));
    await bus.publish(message('jac', '1'));
    off();
    off(); // idempotent
    await bus.publish(message('jac', '2'));
    assert.deepEqual(first, ['1']);
    assert.deepEqual(second, ['1', '2']);
  });

  it('keeps delivering to the others when one subscriber throws', async () => {
    const bus = new MemoryEventBus();
    const seen: string[] = [];
    bus.subscribe('jac', () => {
      throw new Error('subscriber bug');
    });
    bus.subscribe('jac', (m) => seen.push(m.payload.toString()));
    await bus.publish(message('jac', 'still delivered'));
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
    bus.subscribe('jac', (m) => seen.push(`sub:${m.payload.toString()}`));
    const stop = bus.tap((m, local) => seen.push(`tap:${m.topic}:${m.payload.toString()}:${String(local)}`));
    await bus.publish(message('jac', 'one'));
    await bus.publish(message('nobody-listens', 'two'));
    stop();
    await bus.publish(message('jac', 'three'));
    assert.deepEqual(seen, ['sub:one', 'tap:jac:one:true', 'tap:nobody-listens:two:true', 'sub:three']);
  });
});
