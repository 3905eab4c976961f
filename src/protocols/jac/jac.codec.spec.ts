import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encodeJac, JAC_INVALID, jacCodec, MAX_PUBLISH_IDS, parseJacFrame, validateJacMessage } from './jac.codec.js';
import { MAX_JSON_DEPTH } from '../../core/ws/json-depth.js';
import { JAC_MESSAGES as M, MAX_ERROR_ENTRIES, type JacErrorEntry } from './jac.errors.js';

const frame = (value: unknown): Buffer => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value));

describe('jac codec', () => {
  it('routes each valid type with its fields', () => {
    assert.deepEqual(parseJacFrame(frame({ type: 'connection' }), false), { type: 'connection' });
    assert.deepEqual(parseJacFrame(frame({ type: 'user', root_ids: ['a', 'b'], data: { x: 1 } }), false), {
      type: 'user',
      ids: ['a', 'b'],
      data: { x: 1 },
    });
    assert.deepEqual(parseJacFrame(frame({ type: 'channel', channel_ids: ['c'], data: {} }), false), {
      type: 'channel',
      ids: ['c'],
      data: {},
    });
    assert.deepEqual(parseJacFrame(frame({ type: 'client', client_ids: ['1:ab'], data: { y: [1] } }), false), {
      type: 'client',
      ids: ['1:ab'],
      data: { y: [1] },
    });
    assert.deepEqual(parseJacFrame(frame({ type: 'change_user', token: 'Bearer t' }), false), {
      type: 'change_user',
      token: 'Bearer t',
    });
    assert.deepEqual(parseJacFrame(frame({ type: 'change_user' }), false), { type: 'change_user', token: null });
  });

  it('fills walker defaults as the original model did', () => {
    assert.deepEqual(parseJacFrame(frame({ type: 'walker', walker: 'w' }), false), {
      type: 'walker',
      walker: 'w',
      response: false,
      context: {},
      node: null,
    });
    assert.deepEqual(
      parseJacFrame(frame({ type: 'walker', walker: 'w', response: true, context: { a: 1 }, node: 'n::1' }), false),
      { type: 'walker', walker: 'w', response: true, context: { a: 1 }, node: 'n::1' },
    );
  });

  it('ignores unknown extra fields', () => {
    assert.deepEqual(parseJacFrame(frame({ type: 'connection', extra: 1 }), false), { type: 'connection' });
  });

  it('reports frames that are not JSON objects', () => {
    assert.deepEqual(parseJacFrame(frame('{nope'), false), [{ loc: [], msg: M.invalidJson }]);
    assert.deepEqual(parseJacFrame(frame({ type: 'connection' }), true), [{ loc: [], msg: M.binaryFrame }]);
    for (const body of ['[]', '1', 'null', '"s"']) {
      assert.deepEqual(parseJacFrame(frame(body), false), [{ loc: [], msg: M.notAnObject }], body);
    }
  });

  it('refuses JSON nested deeper than MAX_JSON_DEPTH (found by the fuzz suite: relaying it overflowed the stack)', () => {
    const deepData = (depth: number): Buffer =>
      frame(`{"type":"user","root_ids":["a"],"data":${'{"a":'.repeat(depth - 1)}1${'}'.repeat(depth - 1)}}`);
    assert.equal(Array.isArray(parseJacFrame(deepData(MAX_JSON_DEPTH), false)), false);
    assert.deepEqual(parseJacFrame(deepData(MAX_JSON_DEPTH + 1), false), [{ loc: [], msg: M.tooDeep }]);
    assert.deepEqual(parseJacFrame(frame('['.repeat(100_000) + ']'.repeat(100_000)), false), [
      { loc: [], msg: M.tooDeep },
    ]);
    assert.equal(M.tooDeep, 'Input should be nested at most 512 levels deep');
  });

  it('reports a missing, unknown or non-string type', () => {
    assert.deepEqual(validateJacMessage({}), [{ loc: ['type'], msg: M.missingTag }]);
    assert.deepEqual(validateJacMessage({ type: 'nope' }), [{ loc: ['type'], msg: M.unknownTag }]);
    assert.deepEqual(validateJacMessage({ type: 3 }), [{ loc: ['type'], msg: M.unknownTag }]);
  });

  it('reports every bad field of a publish, each with its location', () => {
    assert.deepEqual(validateJacMessage({ type: 'user' }), [
      { loc: ['user', 'root_ids'], msg: M.required },
      { loc: ['user', 'data'], msg: M.required },
    ]);
    assert.deepEqual(validateJacMessage({ type: 'channel', channel_ids: [], data: [] }), [
      { loc: ['channel', 'channel_ids'], msg: M.emptyList },
      { loc: ['channel', 'data'], msg: M.dict },
    ]);
    assert.deepEqual(validateJacMessage({ type: 'client', client_ids: 'x', data: {} }), [
      { loc: ['client', 'client_ids'], msg: M.list },
    ]);
    assert.deepEqual(validateJacMessage({ type: 'user', root_ids: ['a', 2, null], data: {} }), [
      { loc: ['user', 'root_ids', 1], msg: M.string },
      { loc: ['user', 'root_ids', 2], msg: M.string },
    ]);
  });

  it('reports at most MAX_ERROR_ENTRIES entries, the last saying the rest were omitted', () => {
    assert.equal(MAX_ERROR_ENTRIES, 16);
    const bad = (n: number): number[] => Array.from({ length: n }, () => 1);
    const itemErrors = (n: number): JacErrorEntry[] =>
      Array.from({ length: n }, (_, i) => ({ loc: ['user', 'root_ids', i], msg: M.string }));
    // Exactly at the cap: every problem, no marker.
    assert.deepEqual(validateJacMessage({ type: 'user', root_ids: bad(16), data: {} }), itemErrors(16));
    assert.deepEqual(validateJacMessage({ type: 'user', root_ids: bad(15), data: 1 }), [
      ...itemErrors(15),
      { loc: ['user', 'data'], msg: M.dict },
    ]);
    // One past it: the first 15 and the marker, in the documented {loc, msg} shape.
    const marker = { loc: ['user'], msg: 'Too many errors; the first 15 are reported, the rest omitted' };
    assert.deepEqual(validateJacMessage({ type: 'user', root_ids: bad(17), data: {} }), [...itemErrors(15), marker]);
    assert.deepEqual(validateJacMessage({ type: 'user', root_ids: bad(16), data: 1 }), [...itemErrors(15), marker]);
    const many = validateJacMessage({ type: 'channel', channel_ids: bad(MAX_PUBLISH_IDS), data: [] });
    assert.ok(Array.isArray(many));
    assert.equal(many.length, 16);
    assert.deepEqual(many.at(-1), { loc: ['channel'], msg: M.truncated });
    assert.deepEqual(many[14], { loc: ['channel', 'channel_ids', 14], msg: M.string });
  });

  it('stops looking at ids once the reply is full', () => {
    let reads = 0;
    const items = new Proxy(
      Array.from({ length: MAX_PUBLISH_IDS }, () => 0),
      {
        get(target, key, receiver) {
          if (typeof key === 'string' && /^\d+$/.test(key)) reads++;
          return Reflect.get(target, key, receiver) as unknown;
        },
      },
    );
    const errors = validateJacMessage({ type: 'user', root_ids: items, data: {} });
    assert.ok(Array.isArray(errors) && errors.length === MAX_ERROR_ENTRIES);
    assert.equal(reads, MAX_ERROR_ENTRIES + 1);
  });

  it('takes up to MAX_PUBLISH_IDS ids in one publish and refuses a longer list whole', () => {
    assert.equal(MAX_PUBLISH_IDS, 10_000);
    const names = (n: number): string[] => Array.from({ length: n }, (_, i) => `n::${i}`);
    const fits = validateJacMessage({ type: 'client', client_ids: names(MAX_PUBLISH_IDS), data: {} });
    assert.ok(!Array.isArray(fits) && fits.type === 'client' && fits.ids.length === MAX_PUBLISH_IDS);
    assert.deepEqual(validateJacMessage({ type: 'client', client_ids: names(MAX_PUBLISH_IDS + 1), data: {} }), [
      { loc: ['client', 'client_ids'], msg: 'List should have at most 10000 items after validation, not 10001' },
    ]);
    // Its items are not looked at: one entry for the list, whatever it holds, then the other fields.
    assert.deepEqual(validateJacMessage({ type: 'user', root_ids: Array(20_000).fill(1), data: 'x' }), [
      { loc: ['user', 'root_ids'], msg: M.listTooLong(MAX_PUBLISH_IDS, 20_000) },
      { loc: ['user', 'data'], msg: M.dict },
    ]);
  });

  it('answers a 1 MiB frame of bad ids with a reply of a few dozen bytes', () => {
    const head = '{"type":"user","root_ids":[';
    const tail = '],"data":{}}';
    const count = Math.floor((1024 * 1024 - head.length - tail.length + 1) / 2);
    const raw = Buffer.from(head + Array(count).fill('1').join(',') + tail);
    assert.ok(raw.length <= 1024 * 1024 && raw.length > 1024 * 1024 - 4);
    const errors = parseJacFrame(raw, false);
    assert.deepEqual(errors, [{ loc: ['user', 'root_ids'], msg: M.listTooLong(MAX_PUBLISH_IDS, count) }]);
    assert.ok(encodeJac({ error: errors }).length < 200);
    // Within the id bound the cap keeps the reply under 2 KiB.
    const capped = parseJacFrame(frame({ type: 'channel', channel_ids: Array(MAX_PUBLISH_IDS).fill(null) }), false);
    assert.ok(encodeJac({ error: capped }).length < 2048);
  });

  it('reports bad walker and change_user fields', () => {
    assert.deepEqual(validateJacMessage({ type: 'walker' }), [{ loc: ['walker', 'walker'], msg: M.required }]);
    assert.deepEqual(validateJacMessage({ type: 'walker', walker: 1, response: 'yes', context: [], node: 5 }), [
      { loc: ['walker', 'walker'], msg: M.string },
      { loc: ['walker', 'response'], msg: M.bool },
      { loc: ['walker', 'context'], msg: M.dict },
      { loc: ['walker', 'node'], msg: M.string },
    ]);
    assert.deepEqual(validateJacMessage({ type: 'change_user', token: 42 }), [
      { loc: ['change_user', 'token'], msg: M.string },
    ]);
  });

  it('decodes to routed events, invalid input to the error event', () => {
    assert.deepEqual(jacCodec.decode(frame({ type: 'connection' }), false), {
      event: 'connection',
      data: { type: 'connection' },
    });
    assert.deepEqual(jacCodec.decode(frame('x'), false), {
      event: JAC_INVALID,
      data: [{ loc: [], msg: M.invalidJson }],
    });
  });

  it('encodes compact JSON text', () => {
    const encoded = encodeJac({ type: 'connection', data: { a: 'é', b: [1, 2] } });
    assert.ok(Buffer.isBuffer(encoded));
    assert.equal(encoded.toString('utf8'), '{"type":"connection","data":{"a":"é","b":[1,2]}}');
  });
});
