import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseSummary, type InstanceSummary } from './instance-directory.js';

const SUMMARY: InstanceSummary = {
  id: '4242-9f0c1a2b3c4d',
  engine: 'redis',
  version: '0.1.0',
  redis: { command: true, subscriber: true, bus: false },
  available: false,
  started_at: '2026-01-02T03:04:05.000Z',
  uptime_s: 12,
  connections: { total: 3, by_protocol: { jac: 2, felix: 1 }, opened: 5, closed: 2 },
  watching: true,
};

const encode = (value: unknown): Buffer => Buffer.from(JSON.stringify(value));

describe('instance summaries on the bus', () => {
  it('reads back what an instance publishes', () => {
    assert.deepEqual(parseSummary(encode(SUMMARY)), SUMMARY);
    assert.deepEqual(parseSummary(encode({ ...SUMMARY, redis: null })), { ...SUMMARY, redis: null });
  });

  it('ignores anything else: garbage, another shape, wrong types', () => {
    for (const payload of [
      Buffer.from('not json'),
      encode(null),
      encode([SUMMARY]),
      encode({ ...SUMMARY, id: '' }),
      encode({ ...SUMMARY, id: 'x'.repeat(129) }),
      encode({ ...SUMMARY, uptime_s: '12' }),
      encode({ ...SUMMARY, redis: { command: 'yes' } }),
      encode({ ...SUMMARY, connections: { total: 1, by_protocol: { jac: '1' }, opened: 1, closed: 0 } }),
      encode({ ...SUMMARY, connections: { total: 1, by_protocol: {} } }),
      encode({ ...SUMMARY, watching: 1 }),
    ]) {
      assert.equal(parseSummary(payload), null, payload.toString().slice(0, 80));
    }
  });
});
