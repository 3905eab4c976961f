import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { jsonDeeperThan, MAX_JSON_DEPTH } from './json-depth.js';

const nested = (depth: number, open = '[', close = ']'): unknown =>
  JSON.parse(open.repeat(depth) + (open === '[' ? '' : '1') + close.repeat(depth));

describe('jsonDeeperThan', () => {
  it('counts levels of arrays and objects; scalars are 0 levels', () => {
    assert.equal(jsonDeeperThan('text', 0), false);
    assert.equal(jsonDeeperThan(null, 0), false);
    assert.equal(jsonDeeperThan([], 0), true);
    assert.equal(jsonDeeperThan([], 1), false);
    assert.equal(jsonDeeperThan({ a: [{ b: 1 }] }, 3), false);
    assert.equal(jsonDeeperThan({ a: [{ b: 1 }] }, 2), true);
    assert.equal(jsonDeeperThan({ a: 1, b: { c: [1, 2, [3]] } }, 3), true);
  });

  it('allows exactly MAX_JSON_DEPTH levels and refuses one more', () => {
    assert.equal(jsonDeeperThan(nested(MAX_JSON_DEPTH)), false);
    assert.equal(jsonDeeperThan(nested(MAX_JSON_DEPTH + 1)), true);
    assert.equal(jsonDeeperThan(nested(MAX_JSON_DEPTH, '{"a":', '}')), false);
    assert.equal(jsonDeeperThan(nested(MAX_JSON_DEPTH + 1, '{"a":', '}')), true);
  });

  it('walks values nested far past the stack without overflowing', () => {
    assert.equal(jsonDeeperThan(nested(200_000)), true);
    assert.equal(jsonDeeperThan(nested(200_000, '{"a":', '}')), true);
  });

  it('sees keys JSON.parse keeps as own properties, __proto__ included', () => {
    const value: unknown = JSON.parse(`{"__proto__":${'['.repeat(10)}${']'.repeat(10)}}`);
    assert.equal(jsonDeeperThan(value, 10), true);
    assert.equal(jsonDeeperThan(value, 11), false);
  });
});
