import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InboundBudget, inboundRates } from './inbound-budget.js';

const RATES = { bytesPerSec: 1000, bytesBurst: 2000, framesPerSec: 10, framesBurst: 3 };

describe('inbound budget', () => {
  it('lets a burst through, then refuses until the buckets refill', () => {
    const budget = new InboundBudget(RATES, 0);
    assert.equal(budget.take(1500, 0), true);
    assert.equal(budget.take(600, 0), false);
    assert.equal(budget.take(500, 0), true);
    // 100 ms later: 100 bytes and one frame are back.
    assert.equal(budget.take(200, 100), false);
    assert.equal(budget.take(100, 100), true);
  });

  it('counts frames as well as bytes, and never refills past the burst', () => {
    const budget = new InboundBudget(RATES, 0);
    for (let i = 0; i < 3; i++) assert.equal(budget.take(1, 0), true);
    assert.equal(budget.take(1, 0), false);
    assert.equal(budget.take(1, 10_000), true);
    assert.equal(budget.take(1, 10_000), true);
    assert.equal(budget.take(1, 10_000), true);
    assert.equal(budget.take(1, 10_000), false);
  });

  it('is off when either rate is 0, and its byte burst covers the largest frame', () => {
    const config = {
      WS_INBOUND_BYTES_PER_SEC: 1000,
      WS_INBOUND_BYTES_BURST: 1024,
      WS_INBOUND_FRAMES_PER_SEC: 10,
      WS_INBOUND_FRAMES_BURST: 20,
    };
    assert.equal(inboundRates({ ...config, WS_INBOUND_BYTES_PER_SEC: 0 }, 4096), null);
    assert.equal(inboundRates({ ...config, WS_INBOUND_FRAMES_PER_SEC: 0 }, 4096), null);
    assert.equal(inboundRates(config, 4096)?.bytesBurst, 4096);
    assert.equal(inboundRates(config, 512)?.bytesBurst, 1024);
  });
});
