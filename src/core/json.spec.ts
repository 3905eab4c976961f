import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encodeJson, isJsonObject } from './json.js';

describe('json', () => {
  it('takes only objects for JSON objects: not null, arrays or primitives', () => {
    assert.equal(isJsonObject({}), true);
    assert.equal(isJsonObject({ a: 1 }), true);
    assert.equal(isJsonObject(Object.create(null)), true);
    for (const value of [null, undefined, [], [1], 'x', 1, true]) assert.equal(isJsonObject(value), false);
  });

  it('encodes compact UTF-8 JSON, byte for byte what JSON.stringify writes', () => {
    const message = { t: 'HELLO', s: 'é✓', d: null, n: [1, 2] };
    const bytes = encodeJson(message);
    assert.ok(Buffer.isBuffer(bytes));
    assert.equal(bytes.toString('utf8'), '{"t":"HELLO","s":"é✓","d":null,"n":[1,2]}');
    assert.deepEqual(bytes, Buffer.from(JSON.stringify(message)));
  });
});
