import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { feedEvent, isHousekeeping, PAYLOAD_PREVIEW_BYTES, TARGET_PREVIEW_IDS } from './feed-event.js';

const AT = new Date('2026-01-02T03:04:05.678Z');

describe('feed events', () => {
  it('shows a short text payload whole, with its target', () => {
    const payload = Buffer.from('{"type":"notify","data":{"x":1}}');
    assert.deepEqual(feedEvent({ topic: 'jac', target: { kind: 'user', ids: ['n::1'] }, payload }, true, 7, AT), {
      seq: 7,
      at: '2026-01-02T03:04:05.678Z',
      topic: 'jac',
      target: { kind: 'user', ids: ['n::1'], count: 1 },
      size: payload.length,
      preview: payload.toString(),
      encoding: 'text',
      truncated: false,
      local: true,
    });
  });

  it('cuts a long payload to its first bytes and a long target to its first ids', () => {
    const payload = Buffer.from('x'.repeat(5000));
    const ids = Array.from({ length: 500 }, (_, i) => `c${i}`);
    const event = feedEvent({ topic: 'jac', target: { kind: 'channel', ids }, payload }, false, 1, AT);
    assert.equal(event.preview, 'x'.repeat(PAYLOAD_PREVIEW_BYTES));
    assert.equal(event.truncated, true);
    assert.equal(event.size, 5000);
    assert.deepEqual(event.target, { kind: 'channel', ids: ids.slice(0, TARGET_PREVIEW_IDS), count: 500 });
    assert.equal(event.local, false);
  });

  it('shows binary payloads as hex, and a target of everyone without ids', () => {
    const event = feedEvent(
      { topic: 'hatsu', target: { kind: 'all' }, payload: Buffer.from([0x78, 0x9c, 0x00]) },
      true,
      2,
    );
    assert.equal(event.encoding, 'hex');
    assert.equal(event.preview, '789c00');
    assert.deepEqual(event.target, { kind: 'all' });
  });

  it('leaves out the cluster housekeeping topics', () => {
    for (const topic of ['control', 'control.revoke', 'admin.instance']) assert.equal(isHousekeeping(topic), true);
    for (const topic of ['jac', 'fates', 'hatsu.presence', 'felix', 'controller'])
      assert.equal(isHousekeeping(topic), false);
  });
});
