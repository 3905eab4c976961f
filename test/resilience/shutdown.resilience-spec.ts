import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startApp, type TestApp } from '../helpers/app.js';
import { fatesEvents, newBot, openFates } from '../helpers/fates-client.js';
import { createToken, openFelix } from '../helpers/felix-client.js';
import { spawnGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { hatsuAccount, openHatsu, userDocument, type HatsuAccount } from '../helpers/hatsu-client.js';
import { admin, expectStatus, readyStatus } from '../helpers/http.js';
import { snowflake } from '../helpers/ids.js';
import { connectJac, issueToken, openJac, type JacToken } from '../helpers/jac-client.js';
import { RedisProcess, redisSuite, uniquePrefix } from '../helpers/redis.js';
import { waitFor } from '../helpers/wait.js';
import { connectBounded, type WsTestClient } from '../helpers/ws-client.js';
import { figure, pool, size } from './support.js';

/** Clients per protocol (CI size; a soak run raises it). */
const PER_PROTOCOL = size('SHUTDOWN_CLIENTS_PER_PROTOCOL', 250);
/** Bots, tokens, accounts and channels the clients share. */
const GROUPS = 25;
/** Concurrent admin publishers; GROUPS is a multiple, so each group has one writer. */
const PUBLISHERS = 5;
const GRACE_MS = 5000;
/** Nest's teardown after the last client went: closing Redis and the HTTP server. */
const EXIT_MARGIN_MS = 2000;

interface Client {
  protocol: string;
  peer: WsTestClient;
}

describe(
  `shutdown under load: a real gateway process with ${PER_PROTOCOL * 4} clients gets SIGTERM`,
  await redisSuite(),
  () => {
    const prefix = uniquePrefix();
    let redis: RedisProcess;
    let gw: GatewayProcess;
    let next: TestApp | undefined;
    const clients: Client[] = [];
    const bots: { id: string; token: string }[] = [];
    const felixTokens: { id: string; token: string }[] = [];
    const guilds = Array.from({ length: GROUPS }, () => snowflake());
    const accounts: HatsuAccount[] = [];
    let jac: JacToken;
    /** What the gateway accepted (2xx) before it went: it must all be there after the restart. */
    const acceptedEids = new Map<string, Set<string>>();
    const felixRev = new Map<string, number>();
    const hatsuRev = new Map<string, number>();
    let publishing = true;
    let publisher: Promise<void> = Promise.resolve();
    let rounds = 0;

    before(async () => {
      redis = await RedisProcess.start();
      gw = await spawnGateway({
        REDIS_URL: redis.url,
        REDIS_KEY_PREFIX: prefix,
        SHUTDOWN_GRACE_MS: String(GRACE_MS),
        FATES_RATE_LIMIT: '1000000',
      });
      await waitFor(async () => (await readyStatus(gw)) === 200, {
        timeoutMs: 10_000,
        what: 'the gateway to be ready',
      });
      for (let i = 0; i < GROUPS; i++) {
        bots.push(await newBot(gw));
        felixTokens.push(await createToken(gw));
        accounts.push(await hatsuAccount(gw));
      }
      jac = await issueToken(gw);
    });

    after(async () => {
      publishing = false;
      await publisher.catch(() => undefined);
      for (const { peer } of clients) peer.terminate();
      if (gw && gw.child.exitCode === null && gw.child.signalCode === null) gw.child.kill('SIGKILL');
      await next?.close();
      await redis?.stop();
    });

    /** One round of admin writes of every protocol; records what was accepted. */
    async function publishRound(r: number): Promise<void> {
      const g = r % GROUPS;
      const bot = bots[g] as { id: string };
      const account = accounts[g] as { userId: string; guildId: string };
      const guild = guilds[g] as string;
      const settle = async (request: Promise<{ status: number; json: unknown }>, onOk: (json: unknown) => void) => {
        try {
          const answer = await request;
          if (answer.status >= 200 && answer.status < 300) onOk(answer.json);
        } catch {
          // The gateway going away mid-request: neither accepted nor refused.
        }
      };
      await Promise.all([
        settle(
          admin(gw, 'POST', `/admin/fates/bots/${bot.id}/events`, { m: { e: 0 }, ctx: { r } }, { timeoutMs: 3000 }),
          (json) => {
            const eids = acceptedEids.get(bot.id) ?? new Set<string>();
            eids.add((json as { eid: string }).eid);
            acceptedEids.set(bot.id, eids);
          },
        ),
        settle(admin(gw, 'PUT', `/admin/felix/guilds/${guild}`, { rev: r }, { timeoutMs: 3000 }), () => {
          felixRev.set(guild, Math.max(felixRev.get(guild) ?? -1, r));
        }),
        settle(
          admin(gw, 'PUT', `/admin/hatsu/users/${account.userId}`, userDocument(`rev-${r}`, { flags: r }), {
            timeoutMs: 3000,
          }),
          () => hatsuRev.set(account.userId, Math.max(hatsuRev.get(account.userId) ?? -1, r)),
        ),
        settle(
          admin(
            gw,
            'POST',
            '/admin/hatsu/dispatch',
            { t: 'LOAD', d: { r }, to: { guild_id: account.guildId } },
            { timeoutMs: 3000 },
          ),
          () => undefined,
        ),
        settle(
          admin(gw, 'POST', '/admin/jac/notify', { channel_ids: [`room-${g}`], data: { r } }, { timeoutMs: 3000 }),
          () => undefined,
        ),
      ]);
    }

    it(`connects ${PER_PROTOCOL} identified clients per protocol while events flow`, async () => {
      // Backends publishing on keep-alive connections that are never idle, each on groups of
      // its own so that its writes to one document stay in order: one while clients connect,
      // all of them once they are connected.
      const publishers: Promise<void>[] = [];
      const startPublisher = (k: number): void => {
        publishers.push(
          (async () => {
            for (let r = k; publishing && gw.child.exitCode === null; r += PUBLISHERS) {
              await publishRound(r);
              rounds++;
            }
          })(),
        );
        publisher = Promise.all(publishers).then(() => undefined);
      };
      startPublisher(0);
      const started = performance.now();
      await pool(PER_PROTOCOL * 4, 50, async (i) => {
        const n = Math.floor(i / 4);
        const g = n % GROUPS;
        let client: Client;
        switch (i % 4) {
          case 0:
            client = {
              protocol: 'fates',
              peer: await openFates(gw, bots[g] as { id: string; token: string }, {
                era: n % 2 === 0 ? 'v2' : 'flamepaw',
              }),
            };
            break;
          case 1:
            client = {
              protocol: 'felix',
              peer: await openFelix(gw, (felixTokens[g] as { token: string }).token, [guilds[g] as string]),
            };
            break;
          case 2:
            client = {
              protocol: 'hatsu',
              peer: await openHatsu(gw, (accounts[g] as { sessionId: string }).sessionId, {
                encoding: n % 5 === 0 ? 'zlib' : 'json',
              }),
            };
            break;
          default:
            client = {
              protocol: 'jac',
              peer: (await openJac(gw, { channel: `room-${g}`, token: n % 2 === 0 ? jac : undefined })).ws,
            };
        }
        // Counted, not kept: a thousand clients under a firehose must not load the test process.
        client.peer.stream(() => undefined);
        clients.push(client);
      });
      figure('shutdown', 'connect_and_identify', performance.now() - started, 'ms');
      for (let k = 1; k < PUBLISHERS; k++) startPublisher(k);
      figure('shutdown', 'clients', clients.length);
      const listed = await expectStatus(gw, 200, 'GET', '/admin/connections?limit=1');
      // The jac publisher of the rounds is not a socket; every client is one.
      assert.equal((listed.json as { total: number }).total, PER_PROTOCOL * 4);
      // Events reach every protocol's clients before the signal.
      const received = new Map(clients.map((c) => [c, c.peer.received]));
      await waitFor(() => clients.every((c) => c.peer.received > (received.get(c) ?? 0)), {
        timeoutMs: 20_000,
        intervalMs: 50,
        what: 'every client to receive live events',
      });
      assert.ok(rounds > 0);
    });

    it('on SIGTERM sends every client 1001 and exits 0 within SHUTDOWN_GRACE_MS', async () => {
      const roundsBefore = rounds;
      const signalled = performance.now();
      const closedAt = clients.map((c) =>
        c.peer.closed.then((closed) => ({ closed, ms: performance.now() - signalled })),
      );
      gw.child.kill('SIGTERM');
      let exitedAfter: number;
      let timer: NodeJS.Timeout | undefined;
      try {
        const exit = await Promise.race([
          gw.exited,
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error('the gateway did not exit')), GRACE_MS + EXIT_MARGIN_MS + 5000);
          }),
        ]);
        exitedAfter = performance.now() - signalled;
        assert.deepEqual(exit, { code: 0, signal: null }, gw.output().slice(-2000));
      } finally {
        clearTimeout(timer);
        publishing = false;
        await publisher;
      }
      const closes = await Promise.all(closedAt);
      const codes = new Map<number, number>();
      for (const { closed } of closes) codes.set(closed.code, (codes.get(closed.code) ?? 0) + 1);
      const lastClose = Math.max(...closes.map((c) => c.ms));
      figure('shutdown', 'last_client_closed_after_sigterm', lastClose, 'ms');
      figure('shutdown', 'exit_after_sigterm', exitedAfter, 'ms');
      figure('shutdown', 'admin_rounds_before_sigterm', roundsBefore);
      assert.deepEqual([...codes], [[1001, clients.length]], 'every client gets a close frame 1001');
      for (const { closed } of closes) assert.equal(closed.reason, 'Server shutting down');
      assert.ok(exitedAfter < GRACE_MS + EXIT_MARGIN_MS, `exited ${Math.round(exitedAfter)} ms after SIGTERM`);
      // Its log holds no error, no unhandled rejection, no stack.
      assert.doesNotMatch(gw.output(), /"level":"(error|fatal)"|nhandled|\n\s+at /, gw.output().slice(-3000));
    });

    it('loses nothing stored: a new instance on the same Redis has every token, document and event', async () => {
      next = await startApp({ REDIS_URL: redis.url, REDIS_KEY_PREFIX: prefix, FATES_RATE_LIMIT: '1000000' });
      // A clean shutdown leaves no ghost clients in the cluster view.
      const listed = await expectStatus(next, 200, 'GET', '/admin/connections?limit=1');
      assert.equal((listed.json as { total: number }).total, 0);
      let events = 0;
      for (let g = 0; g < GROUPS; g++) {
        const bot = bots[g] as { id: string; token: string };
        // Fates: the token still identifies, and a send_all replay carries every accepted event.
        const fates = await openFates(next, bot, { sendAll: true });
        const replayed = new Set<string>();
        for (;;) {
          const frame = (await fates.nextRaw()).data;
          if (frame.toString('utf8').includes('"done_prior"')) break;
          for (const event of fatesEvents(frame)) replayed.add((event['m'] as { eid: string }).eid);
        }
        await fates.close();
        for (const eid of acceptedEids.get(bot.id) ?? [])
          assert.ok(replayed.has(eid), `event ${eid} of ${bot.id} lost`);
        events += acceptedEids.get(bot.id)?.size ?? 0;
        // Felix: the token still opens a socket; the guild document is the last accepted (or a later attempt).
        const felix = await openFelix(next, (felixTokens[g] as { token: string }).token, []);
        await felix.close();
        const guild = guilds[g] as string;
        const stored = await expectStatus(next, 200, 'GET', `/admin/felix/guilds/${guild}`);
        assert.ok((stored.json as { rev: number }).rev >= (felixRev.get(guild) ?? 0), `guild ${guild} went back`);
        // hatsu: the session still identifies, as the latest accepted user, with its guild.
        const account = accounts[g] as { userId: string; guildId: string; sessionId: string };
        const hatsu = await connectBounded(next.ws('/hatsu'));
        hatsu.send({ session_id: account.sessionId });
        assert.equal((await hatsu.next<{ t: string }>()).t, 'HELLO');
        const ready = await hatsu.next<{ t: string; d: { flags: number } }>();
        assert.equal(ready.t, 'READY');
        assert.ok(ready.d.flags >= (hatsuRev.get(account.userId) ?? 0), `user ${account.userId} went back`);
        const init = await hatsu.next<{ t: string; d: { _id: string } }>();
        assert.deepEqual([init.t, init.d._id], ['GUILD_INIT', account.guildId]);
        await hatsu.close();
      }
      assert.ok(events > 0, 'no Fates event was accepted before the signal');
      figure('shutdown', 'fates_events_checked_after_restart', events);
      // jac tokens are JWTs under the configured secret: they outlive the process too.
      const again = await openJac(next, { token: jac });
      assert.equal(again.rootId, jac.rootId);
      await again.ws.close();
    });
  },
);

