import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { startApp, type Gateway, type TestApp } from '../helpers/app.js';
import { fatesEvents, newBot, openFates } from '../helpers/fates-client.js';
import { createToken, openFelix } from '../helpers/felix-client.js';
import { hatsuAccount, openHatsu, userDocument, type HatsuAccount } from '../helpers/hatsu-client.js';
import { admin, assertCleanUnavailable, call, readyStatus, type HttpAnswer } from '../helpers/http.js';
import { snowflake } from '../helpers/ids.js';
import { issueToken, openJac } from '../helpers/jac-client.js';
import { RedisProcess, redisSuite, uniquePrefix } from '../helpers/redis.js';
import { unhandledRejections } from '../helpers/rejections.js';
import { waitFor } from '../helpers/wait.js';
import { connectBounded, UpgradeRejected, type WsTestClient } from '../helpers/ws-client.js';
import { figure } from './support.js';

const USER = userDocument('someone');

type Protocol = 'fates' | 'felix' | 'hatsu' | 'jac';
const PROTOCOLS: Protocol[] = ['fates', 'felix', 'hatsu', 'jac'];

/** A listening client whose received messages are reduced to the tags they carry. */
interface Listener {
  peer: WsTestClient;
  tags: Set<string>;
}

interface Sent {
  protocol: Protocol;
  tag: string;
  status: number;
  /** Issued once both instances reported Redis gone. */
  whileDown: boolean;
}

function tagsOf(protocol: Protocol, frame: Buffer): string[] {
  if (protocol === 'fates') return fatesEvents(frame).map((event) => (event['ctx'] as { tag: string }).tag);
  const message = JSON.parse(frame.toString('utf8')) as Record<string, unknown>;
  switch (protocol) {
    case 'felix':
      return message['code'] === 10002 ? [(message['data'] as { guildData: { tag: string } }).guildData.tag] : [];
    case 'hatsu':
      if (message['t'] === 'PROBE') return [(message['d'] as { tag: string }).tag];
      if (message['t'] === 'PRESENCE_UPDATE')
        return [`presence:${(message['d'] as { description: string }).description}`];
      if (message['t'] === 'ACK') return [`ack:${String(message['s'])}`];
      return [];
    case 'jac':
      return typeof message['tag'] === 'string' ? [message['tag']] : [];
  }
}

