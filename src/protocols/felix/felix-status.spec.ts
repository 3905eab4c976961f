import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ackData, normaliseShard, parseStoredStatus, processFigures, type StoredStatus } from './felix-status.js';

const own = { memoryUsageMb: 12.34, uptimeMs: 5000 };

describe('felix status', () => {
  it('answers from the gateway process when nothing was reported', () => {
    assert.deepEqual(ackData(null, 1000, own), {
      receivedAt: 1000,
      shards: [],
      guildsCount: 0,
      memoryUsage: 12.34,
      uptime: 5000,
    });
  });

  it('reports the stored status, uptime advanced by the time since the report', () => {
    const status: StoredStatus = {
      shards: [{ id: 0, ping: 40 }],
      guildsCount: 7,
      memoryUsage: 99.5,
      uptime: 60_000,
      reportedAt: 10_000,
    };
    assert.deepEqual(ackData(status, 12_500, own), {
      receivedAt: 12_500,
      shards: [{ id: 0, ping: 40 }],
      guildsCount: 7,
      memoryUsage: 99.5,
      uptime: 62_500,
    });
  });

  it('fills unreported fields from the process and never runs uptime backwards', () => {
    const status: StoredStatus = { shards: [], guildsCount: 1, reportedAt: 10_000 };
    const ack = ackData(status, 9_000, own);
    assert.equal(ack.memoryUsage, 12.34);
    assert.equal(ack.uptime, 5000);
    assert.equal(ackData({ ...status, uptime: 100 }, 9_000, own).uptime, 100);
  });

  it('gives every shard a ping: kept, renamed from latency, or null', () => {
    assert.deepEqual(normaliseShard({ id: 0, ping: 12 }), { id: 0, ping: 12 });
    assert.deepEqual(normaliseShard({ id: 0, ping: null }), { id: 0, ping: null });
    assert.deepEqual(normaliseShard({ id: 1, latency: 30, status: 'ready' }), { id: 1, status: 'ready', ping: 30 });
    assert.deepEqual(normaliseShard({ id: 2 }), { id: 2, ping: null });
    assert.deepEqual(normaliseShard({ id: 3, latency: null }), { id: 3, ping: null });
  });

  it('measures the process: heap in MB with two decimals, uptime in ms', () => {
    const figures = processFigures();
    assert.ok(figures.memoryUsageMb > 0);
    // The heap the process reports itself, give or take what was allocated in between.
    const heapMb = process.memoryUsage().heapUsed / 1024 / 1024;
    assert.ok(Math.abs(figures.memoryUsageMb - heapMb) < 8, `${figures.memoryUsageMb} MB against ${heapMb} MB`);
    assert.equal(Math.round(figures.memoryUsageMb * 100) / 100, figures.memoryUsageMb);
    assert.ok(Number.isInteger(figures.uptimeMs) && figures.uptimeMs >= 0);
  });
});

describe('felix stored status', () => {
  const status: StoredStatus = { shards: [{ id: 0, ping: 1 }], guildsCount: 2, reportedAt: 3 };

  it('reads back what was stored, optional fields included', () => {
    assert.deepEqual(parseStoredStatus(JSON.stringify(status)), status);
    const full = { ...status, memoryUsage: 4.5, uptime: 6 };
    assert.deepEqual(parseStoredStatus(JSON.stringify(full)), full);
  });

  it('refuses anything else instead of serialising it into heartbeats', () => {
    for (const text of [
      'not json',
      'null',
      '[]',
      '{}',
      JSON.stringify({ ...status, shards: 'x' }),
      JSON.stringify({ ...status, shards: [1] }),
      JSON.stringify({ ...status, shards: [[]] }),
      JSON.stringify({ ...status, guildsCount: '2' }),
      JSON.stringify({ ...status, reportedAt: null }),
      JSON.stringify({ ...status, memoryUsage: 'a lot' }),
      JSON.stringify({ ...status, uptime: [] }),
      '{"shards":[],"guildsCount":1e999,"reportedAt":1}',
    ]) {
      assert.equal(parseStoredStatus(text), null, text);
    }
  });
});
