// Scenario 1: one publisher, N subscribers on one channel, a fixed publish rate
// (or as fast as the generator can go). Reports server CPU per delivered message.
import { now, percentiles } from '../lib/clients.mjs';
import { driverOf, openMany } from '../lib/drivers.mjs';
import { cpuSplitMs } from '../lib/proc.mjs';

const SAMPLE_EVERY = 100;

/**
 * `target` is one server or several (a cluster): subscribers are spread over them
 * round-robin (or placed by `subscriberOn(i)`, a server index), the publisher uses
 * `publisherOn` (the first by default), and CPU is summed over all of them.
 */
export async function fanout(
  target,
  { subscribers, rate, seconds, payloadBytes, max = false, measure = {}, publisherOn = 0, subscriberOn },
) {
  const servers = Array.isArray(target) ? target : [target];
  const driver = driverOf(servers[0]);
  const place = subscriberOn ?? ((i) => i % servers.length);
  const cpuUser = () => servers.reduce((sum, s) => sum + cpuSplitMs(s.pid).user, 0);
  const cpuSystem = () => servers.reduce((sum, s) => sum + cpuSplitMs(s.pid).system, 0);
  let delivered = 0;
  let sampledReceived = 0;
  const latencies = [];
  const subs = await openMany(driver, subscribers, {
    place: (i) => servers[place(i)],
    channel: () => 'bench',
    onMessage: (i, data) => {
      delivered++;
      if (i % SAMPLE_EVERY === 0) {
        latencies.push(now() - driver.stamp(data));
        if (i === 0) sampledReceived++;
      }
    },
  });
  const publisher = await driver.open(servers[publisherOn], null);
  const pad = 'x'.repeat(Math.max(0, payloadBytes - 30));
  const channels = ['bench'];
  let sent = 0;
  const publish = () => {
    driver.publish(publisher, channels, { t: Number(now().toFixed(3)), p: pad });
    sent++;
  };

  // Warm-up: let the JIT and the sockets settle before anything is counted.
  for (let i = 0; i < 20; i++) publish();
  await until(() => delivered >= 20 * subscribers, 5000);
  latencies.length = 0;
  delivered = 0;
  sent = 0;
  sampledReceived = 0;

  // `measure.start`/`measure.end` bracket exactly the measured publishes (the cluster
  // scenario reads Redis' command counters there, connection churn excluded).
  await measure.start?.();
  const user0 = cpuUser();
  const system0 = cpuSystem();
  const start = now();
  const end = start + seconds * 1000;
  if (max) {
    // As fast as the generator sustains: keep a window of messages in flight to the
    // first subscriber, so the server is never idle and never flooded.
    const WINDOW = 64;
    while (now() < end) {
      while (sent - sampledReceived < WINDOW) publish();
      await new Promise((r) => setImmediate(r));
    }
  } else {
    const perTick = rate / 100;
    let owed = 0;
    await new Promise((resolve) => {
      const timer = setInterval(() => {
        if (now() >= end) {
          clearInterval(timer);
          resolve();
          return;
        }
        owed += perTick;
        while (owed >= 1) {
          publish();
          owed--;
        }
      }, 10);
    });
  }
  const expected = sent * subscribers;
  await until(() => delivered >= expected, 5000);
  const elapsed = (now() - start) / 1000;
  const user = cpuUser() - user0;
  const system = cpuSystem() - system0;
  await measure.end?.();
  await driver.closeAll([publisher, ...subs]);
  const { p50, p99 } = percentiles(latencies);
  return {
    published: sent,
    delivered,
    rate: delivered / elapsed,
    loss: expected === 0 ? 0 : 1 - delivered / expected,
    cpuUsPerMsg: ((user + system) * 1000) / Math.max(1, delivered),
    // The kernel's part (the socket writes) against the process's own.
    userUsPerMsg: (user * 1000) / Math.max(1, delivered),
    systemUsPerMsg: (system * 1000) / Math.max(1, delivered),
    p50,
    p99,
  };
}

async function until(condition, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (!condition() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
}
