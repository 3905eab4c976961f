#!/usr/bin/env node
// `npm run bench`: each scenario against the plain-ws relay and against Gatehouse, in
// the same run, reported as ratios so machine noise cancels out. `--smoke` runs tiny
// sizes in a few seconds (part of npm test, so the harness cannot rot).
import { parseArgs } from 'node:util';
import { startServer, freePort } from './lib/proc.mjs';
import { fanout } from './scenarios/fanout.mjs';
import { idle } from './scenarios/idle.mjs';
import { fatesReplay } from './scenarios/fates-replay.mjs';
import { hatsuDispatch, prepareHatsu } from './scenarios/hatsu-zlib.mjs';
import { startRedis } from './lib/redis.mjs';

const { values: flags } = parseArgs({
  options: {
    smoke: { type: 'boolean', default: false },
    scenario: { type: 'string', multiple: true },
    subscribers: { type: 'string' },
    connections: { type: 'string' },
    events: { type: 'string' },
    sessions: { type: 'string' },
    rate: { type: 'string' },
    seconds: { type: 'string' },
    json: { type: 'boolean', default: false },
  },
});

const SMOKE = flags.smoke;
// The compiled gateway to measure; the smoke test points it at its own build.
const GATEHOUSE_MAIN = process.env.GATEHOUSE_MAIN ?? 'dist/main.js';
const num = (value, fallback) => (value === undefined ? fallback : Number(value));

const GATEHOUSE_ENV = {
  HOST: '127.0.0.1',
  LOG_LEVEL: 'warn',
  ADMIN_TOKEN: 'bench-admin-token-0123456789',
  JAC_JWT_SECRET: 'bench-jwt-secret-0123456789',
  // The bench publisher is a public socket; the policy is not what is being measured.
  JAC_PUBLISH_POLICY: 'open',
};

async function withServers(fn) {
  const relay = await startServer('relay', 'bench/baseline/relay.mjs', {}, await freePort());
  const gatehouse = await startServer('gatehouse', GATEHOUSE_MAIN, GATEHOUSE_ENV, await freePort());
  try {
    return await fn({ relay, gatehouse });
  } finally {
    await Promise.all([relay.stop(), gatehouse.stop()]);
  }
}

const rows = [];
function row(scenario, metric, relayValue, gatehouseValue, target) {
  const ratio = gatehouseValue / relayValue;
  rows.push({ scenario, metric, relay: relayValue, gatehouse: gatehouseValue, ratio, target });
}