describe('Redis stops and comes back under two instances, every protocol', await redisSuite(), () => {
  const rejections = unhandledRejections();
  const peers: WsTestClient[] = [];
  let redis: RedisProcess;
  let persistDir: string;
  let a: TestApp;
  let b: TestApp;
  let bot: { id: string; token: string };
  let felix: { id: string; token: string };
  const felixGuild = snowflake();
  let hatsu: HatsuAccount;
  const jacChannel = `outage-${snowflake()}`;
  let jacPublisher: WsTestClient;
  /** On each instance, one listening client per protocol. */
  const onA = {} as Record<Protocol, Listener>;
  const onB = {} as Record<Protocol, Listener>;
  const sent: Sent[] = [];
  let probes = 0;
  let stoppedAt = 0;

  /** How each protocol's listener is opened, with the credentials of the moment. */
  const open: Record<Protocol, (app: Gateway) => Promise<WsTestClient>> = {
    fates: (app) => openFates(app, bot),
    felix: (app) => openFelix(app, felix.token, [felixGuild]),
    hatsu: (app) => openHatsu(app, hatsu.sessionId),
    jac: async (app) => (await openJac(app, { channel: jacChannel })).ws,
  };

  async function listen(protocol: Protocol, app: Gateway): Promise<Listener> {
    const peer = await open[protocol](app);
    peers.push(peer);
    const listener: Listener = { peer, tags: new Set() };
    peer.stream((frame) => {
      for (const tag of tagsOf(protocol, frame)) listener.tags.add(tag);
    });
    return listener;
  }

  /** One listener of each of `protocols` on A, then on B. */
  async function listenOnBoth(protocols: Protocol[]): Promise<void> {
    for (const [app, side] of [
      [a, onA],
      [b, onB],
    ] as const) {
      for (const protocol of protocols) side[protocol] = await listen(protocol, app);
    }
  }

  /** The admin write of each protocol that fans out to its listeners. */
  function publish(protocol: Protocol, app: Gateway, tag: string): Promise<HttpAnswer> {
    switch (protocol) {
      case 'fates':
        return admin(app, 'POST', `/admin/fates/bots/${bot.id}/events`, { m: { e: 0 }, ctx: { tag } });
      case 'felix':
        return admin(app, 'PUT', `/admin/felix/guilds/${felixGuild}`, { tag });
      case 'hatsu':
        return admin(app, 'POST', '/admin/hatsu/dispatch', { t: 'PROBE', d: { tag }, to: { guild_id: hatsu.guildId } });
      case 'jac':
        return admin(app, 'POST', '/admin/jac/notify', { channel_ids: [jacChannel], data: { tag } });
    }
  }

  /**
   * Publishes probes from `from` until one reaches the listeners on both instances;
   * resolves with how long that took. Refusals while Redis is coming back are retried.
   */
  async function awaitDelivery(protocol: Protocol, from: TestApp, timeoutMs: number): Promise<number> {
    const started = performance.now();
    const mine: string[] = [];
    const statuses = new Map<number, number>();
    try {
      await waitFor(
        async () => {
          const tag = `probe-${protocol}-${++probes}`;
          mine.push(tag);
          const answer = await publish(protocol, from, tag);
          statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
          assert.ok(answer.status < 300 || answer.status === 503, `${protocol} probe: ${answer.status} ${answer.text}`);
          return waitFor(() => mine.some((t) => onA[protocol].tags.has(t) && onB[protocol].tags.has(t)), {
            timeoutMs: 250,
            intervalMs: 10,
          }).catch(() => false);
        },
        { timeoutMs, intervalMs: 10, what: `a ${protocol} publish to reach both instances` },
      );
    } catch (err) {
      const seen = (side: Record<Protocol, Listener>): number => mine.filter((t) => side[protocol].tags.has(t)).length;
      throw new Error(
        `${(err as Error).message}; answers ${JSON.stringify([...statuses])}, ` +
          `${mine.length} probes, seen on A ${seen(onA)} (open ${onA[protocol].peer.isOpen} ${JSON.stringify(onA[protocol].peer.closeInfo)}), ` +
          `on B ${seen(onB)} (open ${onB[protocol].peer.isOpen} ${JSON.stringify(onB[protocol].peer.closeInfo)})`,
        { cause: err },
      );
    }
    return performance.now() - started;
  }

  before(async () => {
    persistDir = await mkdtemp(join(tmpdir(), 'gatehouse-redis-'));
    redis = await RedisProcess.start({ persistDir });
    const env = { REDIS_URL: redis.url, REDIS_KEY_PREFIX: uniquePrefix(), FATES_RATE_LIMIT: '100000' };
    [a, b] = await Promise.all([startApp(env), startApp(env)]);
    await waitFor(async () => (await readyStatus(a)) === 200 && (await readyStatus(b)) === 200, {
      what: 'both instances ready',
    });
    bot = await newBot(a);
    felix = await createToken(a);
    hatsu = await hatsuAccount(a);
    jacPublisher = (await openJac(a, { token: await issueToken(a) })).ws;
    peers.push(jacPublisher);
    await listenOnBoth(PROTOCOLS);
  });

  after(async () => {
    await Promise.all(peers.map((peer) => peer.close()));
    await Promise.all([a?.close(), b?.close()]);
    await redis?.stop();
    if (persistDir) await rm(persistDir, { recursive: true, force: true });
  });

  it('delivers every protocol across instances while Redis is up', async () => {
    for (const protocol of PROTOCOLS) {
      await awaitDelivery(protocol, a, 5000);
      await awaitDelivery(protocol, b, 5000);
    }
  });

  it('keeps answering writes, 2xx or a clean 503 and never a hang, when Redis stops mid-traffic', async () => {
    let running = true;
    let down = false;
    let round = 0;
    let slowest = 0;
    const traffic = (async (): Promise<void> => {
      while (running) {
        const k = ++round;
        const whileDown = down;
        await Promise.all(
          PROTOCOLS.map(async (protocol) => {
            const tag = `traffic-${protocol}-${k}`;
            const answer = await publish(protocol, k % 2 === 0 ? a : b, tag);
            slowest = Math.max(slowest, answer.ms);
            if (answer.status === 503) assertCleanUnavailable(answer, `${protocol} publish ${k}`);
            else
              assert.ok(answer.status === 202 || answer.status === 204, `${protocol}: ${answer.status} ${answer.text}`);
            sent.push({ protocol, tag, status: answer.status, whileDown });
          }),
        );
        // A socket publish on A: local delivery needs no Redis.
        jacPublisher.send({ type: 'channel', channel_ids: [jacChannel], data: { tag: `socket-${k}` } });
        sent.push({ protocol: 'jac', tag: `socket-${k}`, status: 0, whileDown });
      }
    })();
    try {
      await waitFor(() => round >= 20, { timeoutMs: 10_000, what: 'traffic to flow' });
      await redis.stop();
      stoppedAt = performance.now();
      await waitFor(async () => (await readyStatus(a)) === 503 && (await readyStatus(b)) === 503, {
        timeoutMs: 5000,
        intervalMs: 20,
        what: 'both instances to report not-ready',
      });
      figure('redis-faults', 'not_ready_after_stop', performance.now() - stoppedAt, 'ms');
      down = true;
      const downAt = round;
      await waitFor(() => round >= downAt + 20, { timeoutMs: 10_000, what: 'traffic to go on while Redis is down' });
    } finally {
      running = false;
      await traffic;
    }
    figure('redis-faults', 'slowest_answer_during_outage', slowest, 'ms');
    // Both sides of the stop were exercised, for every protocol.
    for (const protocol of PROTOCOLS) {
      const mine = sent.filter((s) => s.protocol === protocol && s.status !== 0);
      assert.ok(
        mine.some((s) => s.status < 300 && !s.whileDown),
        `${protocol}: no write succeeded before the stop`,
      );
      assert.ok(
        mine.filter((s) => s.whileDown).every((s) => s.status === 503),
        `${protocol}: a write succeeded while Redis was down`,
      );
    }
    assert.equal((await call(a, 'GET', '/health/live')).status, 200);
    assert.equal((await call(b, 'GET', '/health/live')).status, 200);
    // Nobody was disconnected by the outage.
    for (const peer of peers) assert.ok(peer.isOpen, 'a client was disconnected by the outage');
  });

  it('answers every admin write that needs Redis with a clean 503 and reports not-ready on both instances', async () => {
    let slowest = 0;
    for (const app of [a, b]) {
      const ready = await call(app, 'GET', '/health/ready');
      assertCleanUnavailable(ready, '/health/ready');
      const id = snowflake();
      const writes: [string, string, unknown][] = [
        ['PUT', `/admin/fates/bots/${bot.id}/token`, { token: 'rotated-while-down' }],
        ['POST', `/admin/fates/bots/${bot.id}/events`, { m: { e: 0 }, ctx: { tag: 'refused' } }],
        ['POST', '/admin/fates/global/events', { m: { e: 0 }, ctx: { tag: 'refused' } }],
        ['POST', '/admin/felix/tokens', {}],
        ['PUT', `/admin/felix/guilds/${felixGuild}`, { tag: 'refused' }],
        ['PUT', `/admin/felix/users/${id}`, { tag: 'refused' }],
        ['PUT', '/admin/felix/status', { shards: [], guildsCount: 1 }],
        ['PUT', `/admin/hatsu/users/${id}`, USER],
        ['PUT', `/admin/hatsu/guilds/${id}`, { guild: { name: 'g' }, channels: [], members: [hatsu.userId] }],
        ['PUT', `/admin/hatsu/sessions/refused-${id}`, { user_id: hatsu.userId }],
        ['POST', '/admin/hatsu/dispatch', { t: 'PROBE', d: { tag: 'refused' }, to: { guild_id: hatsu.guildId } }],
        ['POST', '/admin/hatsu/dispatch', { t: 'PROBE', d: { tag: 'refused' }, to: { user_id: hatsu.userId } }],
        ['POST', '/admin/hatsu/dispatch', { t: 'PROBE', d: { tag: 'refused' }, to: { all: true } }],
        ['POST', '/admin/jac/notify', { channel_ids: [jacChannel], data: { tag: 'refused' } }],
      ];
      for (const [method, path, body] of writes) {
        const answer = await admin(app, method, path, body, { timeoutMs: 3000 });
        assertCleanUnavailable(answer, `${method} ${path}`);
        slowest = Math.max(slowest, answer.ms);
      }
    }
    figure('redis-faults', 'slowest_503', slowest, 'ms');
    // None of the refused writes reached anyone, here or there.
    for (const side of [onA, onB]) for (const protocol of PROTOCOLS) assert.ok(!side[protocol].tags.has('refused'));
  });

  it('keeps serving clients locally: socket publishes, heartbeats and presences on the same instance', async () => {
    // jac: what a socket on A publishes reaches A's listener, and only it.
    const downTags = sent.filter((s) => s.whileDown && s.status === 0).map((s) => s.tag);
    assert.ok(downTags.length > 0);
    await waitFor(() => downTags.every((tag) => onA.jac.tags.has(tag)), {
      what: 'socket publishes made while Redis was down to reach the local listener',
    });
    // hatsu: heartbeats answered, a presence reaches the sessions of this instance.
    for (const [side, marker] of [
      [onA, 'a'],
      [onB, 'b'],
    ] as const) {
      side.hatsu.peer.send({ t: 'HEARTBEAT', s: `down-${marker}` });
      await waitFor(() => side.hatsu.tags.has(`ack:down-${marker}`), { what: `hatsu ACK on ${marker}` });
    }
    onA.hatsu.peer.send({ t: 'PRESENCE', type: 1, description: 'during-outage' });
    await waitFor(() => onA.hatsu.tags.has('presence:during-outage'), { what: 'a local PRESENCE_UPDATE' });
    // Felix: heartbeats are answered from the last known status.
    for (const side of [onA, onB]) {
      const before = side.felix.peer.received;
      side.felix.peer.send({ code: 20001 });
      await waitFor(() => side.felix.peer.received > before, { what: 'a Felix heartbeat ACK' });
    }
    // Fates: identified sockets stay open (nothing to deliver: events are refused at the API).
    assert.ok(onA.fates.peer.isOpen && onB.fates.peer.isOpen);
  });

  it('answers new clients with each protocol documented outage behaviour', async () => {
    // jac needs no Redis to connect.
    const jac = await openJac(a, { channel: jacChannel });
    peers.push(jac.ws);
    // Felix checks its token in the store: 503 at the upgrade.
    const felixRefused = await connectBounded(a.ws('/felix'), { headers: { Authorization: felix.token } }).catch(
      (err: unknown) => err,
    );
    assert.ok(felixRefused instanceof UpgradeRejected, String(felixRefused));
    assert.equal(felixRefused.status, 503);
    // hatsu cannot look the session up: 1013, try again later.
    const hatsuPeer = await connectBounded(b.ws('/hatsu'));
    hatsuPeer.send({ session_id: hatsu.sessionId });
    assert.deepEqual(await hatsuPeer.waitClose(), { code: 1013, reason: 'Try again later' });
    // Fates cannot check the token: 4500, not 4004 (the credentials are not wrong).
    const fatesPeer = await connectBounded(b.ws('/api/ws'));
    await fatesPeer.next();
    fatesPeer.send({ id: bot.id, token: bot.token });
    assert.equal((await fatesPeer.waitClose()).code, 4500);
  });

  it('resumes every protocol across instances once Redis is back, without a restart', async () => {
    await redis.start();
    const restarted = performance.now();
    await waitFor(async () => (await readyStatus(a)) === 200 && (await readyStatus(b)) === 200, {
      timeoutMs: 10_000,
      intervalMs: 20,
      what: 'both instances to be ready again',
    });
    figure('redis-faults', 'ready_after_restart', performance.now() - restarted, 'ms');
    figure('redis-faults', 'outage_total', performance.now() - stoppedAt, 'ms');
    let slowest = 0;
    for (const protocol of PROTOCOLS) {
      slowest = Math.max(slowest, await awaitDelivery(protocol, a, 10_000));
      slowest = Math.max(slowest, await awaitDelivery(protocol, b, 10_000));
    }
    figure('redis-faults', 'cross_instance_delivery_after_ready', slowest, 'ms');
    figure('redis-faults', 'recovered_after_restart', performance.now() - restarted, 'ms');
    // The same sockets, never reconnected: their credentials were re-checked against the
    // Redis that came back with its data, and still hold.
    for (const peer of peers) assert.ok(peer.isOpen, `a client was disconnected: ${JSON.stringify(peer.closeInfo)}`);
    // Every kind of write refused during the outage succeeds again.
    const ok = async (method: string, path: string, body: unknown, status: number): Promise<void> => {
      const answer = await admin(b, method, path, body);
      assert.equal(answer.status, status, `${method} ${path}: ${answer.text}`);
    };
    const id = snowflake();
    await ok('PUT', `/admin/fates/bots/${bot.id}/token`, { token: bot.token }, 204);
    await ok('POST', '/admin/felix/tokens', {}, 201);
    await ok('PUT', `/admin/felix/users/${id}`, { back: true }, 204);
    await ok('PUT', '/admin/felix/status', { shards: [], guildsCount: 2 }, 204);
    await ok('PUT', `/admin/hatsu/users/${id}`, USER, 204);
    await ok('PUT', `/admin/hatsu/guilds/${id}`, { guild: { name: 'back' }, channels: [], members: [id] }, 204);
    await ok('PUT', `/admin/hatsu/sessions/back-${id}`, { user_id: id }, 204);
    // The cluster view is whole again: a dispatch from A counts the session on B.
    await waitFor(
      async () => {
        const answer = await admin(a, 'POST', '/admin/hatsu/dispatch', { t: 'COUNT', to: { guild_id: hatsu.guildId } });
        return answer.status === 202 && (answer.json as { sessions: number }).sessions === 2;
      },
      { what: 'the dispatch count to include the other instance' },
    );
    // What Redis held before the outage is still there (it keeps an append-only file).
    const history = await admin(a, 'GET', `/admin/fates/bots/${bot.id}/events`);
    const stored = new Set((history.json as { events: { ctx: { tag: string } }[] }).events.map((e) => e.ctx.tag));
    for (const s of sent.filter((x) => x.protocol === 'fates' && x.status === 202)) {
      assert.ok(stored.has(s.tag), `${s.tag} was accepted and is not in the history`);
    }
    // Publishes made while Redis was down reached only their own instance, and were
    // not replayed to the other one afterwards; refused writes reached nobody.
    const socketDown = sent.filter((x) => x.whileDown && x.status === 0);
    for (const x of socketDown) assert.ok(!onB.jac.tags.has(x.tag), `${x.tag} reached B after the outage`);
    for (const x of sent.filter((y) => y.whileDown && y.status === 503)) {
      assert.ok(!onA[x.protocol].tags.has(x.tag) && !onB[x.protocol].tags.has(x.tag), `${x.tag} was delivered`);
    }
  });

  it('closes the sockets whose credentials a Redis that came back empty no longer has; the rest resume', async () => {
    await redis.stop();
    await waitFor(async () => (await readyStatus(a)) === 503 && (await readyStatus(b)) === 503, {
      what: 'both instances to report not-ready',
    });
    await rm(persistDir, { recursive: true, force: true });
    await mkdir(persistDir);
    await redis.start();
    const restarted = performance.now();
    // Tokens and sessions are gone: the re-check after the gap closes their sockets.
    const expected: Record<Exclude<Protocol, 'jac'>, number> = { fates: 4004, felix: 1008, hatsu: 4002 };
    for (const [name, side] of [
      ['A', onA],
      ['B', onB],
    ] as const) {
      for (const [protocol, code] of Object.entries(expected) as [Exclude<Protocol, 'jac'>, number][]) {
        const closed = await side[protocol].peer.waitClose(10_000).catch((err: Error) => err);
        if (closed instanceof Error) assert.fail(`the ${protocol} socket on ${name} was not closed: ${closed.message}`);
        assert.equal(closed.code, code, `${protocol} on ${name}`);
      }
    }
    figure('redis-faults', 'stale_credentials_closed_after_restart', performance.now() - restarted, 'ms');
    // jac holds no server-side credential: its sockets stay, and delivery resumes.
    assert.ok(onA.jac.peer.isOpen && onB.jac.peer.isOpen);
    await awaitDelivery('jac', a, 10_000);
    // Provisioned again, the other protocols' clients come back on both instances.
    bot = await newBot(a);
    felix = await createToken(b);
    hatsu = await hatsuAccount(a);
    await listenOnBoth(['fates', 'felix', 'hatsu']);
    for (const protocol of PROTOCOLS) await awaitDelivery(protocol, b, 10_000);
  });

  it('saw no unhandled promise rejection', () => rejections.assertNone());
});