describe('shutdown with a hung Redis', await redisSuite(), () => {
  const grace = 1000;
  /** What the teardown may take past the grace, whatever Redis does (the margin in main.ts). */
  const margin = 2500;

  it('ends within SHUTDOWN_GRACE_MS and its margin while Redis is stopped, with clients connected', async () => {
    const redis = await RedisProcess.start();
    const gw = await spawnGateway({
      REDIS_URL: redis.url,
      REDIS_KEY_PREFIX: uniquePrefix(),
      SHUTDOWN_GRACE_MS: String(grace),
      LOG_LEVEL: 'info',
    });
    try {
      await waitFor(async () => (await readyStatus(gw)) === 200, { what: 'the gateway to be ready' });
      const client = await connectJac(gw, { token: await issueToken(gw) });
      redis.pause();
      const started = performance.now();
      gw.child.kill('SIGTERM');
      const exit = await gw.exited;
      const took = performance.now() - started;
      figure('shutdown', 'hung-redis-exit', Math.round(took), 'ms');
      assert.deepEqual(exit, { code: 0, signal: null });
      assert.ok(took < grace + margin + 1000, `exited after ${Math.round(took)} ms`);
      assert.match(gw.output(), /gatehouse stopped/);
      // The client was told: the going-away close, before Redis was waited on.
      assert.equal((await client.ws.closed).code, 1001);
    } finally {
      gw.child.kill('SIGKILL');
      redis.resume();
      await redis.stop();
    }
  });
});
