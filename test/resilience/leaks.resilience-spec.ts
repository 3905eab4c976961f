import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { Engine } from '../../src/core/engine/engine.js';
import { ClientRegistry } from '../../src/core/registry/client-registry.js';
import { UpgradeLimits } from '../../src/core/ws/upgrade-limits.js';
import { HatsuService } from '../../src/protocols/hatsu/hatsu.service.js';
import { startApp, type Gateway, type TestApp } from '../helpers/app.js';
import { newBot, openFates } from '../helpers/fates-client.js';
import { createToken, openFelix } from '../helpers/felix-client.js';
import { hatsuAccount, openHatsu, type HatsuAccount } from '../helpers/hatsu-client.js';
import { admin } from '../helpers/http.js';
import { snowflake } from '../helpers/ids.js';
import { issueToken, openJac, type JacToken } from '../helpers/jac-client.js';
import { redisSuite, SHARED_REDIS_URL, uniquePrefix } from '../helpers/redis.js';
import { deleteKeys } from '../helpers/redis-cleanup.js';
import { waitFor } from '../helpers/wait.js';
import { connectBounded, type WsTestClient } from '../helpers/ws-client.js';
import { figure, memory, mib, MiB, pool, size } from './support.js';

/** Connect/identify/disconnect cycles per protocol (CI size; a soak run sets tens of thousands). */
const CYCLES = size('LEAK_CYCLES', 2000);
const CONCURRENCY = size('LEAK_CONCURRENCY', 16);
/** Cycles run first and left out of the measurement: JIT, caches and pools warm up. */
const WARMUP = Math.max(300, Math.floor(CYCLES / 10));
/**
 * What the heap (plus external memory) may gain over the cycles. A leak of one small object
 * per cycle would exceed it: 8000 cycles at the CI size, 512 bytes each, is 4 MiB.
 */
const BOUND = 4 * MiB;
/**
 * Sessions allowed per process, far below the number of identifies abandoned half-way
 * below: if abandoning one left it counted, identifies would soon be refused 4003.
 */
const HATSU_MAX_SESSIONS = 200;

type Protocol = 'jac' | 'fates' | 'felix' | 'hatsu';
const PROTOCOLS: Protocol[] = ['jac', 'fates', 'felix', 'hatsu'];

interface Fixtures {
  bots: { id: string; token: string }[];
  accounts: HatsuAccount[];
  jacTokens: JacToken[];
  felix: { id: string; token: string };
  felixGuild: string;
}

/** Credentials the cycles share (a few of each, so stored state does not grow with cycles). */
async function fixtures(app: Gateway): Promise<Fixtures> {
  const f: Fixtures = { bots: [], accounts: [], jacTokens: [], felix: await createToken(app), felixGuild: snowflake() };
  for (let i = 0; i < 8; i++) {
    f.bots.push(await newBot(app));
    f.accounts.push(await hatsuAccount(app));
    f.jacTokens.push(await issueToken(app));
  }
  return f;
}

/**
 * One client's life, in one of three endings: a clean close after identifying, a dropped
 * connection (no close frame) after identifying, or a drop in the middle of identifying.
 */
async function cycle(app: Gateway, f: Fixtures, protocol: Protocol, i: number): Promise<void> {
  const ending = i % 3;
  const pick = <T>(list: T[]): T => list[i % list.length] as T;
  let peer: WsTestClient;
  switch (protocol) {
    case 'jac':
      if (ending === 2) {
        peer = await connectBounded(app.ws('/websocket'));
        break;
      }
      // A fresh channel id each time: the channel index must shrink again.
      peer = (await openJac(app, { token: i % 2 === 0 ? pick(f.jacTokens) : undefined })).ws;
      break;
    case 'fates':
      if (ending === 2) {
        peer = await connectBounded(app.ws(i % 2 === 0 ? '/api/ws' : '/flamepaw/ws'));
        await peer.nextRaw();
        const bot = pick(f.bots);
        peer.send({ id: bot.id, token: bot.token, bot: true, send_all: true });
        break;
      }
      peer = await openFates(app, pick(f.bots), { era: i % 2 === 0 ? 'v2' : 'flamepaw', sendAll: ending === 1 });
      break;
    case 'felix':
      if (ending === 2) {
        peer = await connectBounded(app.ws('/felix'), { headers: { Authorization: f.felix.token } });
        peer.send({ code: 20002, data: { users: [snowflake()], guilds: [f.felixGuild] } });
        break;
      }
      peer = await openFelix(app, f.felix.token, [f.felixGuild, snowflake()]);
      break;
    case 'hatsu':
      if (ending === 2) {
        peer = await connectBounded(app.ws('/hatsu'));
        peer.send({ session_id: pick(f.accounts).sessionId, encoding: i % 2 === 0 ? 'zlib' : 'json' });
        break;
      }
      peer = await openHatsu(app, pick(f.accounts).sessionId, { encoding: i % 2 === 0 ? 'zlib' : 'json' });
      break;
  }
  if (ending === 0) await peer.close();
  else {
    peer.terminate();
    await peer.closed;
  }
}

