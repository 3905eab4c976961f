import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  encodeFelix,
  felixCodec,
  gdbUpdate,
  heartbeatAck,
  MAX_LISTENED_IDS,
  parseFelixFrame,
  udbUpdate,
  validateFelixMessage,
  type FelixInbound,
} from './felix.codec.js';

const frame = (value: unknown): Buffer => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value));
const parse = (value: unknown): FelixInbound => parseFelixFrame(frame(value), false);
const ignored = (reason: string): FelixInbound => ({ kind: 'ignored', reason }) as FelixInbound;
const ids = (n: number): string[] => Array.from({ length: n }, (_, i) => String(100_000_000_000_000_000n + BigInt(i)));

describe('felix codec: client frames', () => {
  it('decodes a heartbeat, with or without data', () => {
    assert.deepEqual(parse({ code: 20001 }), { kind: 'heartbeat' });
    assert.deepEqual(parse({ code: 20001, data: { anything: true } }), { kind: 'heartbeat' });
  });

  it('decodes a listeners update into its two lists', () => {
    assert.deepEqual(parse({ code: 20002, data: { users: ['1', '22'], guilds: ['333'] } }), {
      kind: 'listeners',
      users: ['1', '22'],
      guilds: ['333'],
    });
    assert.deepEqual(parse({ code: 20002, data: { users: [], guilds: [] } }), {
      kind: 'listeners',
      users: [],
      guilds: [],
    });
  });

  it('deduplicates listened ids and ignores extra fields', () => {
    assert.deepEqual(parse({ code: 20002, data: { users: ['5', '5'], guilds: ['6'], extra: 1 }, more: 2 }), {
      kind: 'listeners',
      users: ['5'],
      guilds: ['6'],
    });
  });

  it('ignores what is not a JSON object', () => {
    assert.deepEqual(parse('{nope'), ignored('invalid-json'));
    assert.deepEqual(parse(''), ignored('invalid-json'));
    for (const body of ['null', '[]', '1', '"s"', 'true'])
      assert.deepEqual(parse(body), ignored('not-an-object'), body);
  });

  it('ignores binary frames, even ones holding valid JSON', () => {
    assert.deepEqual(parseFelixFrame(frame({ code: 20001 }), true), ignored('binary-frame'));
  });

  it('ignores a missing or falsy code, as the original did', () => {
    for (const code of [undefined, null, 0, false, '']) {
      assert.deepEqual(validateFelixMessage({ code }), ignored('no-code'), String(code));
    }
    assert.deepEqual(validateFelixMessage({ data: {} }), ignored('no-code'));
  });

  it('ignores unknown codes, and codes that are not numbers (the original compared strictly)', () => {
    for (const code of [20003, 10001, 1, -20001, 20001.5, '20001', [20001], { v: 20001 }, true]) {
      assert.deepEqual(validateFelixMessage({ code }), ignored('unknown-code'), JSON.stringify(code));
    }
  });

  it('ignores a listeners update of the wrong shape', () => {
    const bad: unknown[] = [
      undefined,
      null,
      [],
      'x',
      {},
      { users: [] },
      { guilds: [] },
      { users: 'a', guilds: [] },
      { users: [], guilds: {} },
      { users: [1], guilds: [] },
      { users: [], guilds: [null] },
      { users: ['not-a-snowflake'], guilds: [] },
      { users: [], guilds: ['123456789012345678901'] },
      { users: [''], guilds: [] },
    ];
    for (const data of bad) {
      assert.deepEqual(validateFelixMessage({ code: 20002, data }), ignored('bad-listeners'), JSON.stringify(data));
    }
  });

  it('accepts lists at the bound and ignores longer ones', () => {
    const atBound = validateFelixMessage({ code: 20002, data: { users: ids(MAX_LISTENED_IDS), guilds: ids(1) } });
    assert.equal(atBound.kind, 'listeners');
    assert.deepEqual(
      validateFelixMessage({ code: 20002, data: { users: ids(MAX_LISTENED_IDS + 1), guilds: [] } }),
      ignored('too-many-listeners'),
    );
    assert.deepEqual(
      validateFelixMessage({ code: 20002, data: { users: [], guilds: ids(MAX_LISTENED_IDS + 1) } }),
      ignored('too-many-listeners'),
    );
  });

  it('routes every frame to the handler of its kind', () => {
    assert.deepEqual(felixCodec.decode(frame({ code: 20001 }), false), {
      event: 'heartbeat',
      data: { kind: 'heartbeat' },
    });
    assert.deepEqual(felixCodec.decode(frame({ code: 20002, data: { users: ['1'], guilds: [] } }), false), {
      event: 'listeners',
      data: { kind: 'listeners', users: ['1'], guilds: [] },
    });
    assert.deepEqual(felixCodec.decode(frame('x'), false), {
      event: 'ignored',
      data: { kind: 'ignored', reason: 'invalid-json' },
    });
  });
});

describe('felix codec: server messages', () => {
  it('encodes {code, name, data} as compact JSON text', () => {
    const ack = heartbeatAck({
      receivedAt: 1,
      shards: [{ id: 0, ping: 42 }],
      guildsCount: 2,
      memoryUsage: 3.5,
      uptime: 4,
    });
    assert.equal(
      encodeFelix(ack).toString('utf8'),
      '{"code":10001,"name":"Heartbeat ACK","data":{"receivedAt":1,"shards":[{"id":0,"ping":42}],"guildsCount":2,"memoryUsage":3.5,"uptime":4}}',
    );
    assert.equal(
      encodeFelix(gdbUpdate('10', { id: '10', prefix: '!' })).toString('utf8'),
      '{"code":10002,"name":"GDB Update","data":{"guildID":"10","guildData":{"id":"10","prefix":"!"}}}',
    );
    assert.equal(
      encodeFelix(udbUpdate('20', { id: '20' })).toString('utf8'),
      '{"code":10003,"name":"UDB Update","data":{"userID":"20","userData":{"id":"20"}}}',
    );
  });

  it('leaves the frame type to the adapter default (text)', () => {
    assert.notEqual(felixCodec.binary, true);
    assert.ok(Buffer.isBuffer(felixCodec.encode(gdbUpdate('1', {}))));
  });
});