const SCENARIOS = {
  async 'fanout-1000'() {
    const options = {
      subscribers: num(flags.subscribers, SMOKE ? 50 : 1000),
      rate: num(flags.rate, SMOKE ? 20 : 20),
      seconds: num(flags.seconds, SMOKE ? 1 : 10),
      payloadBytes: 64,
    };
    await withServers(async ({ relay, gatehouse }) => {
      const r = await fanout(relay, options);
      const g = await fanout(gatehouse, options);
      const name = `fan-out ${options.subscribers} subs @ ${options.rate}/s`;
      row(name, 'server CPU µs / delivered msg', r.cpuUsPerMsg, g.cpuUsPerMsg, '≤ 1.0x');
      row(name, 'delivered msg/s', r.rate, g.rate, '');
      row(name, 'loss', r.loss, g.loss, '0');
      row(name, 'p50 latency ms', r.p50, g.p50, '');
      row(name, 'p99 latency ms', r.p99, g.p99, '≤ 1.2x');
    });
  },
  async 'fanout-max'() {
    const options = {
      subscribers: SMOKE ? 10 : 100,
      seconds: num(flags.seconds, SMOKE ? 1 : 10),
      payloadBytes: 64,
      max: true,
    };
    await withServers(async ({ relay, gatehouse }) => {
      const r = await fanout(relay, options);
      const g = await fanout(gatehouse, options);
      const name = `fan-out ${options.subscribers} subs, max rate`;
      row(name, 'server CPU µs / delivered msg', r.cpuUsPerMsg, g.cpuUsPerMsg, '≤ 1.0x');
      row(name, 'delivered msg/s', r.rate, g.rate, '');
      row(name, 'p99 latency ms', r.p99, g.p99, '');
    });
  },
  async idle() {
    const options = { connections: num(flags.connections, SMOKE ? 200 : 19_000) };
    await withServers(async ({ relay, gatehouse }) => {
      const r = await idle(relay, options);
      const g = await idle(gatehouse, options);
      const name = `idle ${options.connections} connections`;
      row(name, 'server RSS bytes / connection', r.rssPerConn, g.rssPerConn, '≤ 2x, < 10 KB');
      row(name, 'accepted connections / s', r.acceptRate, g.acceptRate, '≥ 0.8x');
    });
  },
  async cluster() {
    const options = {
      subscribers: num(flags.subscribers, SMOKE ? 40 : 1000),
      rate: num(flags.rate, 20),
      seconds: num(flags.seconds, SMOKE ? 1 : 10),
      payloadBytes: 64,
    };
    const single = await startServer('gatehouse', GATEHOUSE_MAIN, GATEHOUSE_ENV, await freePort());
    let alone;
    try {
      alone = await fanout(single, options);
    } finally {
      await single.stop();
    }
    const redis = await startRedis(await freePort());
    const env = { ...GATEHOUSE_ENV, REDIS_URL: redis.url };
    const a = await startServer('gatehouse-a', GATEHOUSE_MAIN, env, await freePort());
    const b = await startServer('gatehouse-b', GATEHOUSE_MAIN, env, await freePort());
    try {
      const before = await redis.counters();
      const both = await fanout([a, b], options);
      const after = await redis.counters();
      const name = `cluster: 2 instances, ${options.subscribers} subs @ ${options.rate}/s`;
      row(name, 'server CPU µs / delivered msg (sum)', alone.cpuUsPerMsg, both.cpuUsPerMsg, '≤ 1.5x single');
      row(name, 'loss', alone.loss, both.loss, '0');
      row(name, 'p99 latency ms', alone.p99, both.p99, '');
      // Every command Redis ran while the measured publishes flowed, heartbeats included.
      const published = both.published + 20;
      rows.push({
        scenario: name,
        metric: 'Redis PUBLISH / publish (all commands / publish)',
        relay: NaN,
        gatehouse: (after.publish - before.publish) / published,
        ratio: (after.total - before.total) / published,
        target: '1 PUBLISH',
      });
    } finally {
      await Promise.all([a.stop(), b.stop()]);
      await redis.stop();
    }
  },
  async 'fates-replay'() {
    const events = num(flags.events, SMOKE ? 50 : 1000);
    const env = { ...GATEHOUSE_ENV, FATES_HISTORY_LIMIT: String(events) };
    const gatehouse = await startServer('gatehouse', GATEHOUSE_MAIN, env, await freePort());
    try {
      const result = await fatesReplay(gatehouse, { events, adminToken: GATEHOUSE_ENV.ADMIN_TOKEN });
      const name = `Fates replay of ${events} events (send_all)`;
      rows.push({
        scenario: name,
        metric: 'identify → done_prior ms',
        relay: NaN,
        gatehouse: result.ms,
        ratio: NaN,
        target: '< 100 ms',
      });
      rows.push({
        scenario: name,
        metric: 'server CPU µs / replayed event',
        relay: NaN,
        gatehouse: result.cpuUsPerEvent,
        ratio: NaN,
        target: '',
      });
      rows.push({
        scenario: name,
        metric: 'all replayed, in order (1 = yes)',
        relay: NaN,
        gatehouse: result.inOrder ? 1 : 0,
        ratio: NaN,
        target: '1',
      });
    } finally {
      await gatehouse.stop();
    }
  },
  async 'hatsu-zlib'() {
    const options = {
      sessions: num(flags.sessions, SMOKE ? 20 : 1000),
      rate: num(flags.rate, 20),
      seconds: num(flags.seconds, SMOKE ? 1 : 10),
      adminToken: GATEHOUSE_ENV.ADMIN_TOKEN,
    };
    const gatehouse = await startServer('gatehouse', GATEHOUSE_MAIN, GATEHOUSE_ENV, await freePort());
    try {
      await prepareHatsu(gatehouse, options);
      const json = await hatsuDispatch(gatehouse, { ...options, encoding: 'json' });
      const zlib = await hatsuDispatch(gatehouse, { ...options, encoding: 'zlib' });
      const name = `hatsu ${options.sessions} sessions, guild dispatch @ ${options.rate}/s (baseline: json)`;
      row(name, 'server CPU µs / delivered msg', json.cpuUsPerMsg, zlib.cpuUsPerMsg, '≤ 3x json');
      row(name, 'server RSS bytes / session', json.rssPerSession, zlib.rssPerSession, 'bounded');
      row(name, 'loss', json.loss, zlib.loss, '0');
    } finally {
      await gatehouse.stop();
    }
  },
};

const selected = flags.scenario ?? Object.keys(SCENARIOS);
for (const name of selected) {
  if (!SCENARIOS[name]) {
    console.error(`unknown scenario ${name}; known: ${Object.keys(SCENARIOS).join(', ')}`);
    process.exit(2);
  }
  await SCENARIOS[name]();
}

if (flags.json) {
  console.log(JSON.stringify(rows, null, 2));
} else {
  const fmt = (v) =>
    typeof v !== 'number' || Number.isNaN(v) ? '–' : Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(3);
  const table = [['scenario', 'metric', 'relay', 'gatehouse', 'ratio', 'target']].concat(
    rows.map((r) => [r.scenario, r.metric, fmt(r.relay), fmt(r.gatehouse), `${fmt(r.ratio)}x`, r.target]),
  );
  const widths = table[0].map((_, c) => Math.max(...table.map((line) => String(line[c]).length)));
  for (const line of table) console.log(line.map((cell, c) => String(cell).padEnd(widths[c])).join('  '));
}
