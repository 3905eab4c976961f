import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { addToSet, deleteFromSet } from './set-map.js';

describe('set-map', () => {
  it('files values in sets per key, and drops a key with its last value', () => {
    const map = new Map<string, Set<number>>();
    assert.equal(addToSet(map, 'a', 1), 1);
    assert.equal(addToSet(map, 'a', 2), 2);
    assert.equal(addToSet(map, 'a', 2), 2);
    assert.equal(addToSet(map, 'b', 3), 1);
    assert.deepEqual([...(map.get('a') ?? [])], [1, 2]);
    assert.equal(deleteFromSet(map, 'a', 1), 1);
    assert.equal(deleteFromSet(map, 'a', 2), 0);
    assert.equal(map.has('a'), false);
    assert.equal(deleteFromSet(map, 'missing', 1), 0);
    assert.equal(deleteFromSet(map, 'b', 99), 1);
    assert.deepEqual([...map.keys()], ['b']);
  });
});
