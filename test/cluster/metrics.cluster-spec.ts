import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startApp, type TestApp } from '../helpers/app.js';
import { waitReady } from '../helpers/http.js';
import { connectJac, issueToken } from '../helpers/jac-client.js';
import { metricValue as value, scrapeMetrics as scrape } from '../helpers/prom-text.js';
import { killSubscribers, RedisProcess, redisSuite, uniquePrefix } from '../helpers/redis.js';
import { waitFor } from '../helpers/wait.js';

describe('metrics of the Redis engine', await redisSuite(), () => {
  let redis: RedisProcess;
  let a: TestApp;
  let b: TestApp;

  before(async () => {
    // A Redis of its own: the test drops its subscriptions and stops it.
    redis = await RedisProcess.start();
    const env = { REDIS_URL: redis.url, REDIS_KEY_PREFIX: uniquePrefix() };
    [a, b] = await Promise.all([startApp(env), startApp(env)]);
    await Promise.all([waitReady(a, 200), waitReady(b, 200)]);
  });

  after(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await redis?.stop();
  });

  it('reports the Redis link, the bus traffic between instances and its delivery latency', async () => {
    const families = await scrape(b);
    for (const connection of ['command', 'subscriber', 'bus']) {
      assert.equal(value(families, 'gatehouse_redis_up', { connection }), 1, connection);
    }
    assert.equal(families.get('gatehouse_info')?.samples[0]?.labels['engine'], 'redis');

    const sub = await connectJac(b, { channel: 'across' });
    const pub = await connectJac(a, { token: await issueToken(a) });
    for (let i = 0; i < 5; i++) pub.ws.send({ type: 'channel', channel_ids: ['across'], data: { i } });
    for (let i = 0; i < 5; i++) assert.deepEqual(await sub.ws.next(), { i });
    await Promise.all([sub.ws.close(), pub.ws.close()]);

    const onA = await scrape(a);
    const onB = await scrape(b);
    assert.ok(value(onA, 'gatehouse_bus_published_total', { topic: 'jac' }) >= 5);
    assert.ok(value(onB, 'gatehouse_bus_received_total', { topic: 'jac' }) >= 5);
    assert.ok(value(onB, 'gatehouse_bus_received_bytes_total', { topic: 'jac' }) > 5 * 8);
    const count = value(onB, 'gatehouse_delivery_latency_seconds_count', { topic: 'jac' });
    assert.ok(count >= 5, `the latency of each received message on B (${count})`);
    const inf = value(onB, 'gatehouse_delivery_latency_seconds_bucket', { topic: 'jac', le: '+Inf' });
    assert.equal(inf, count);
    // Publish to write on one host takes well under 5 s: every observation sits in a finite bucket.
    assert.equal(value(onB, 'gatehouse_delivery_latency_seconds_bucket', { topic: 'jac', le: '5' }), count);
  });

  it('counts a bus gap, and shows a Redis that went away', async () => {
    const rejoins = value(await scrape(b), 'gatehouse_bus_rejoins_total');
    assert.equal(await killSubscribers(redis.url), 2);
    await waitFor(async () => value(await scrape(b), 'gatehouse_bus_rejoins_total') === rejoins + 1, {
      what: 'the rejoin to be counted',
    });

    await redis.stop();
    const down = await waitFor(
      async () => {
        const families = await scrape(b);
        return value(families, 'gatehouse_redis_up', { connection: 'command' }) === 0 ? families : undefined;
      },
      { what: 'the command link to be reported down' },
    );
    assert.equal(value(down, 'gatehouse_redis_up', { connection: 'bus' }), 0);
    await redis.start();
    await waitReady(b, 200);
    const up = await scrape(b);
    for (const connection of ['command', 'subscriber', 'bus']) {
      assert.equal(value(up, 'gatehouse_redis_up', { connection }), 1, connection);
    }
  });
});