async function runCycles(apps: Gateway[], f: Fixtures, count: number, offset: number): Promise<void> {
  // Every protocol's cycles are over before this settles, failed or not.
  const settled = await Promise.allSettled(
    PROTOCOLS.map((protocol) =>
      pool(count, CONCURRENCY, (i) =>
        cycle(apps[Math.floor((offset + i) / 2) % apps.length] as Gateway, f, protocol, offset + i),
      ),
    ),
  );
  for (const result of settled) if (result.status === 'rejected') throw result.reason as Error;
}

async function listsNoClient(app: Gateway): Promise<void> {
  await waitFor(
    async () => {
      const answer = await admin(app, 'GET', '/admin/connections?limit=1');
      return answer.status === 200 && (answer.json as { total: number }).total === 0;
    },
    { timeoutMs: 10_000, intervalMs: 50, what: 'GET /admin/connections to list no client' },
  );
}

describe('no leaks: connect, identify and disconnect cycles leave nothing behind', () => {
  let app: TestApp;
  let registry: ClientRegistry;
  let f: Fixtures;

  before(async () => {
    app = await startApp({
      FATES_RATE_LIMIT: '1000000',
      HATSU_MAX_SESSIONS: String(HATSU_MAX_SESSIONS),
    });
    registry = app.app.get(ClientRegistry);
    f = await fixtures(app);
  });

  after(() => app?.close());

  /** Nothing left: registry, admin view, per-IP socket counts, hatsu's load. */
  async function expectEmpty(): Promise<void> {
    await listsNoClient(app);
    assert.equal(registry.size, 0);
    assert.equal(app.app.get(UpgradeLimits).openSockets, 0);
    assert.equal(app.app.get(HatsuService).load, 0);
  }

  it(`runs ${CYCLES} cycles per protocol and comes back to an empty registry and its baseline memory`, async () => {
    await runCycles([app], f, WARMUP, 0);
    await expectEmpty();
    const baseline = memory();
    const started = performance.now();
    await runCycles([app], f, CYCLES, WARMUP);
    const elapsed = performance.now() - started;
    await expectEmpty();
    const end = memory();
    const growth = end.used - baseline.used;
    figure('leaks', 'cycles', CYCLES * 4);
    figure('leaks', 'cycles_per_second', (CYCLES * 4 * 1000) / elapsed);
    figure('leaks', 'heap_external_delta', mib(growth), 'MiB');
    figure('leaks', 'bytes_per_cycle', Math.round(growth / (CYCLES * 4)), 'B');
    figure('leaks', 'rss_delta', mib(end.rss - baseline.rss), 'MiB');
    assert.ok(growth < BOUND, `memory grew ${mib(growth)} MiB over ${CYCLES * 4} cycles (bound ${mib(BOUND)} MiB)`);
  });

  it('still serves every protocol afterwards, up to the hatsu session cap', async () => {
    // Abandoned identifies released their place: the cap can be filled by live sessions.
    const sessions: WsTestClient[] = [];
    await pool(HATSU_MAX_SESSIONS, 20, async (i) => {
      sessions.push(await openHatsu(app, (f.accounts[i % f.accounts.length] as { sessionId: string }).sessionId));
    });
    const over = await connectBounded(app.ws('/hatsu'));
    over.send({ session_id: (f.accounts[0] as { sessionId: string }).sessionId });
    assert.deepEqual(await over.waitClose(), { code: 4003, reason: 'Too much users on WebSocket' });
    await Promise.all(sessions.map((s) => s.close()));
    const others = [
      (await openJac(app)).ws,
      await openFates(app, f.bots[0] as { id: string; token: string }),
      await openFelix(app, f.felix.token, [f.felixGuild]),
    ];
    await Promise.all(others.map((peer) => peer.close()));
    await expectEmpty();
  });
});

describe('no leaks with Redis: two instances come back to an empty cluster view', await redisSuite(), () => {
  const prefix = uniquePrefix();
  const cycles = size('LEAK_REDIS_CYCLES', 250);
  let a: TestApp;
  let b: TestApp;
  let inspect: Redis;

  before(async () => {
    const env = { REDIS_URL: SHARED_REDIS_URL, REDIS_KEY_PREFIX: prefix, FATES_RATE_LIMIT: '1000000' };
    [a, b] = await Promise.all([startApp(env), startApp(env)]);
    inspect = new Redis(SHARED_REDIS_URL);
  });

  after(async () => {
    await Promise.all([a?.close(), b?.close()]);
    inspect?.disconnect();
    await deleteKeys(SHARED_REDIS_URL, prefix);
  });

  it(`runs ${cycles} cycles per protocol across both and leaves no client in Redis`, async () => {
    const f = await fixtures(a);
    await runCycles([a, b], f, cycles, 0);
    await listsNoClient(a);
    await listsNoClient(b);
    // Each instance's mirror of its connections is empty (or gone), not merely hidden.
    for (const app of [a, b]) {
      const key = `${prefix}conns:${app.app.get(Engine).bus.instanceId}`;
      await waitFor(async () => (await inspect.hlen(key)) === 0, { what: `${key} to be empty` });
    }
  });
});