describe('a Redis that stops answering (frozen, connections still open)', await redisSuite(), () => {
  const rejections = unhandledRejections();
  let redis: RedisProcess;
  let pid = 0;
  let app: TestApp;
  let publisher: WsTestClient;
  let listener: WsTestClient;
  let bot: { id: string; token: string };
  let hatsu: HatsuAccount;
  const channel = `frozen-${snowflake()}`;

  before(async () => {
    redis = await RedisProcess.start();
    const info = new Redis(redis.url);
    pid = Number(/process_id:(\d+)/.exec(await info.info('server'))?.[1]);
    info.disconnect();
    assert.ok(pid > 0);
    app = await startApp({ REDIS_URL: redis.url, REDIS_KEY_PREFIX: uniquePrefix() });
    await waitFor(async () => (await readyStatus(app)) === 200, {
      what: 'the instance to be ready',
    });
    bot = await newBot(app);
    hatsu = await hatsuAccount(app);
    publisher = (await openJac(app, { token: await issueToken(app) })).ws;
    listener = (await openJac(app, { channel })).ws;
  });

  after(async () => {
    if (pid > 0) process.kill(pid, 'SIGCONT');
    await Promise.all([publisher?.close(), listener?.close()]);
    await app?.close();
    await redis?.stop();
  });

  it('answers every write 503 within the command timeout, never hangs, and serves locally', async () => {
    process.kill(pid, 'SIGSTOP');
    const frozen = performance.now();
    const writes: [string, string, unknown][] = [
      ['PUT', `/admin/fates/bots/${bot.id}/token`, { token: 'rotated-while-frozen' }],
      ['POST', `/admin/fates/bots/${bot.id}/events`, { m: { e: 0 }, ctx: {} }],
      ['POST', '/admin/felix/tokens', {}],
      ['PUT', `/admin/felix/guilds/${snowflake()}`, { frozen: true }],
      ['PUT', '/admin/felix/status', { shards: [], guildsCount: 1 }],
      ['PUT', `/admin/hatsu/users/${snowflake()}`, USER],
      ['PUT', `/admin/hatsu/guilds/${snowflake()}`, { guild: { name: 'g' }, channels: [], members: [] }],
      ['PUT', `/admin/hatsu/sessions/frozen-${snowflake()}`, { user_id: hatsu.userId }],
      ['POST', '/admin/hatsu/dispatch', { t: 'PROBE', to: { guild_id: hatsu.guildId } }],
      ['POST', '/admin/jac/notify', { channel_ids: [channel], data: { refused: true } }],
      ['GET', '/health/ready', undefined],
    ];
    const answers = await Promise.all(
      writes.map(([method, path, body]) => admin(app, method, path, body, { timeoutMs: 8000 })),
    );
    answers.forEach((answer, i) => assertCleanUnavailable(answer, `${writes[i]?.[0]} ${writes[i]?.[1]}`));
    const slowest = Math.max(...answers.map((answer) => answer.ms));
    figure('redis-faults', 'slowest_503_frozen_redis', slowest, 'ms');
    // ioredis' commandTimeout (2 s) bounds every Redis call; a few calls in a row at most.
    assert.ok(slowest < 6000, `an answer took ${Math.round(slowest)} ms`);
    // A socket publish still reaches the sockets of this instance at once.
    publisher.send({ type: 'channel', channel_ids: [channel], data: { frozen: 'local' } });
    assert.deepEqual(await listener.next(2000), { frozen: 'local' });
    assert.ok(performance.now() - frozen < 10_000);
  });

  it('resumes when Redis answers again', async () => {
    process.kill(pid, 'SIGCONT');
    const resumed = performance.now();
    await waitFor(async () => (await readyStatus(app)) === 200, {
      timeoutMs: 10_000,
      what: 'the instance to be ready again',
    });
    figure('redis-faults', 'ready_after_unfreeze', performance.now() - resumed, 'ms');
    const notify = await admin(app, 'POST', '/admin/jac/notify', { channel_ids: [channel], data: { back: true } });
    assert.equal(notify.status, 202, notify.text);
    assert.deepEqual(await listener.next(), { back: true });
    const event = await admin(app, 'POST', `/admin/fates/bots/${bot.id}/events`, { m: { e: 0 }, ctx: {} });
    assert.equal(event.status, 202, event.text);
  });

  it('saw no unhandled promise rejection', () => rejections.assertNone());
});
