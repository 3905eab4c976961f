import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { Engine } from '../../src/core/engine/engine.js';
import { startApp, type TestApp } from '../helpers/app.js';
import { admin, waitReady } from '../helpers/http.js';
import { snowflake } from '../helpers/ids.js';
import { connectJac, issueToken } from '../helpers/jac-client.js';
import { metricValue, scrapeMetrics } from '../helpers/prom-text.js';
import { uniquePrefix } from '../helpers/redis.js';
import { unhandledRejections } from '../helpers/rejections.js';
import { openFaultyTopology, topologyLabel, topologySuite, TOPOLOGIES, type FaultyRedis } from '../helpers/topology.js';
import type { WsTestClient } from '../helpers/ws-client.js';
import { figure, memory, mib, MiB } from './support.js';

/** The flood that grew the process without bound: 4,000 publishes of 1 KiB a second, on one socket. */
const RATE = 4000;
const FRAME_BYTES = 1024;
/** Longer than the command timeout (2 s), so the stall is seen and the connection reset at least once. */
const FLOOD_MS = 5000;
/** The bound under test, smaller than the default so that the flood reaches it before the time-out. */
const PENDING_BYTES = 4 * MiB;
/**
 * What the process may hold above its baseline while Redis hangs: the pending arguments
 * twice (the queued command and the socket's copy), ioredis' per-command objects up to the
 * command bound, and the slack of a measurement.
 */
const GROWTH_BOUND = 2 * PENDING_BYTES + 12 * MiB;

for (const topology of TOPOLOGIES) {
  describe(`a steady publisher while Redis hangs, on ${topologyLabel(topology)}`, await topologySuite(topology), () => {
    const rejections = unhandledRejections();
    const prefix = uniquePrefix();
    let redis: FaultyRedis;
    let app: TestApp;
    let publisher: WsTestClient;
    let paused = false;

    before(async () => {
      redis = await openFaultyTopology(topology);
      app = await startApp({
        ...redis.env(prefix),
        REDIS_MAX_PENDING_BYTES: String(PENDING_BYTES),
        // The flood is the point here, not the inbound budget that would close the socket first.
        WS_INBOUND_BYTES_PER_SEC: String(64 * MiB),
        WS_INBOUND_BYTES_BURST: String(64 * MiB),
        WS_INBOUND_FRAMES_PER_SEC: String(100 * RATE),
        WS_INBOUND_FRAMES_BURST: String(100 * RATE),
      });
      await waitReady(app, 200, 15_000);
      publisher = (await connectJac(app, { token: await issueToken(app) })).ws;
    });

    after(async () => {
      if (paused) redis.resume();
      await publisher?.close();
      await app?.close();
      await redis?.deleteKeys(prefix);
      await redis?.close();
    });

    it('holds memory to its bound, refuses and counts the excess, and recovers by itself', async () => {
      const engine = app.app.get(Engine);
      // Published to a channel nobody listens to on this instance: only the bus carries it.
      const channel = `hang-${snowflake()}`;
      const data = 'x'.repeat(FRAME_BYTES);
      const baseline = memory();
      redis.pause();
      paused = true;
      const started = performance.now();
      let sent = 0;
      while (performance.now() - started < FLOOD_MS) {
        const due = Math.floor(((performance.now() - started) / 1000) * RATE);
        for (; sent < due; sent++) publisher.send({ type: 'channel', channel_ids: [channel], data: { n: sent, data } });
        await delay(10);
      }
      const during = memory();
      const pending = engine.redisPending();
      assert.ok(pending, 'the Redis engine reports what waits for it');
      const growth = during.used - baseline.used;
      figure('redis-hang', `${topology}_growth_while_hung`, growth / MiB, 'MiB');
      figure('redis-hang', `${topology}_published_while_hung`, sent);
      assert.ok(growth < GROWTH_BOUND, `grew ${mib(growth)} MiB while Redis hung (bound ${mib(GROWTH_BOUND)} MiB)`);
      assert.ok(pending.bytes <= PENDING_BYTES, `${pending.bytes} bytes pending`);
      assert.ok(pending.refused > 0, 'the bound refused the excess');
      assert.ok(pending.resets > 0, 'the stall was seen and the connection reset');
      const metrics = await scrapeMetrics(app);
      assert.ok(metricValue(metrics, 'gatehouse_redis_refused_commands_total') > 0);
      assert.ok(metricValue(metrics, 'gatehouse_redis_stall_resets_total') > 0);
      // The publisher was never closed for it: jac publishes reach the other instances best-effort.
      assert.equal(publisher.isOpen, true);

      redis.resume();
      paused = false;
      const resumed = performance.now();
      await waitReady(app, 200, 20_000);
      figure('redis-hang', `${topology}_ready_after_resume`, performance.now() - resumed, 'ms');
      const listener = (await connectJac(app, { channel })).ws;
      try {
        const notify = await admin(app, 'POST', '/admin/jac/notify', { channel_ids: [channel], data: { back: true } });
        assert.equal(notify.status, 202, notify.text);
        assert.deepEqual(await listener.next(), { back: true });
      } finally {
        await listener.close();
      }
      assert.ok((engine.redisPending()?.commands ?? 0) < 100);
    });

    it('saw no unhandled promise rejection', () => rejections.assertNone());
  });
}
