import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeBusMessage, encodeBusMessage } from './bus-wire.js';
import type { BusMessage } from './event-bus.js';

function frame(header: unknown, payload = Buffer.alloc(0)): Buffer {
  const head = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const prefix = Buffer.alloc(4);
  prefix.writeUInt32BE(head.length, 0);
  return Buffer.concat([prefix, head, payload]);
}

describe('bus wire format', () => {
  const binary = Buffer.from([0x00, 0xff, 0xfe, 0x80, 0xc3, 0x28, 0x7b, 0x0a]);
  const messages: BusMessage[] = [
    { topic: 'jac', target: { kind: 'user', ids: ['n::aa', 'n::bb'] }, payload: Buffer.from('{"x":1}') },
    { topic: 'jac', target: { kind: 'channel', ids: ['c1'] }, payload: binary },
    { topic: 'control', target: { kind: 'client', ids: ['1:ff', 'ünïcødé'] }, payload: Buffer.from('close') },
    { topic: 'fates', target: { kind: 'all' }, payload: Buffer.alloc(0) },
    { topic: 'big', target: { kind: 'user', ids: [] }, payload: Buffer.alloc(70_000, 7) },
  ];

  for (const message of messages) {
    it(`round-trips a ${message.target.kind} message on ${message.topic}`, () => {
      const decoded = decodeBusMessage(encodeBusMessage('instance-1', message));
      assert.ok(decoded);
      assert.equal(decoded.origin, 'instance-1');
      assert.equal(decoded.message.topic, message.topic);
      assert.deepEqual(decoded.message.target, message.target);
      assert.ok(decoded.message.payload.equals(message.payload), 'payload bytes unchanged');
    });
  }

  it('keeps non-UTF-8 payload bytes exactly', () => {
    const decoded = decodeBusMessage(encodeBusMessage('o', messages[1] as BusMessage));
    assert.deepEqual([...(decoded?.message.payload ?? [])], [...binary]);
  });

  it('returns null for frames it did not write', () => {
    const malformed: [string, Buffer][] = [
      ['empty', Buffer.alloc(0)],
      ['shorter than the length prefix', Buffer.from([0, 0, 1])],
      ['a header length past the end', Buffer.concat([Buffer.from([0, 0, 0, 50]), Buffer.from('{"o":"x"}')])],
      ['a header that is not JSON', frame('{not json')],
      ['a JSON null header', frame(null)],
      ['a JSON array header', frame(['o', 't', 'all'])],
      ['a JSON string header', frame('"hello"')],
      ['no origin', frame({ t: 'jac', k: 'all' })],
      ['a numeric origin', frame({ o: 5, t: 'jac', k: 'all' })],
      ['no topic', frame({ o: 'x', k: 'all' })],
      ['an unknown target kind', frame({ o: 'x', t: 'jac', k: 'everyone', i: [] })],
      ['ids that are not a list', frame({ o: 'x', t: 'jac', k: 'user', i: 'n::a' })],
      ['ids that are not strings', frame({ o: 'x', t: 'jac', k: 'user', i: [1, 2] })],
      ['no ids for a user target', frame({ o: 'x', t: 'jac', k: 'user' })],
      ['random bytes', Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x00, 0x01])],
    ];
    for (const [what, bytes] of malformed) {
      assert.equal(decodeBusMessage(bytes), null, what);
    }
  });

  it('accepts a header-only frame as an empty payload', () => {
    const decoded = decodeBusMessage(frame({ o: 'x', t: 'jac', k: 'all' }));
    assert.ok(decoded);
    assert.equal(decoded.message.payload.length, 0);
    assert.deepEqual(decoded.message.target, { kind: 'all' });
  });
});
