import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { hashToken } from '../../src/core/auth/secrets.js';
import { Store } from '../../src/core/store/store.js';
import { FatesModule } from '../../src/protocols/fates/fates.module.js';
import { adminAuth, startApp, type TestApp } from '../helpers/app.js';
import {
  deleteToken,
  eidsOf,
  FatesClient,
  FLAMEPAW_PATH,
  history,
  INVALID_AUTH,
  newBot,
  newServer,
  postEvent,
  setToken,
  splitEvents,
  US,
  V2_PATH,
  vote,
  type FatesEventBody,
  type FlamepawEnvelope,
} from '../helpers/fates-client.js';
import { request } from '../helpers/http.js';
import { snowflake, UUID_V4 } from '../helpers/ids.js';

const HISTORY_LIMIT = 8;

describe('fates: events, replay and the admin API', () => {
  let app: TestApp;

  before(async () => {
    app = await startApp({ FATES_HISTORY_LIMIT: String(HISTORY_LIMIT) }, { protocols: [FatesModule] });
  });
  after(() => app.close());

  /**
   * Proves `client` receives nothing more: a token rotation closes it 4004, and the close
   * frame travels behind anything the server wrote before it.
   */
  async function expectNothingMore(client: FatesClient, kind: 'bots' | 'servers', id: string): Promise<void> {
    await setToken(app, kind, id, `rotated-${Math.random()}`);
    await client.expectClose(4004, INVALID_AUTH);
  }

  describe('replay and live events', () => {
    for (const [era, path] of [
      ['v2', V2_PATH],
      ['flamepaw', FLAMEPAW_PATH],
    ] as const) {
      it(`${era}: without send_all there is no replay and no done_prior, only live events`, async () => {
        const { id, token } = await newBot(app);
        await postEvent(app, `bots/${id}`, vote('1', 1));
        const { client } = await FatesClient.ready(app, path, { id, token, bot: true });
        const eid = await postEvent(app, `bots/${id}`, vote('2', 2));
        assert.deepEqual(eidsOf(await client.events()), [eid], 'the first frame after ready is the live event');
        await expectNothingMore(client, 'bots', id);
      });

      it(`${era}: send_all replays the target's history, then global, oldest first, then done_prior, then live`, async () => {
        const { id, token } = await newBot(app);
        const own = [];
        for (let i = 0; i < 3; i++) own.push(await postEvent(app, `bots/${id}`, vote(String(100 + i), i)));
        await postEvent(app, 'global', { m: { e: 80, t: -1 }, ctx: { user: '5', reason: 'maintenance' } });
        const global = eidsOf(await history(app, 'global'));
        const { client } = await FatesClient.ready(app, path, { id, token, bot: true, send_all: true });
        const replay = await client.eventsUntil('done_prior');
        assert.deepEqual(eidsOf(replay.events), [...own, ...global]);
        assert.equal(replay.frames, 1, 'the replay shares one frame');
        assert.equal(replay.control.detail, 'Done sending all prior messages');
        assert.equal(replay.control.requests_remaining, 18);
        if (era === 'flamepaw') {
          const chans = (replay.events as FlamepawEnvelope[]).map((e) => e.chan);
          assert.deepEqual(chans, [...own.map(() => `bot-${id}`), ...global.map(() => 'global')]);
        } else {
          for (const event of replay.events) assert.ok('m' in (event as object), 'v2 events are bare');
        }
        const live = await postEvent(app, `bots/${id}`, vote('9', 9));
        assert.deepEqual(eidsOf(await client.events()), [live]);
        await expectNothingMore(client, 'bots', id);
      });

      it(`${era}: send_all with send_none replays, says done_prior, and then sends nothing live`, async () => {
        const { id, token } = await newBot(app);
        const stored = await postEvent(app, `bots/${id}`, vote('1', 1));
        const global = eidsOf(await history(app, 'global'));
        const { client } = await FatesClient.ready(app, path, {
          id,
          token,
          bot: true,
          send_all: true,
          send_none: true,
        });
        const replay = await client.eventsUntil('done_prior');
        assert.deepEqual(eidsOf(replay.events), [stored, ...global]);
        await postEvent(app, `bots/${id}`, vote('2', 2));
        await postEvent(app, 'global', { m: { e: 81 }, ctx: { user: null } });
        await expectNothingMore(client, 'bots', id);
      });

      it(`${era}: send_none alone: ready, then nothing at all`, async () => {
        const { id, token } = await newBot(app);
        await postEvent(app, `bots/${id}`, vote('1', 1));
        const { client } = await FatesClient.ready(app, path, { id, token, bot: true, send_none: true });
        await postEvent(app, `bots/${id}`, vote('2', 2));
        await postEvent(app, 'global', { m: { e: 81 }, ctx: { user: null } });
        await expectNothingMore(client, 'bots', id);
      });
    }

    it('delivers live events in each era envelope, to the target and global only, in publish order', async () => {
      const b = await newBot(app);
      const s = await newServer(app);
      const other = await newBot(app);
      const flamepawBot = (await FatesClient.ready(app, FLAMEPAW_PATH, { id: b.id, token: b.token, bot: true })).client;
      const v2Bot = (await FatesClient.ready(app, V2_PATH, { id: b.id, token: b.token })).client;
      const flamepawServer = (await FatesClient.ready(app, '/api/dragon/ws', { id: s.id, token: s.token })).client;
      const otherBot = (await FatesClient.ready(app, V2_PATH, { id: other.id, token: other.token })).client;

      const body = vote('811073947382579200', 3);
      const eid = await postEvent(app, `bots/${b.id}`, body);
      const stored = (await history(app, `bots/${b.id}`)).at(-1) as FatesEventBody;
      assert.equal(stored.m.eid, eid);
      const dat = JSON.stringify(stored);
      assert.equal(
        (await flamepawBot.next()).raw,
        `{"chan":"bot-${b.id}","code":"event","control":false,"dat":${dat},"detail":null}${US}`,
      );
      assert.equal((await v2Bot.next()).raw, `${dat}${US}`);

      const serverEid = await postEvent(app, `servers/${s.id}`, vote('7', 1, 71));
      const serverEvent = (await flamepawServer.events()) as FlamepawEnvelope[];
      assert.equal(serverEvent[0]?.chan, `server-${s.id}`);
      assert.equal(serverEvent[0]?.dat.m.eid, serverEid);

      const globalEids = [];
      for (let i = 0; i < 3; i++) globalEids.push(await postEvent(app, 'global', { m: { e: 80 + (i % 2) }, ctx: {} }));
      for (const client of [flamepawBot, v2Bot, flamepawServer, otherBot]) {
        const events = await client.takeEvents(3);
        assert.deepEqual(eidsOf(events), globalEids);
        if (client !== v2Bot && client !== otherBot) {
          assert.deepEqual(
            (events as FlamepawEnvelope[]).map((e) => e.chan),
            ['global', 'global', 'global'],
          );
        }
      }
      // Nobody got another target's event: each one's next frame is its own next event.
      const last = await postEvent(app, 'global', { m: { e: 1 }, ctx: {} });
      for (const client of [flamepawBot, v2Bot, flamepawServer, otherBot]) {
        assert.deepEqual(eidsOf(await client.events()), [last]);
        await client.close();
      }
    });

    it('delivers an event published while the replay is read exactly once, after done_prior', async () => {
      const { id, token } = await newBot(app);
      const before1 = await postEvent(app, `bots/${id}`, vote('1', 1));
      const store = app.app.get(Store);
      const range = store.range.bind(store);
      const during: string[] = [];
      // Instrument the real store: one event lands before the history read (so it is both
      // stored and held live), one right after it (held live only).
      store.range = async (key: string): Promise<string[]> => {
        if (!key.endsWith(`bot-${id}`)) return range(key);
        store.range = range;
        during.push(await postEvent(app, `bots/${id}`, vote('2', 2)));
        const read = await range(key);
        during.push(await postEvent(app, `bots/${id}`, vote('3', 3)));
        return read;
      };
      try {
        const global = eidsOf(await history(app, 'global'));
        const { client } = await FatesClient.ready(app, V2_PATH, { id, token, send_all: true });
        const replay = await client.eventsUntil('done_prior');
        assert.deepEqual(eidsOf(replay.events), [before1, during[0], ...global]);
        assert.deepEqual(eidsOf(await client.events()), [during[1]], 'only the event the replay missed follows');
        const after1 = await postEvent(app, `bots/${id}`, vote('4', 4));
        assert.deepEqual(eidsOf(await client.events()), [after1]);
        await expectNothingMore(client, 'bots', id);
      } finally {
        store.range = range;
      }
    });

    it('loses and doubles nothing when events keep coming during identify and replay', async () => {
      const { id, token } = await newBot(app);
      for (let i = 0; i < HISTORY_LIMIT; i++) await postEvent(app, `bots/${id}`, vote(String(i), i));
      const client = await FatesClient.open(app, FLAMEPAW_PATH);
      client.send({ id, token, bot: true, send_all: true });
      const posted = await Promise.all(
        Array.from({ length: 12 }, (_, i) => postEvent(app, `bots/${id}`, vote(String(50 + i), i))),
      );
      const marker = await postEvent(app, `bots/${id}`, vote('marker', 0));
      const seen: unknown[] = [];
      for (;;) {
        const frame = await client.next();
        if (frame.kind === 'events') seen.push(...frame.events);
        if (frame.kind === 'events' && eidsOf(frame.events).includes(marker)) break;
      }
      const ownEids = eidsOf(seen.filter((e) => (e as FlamepawEnvelope).chan === `bot-${id}`));
      assert.equal(new Set(ownEids).size, ownEids.length, 'no event twice');
      for (const eid of [...posted, marker]) assert.ok(ownEids.includes(eid), `event ${eid} arrived`);
      await client.close();
    });
  });

  describe('the clients of the Fates documentation', () => {
    /**
     * The Python `Bot` class of the flamepaw era's documentation, ported line for line:
     * `_render_event` splits each message on \x1f twice, skips empty pieces, calls the
     * `default` hook, then the hook named by `code`; `identity` answers with the identify;
     * `event` builds an `EventContext(event["dat"], event["dat"]["m"]["e"], self.bot)` and
     * `parse_vote`s it.
     */
    class DocumentedBot {
      readonly defaults: Record<string, unknown>[] = [];
      readonly votes: { userId: bigint; test: boolean }[] = [];
      readonly hooks: Record<string, (event: Record<string, unknown>) => void>;

      constructor(
        readonly client: FatesClient,
        readonly botId: string,
        readonly token: string,
        readonly bot: boolean,
        readonly sendAll = true,
        readonly sendNone = false,
      ) {
        this.hooks = {
          ready: () => undefined,
          identity: () => this.identity(),
          default: (event) => this.defaults.push(event),
          event: (event) => this.onEventPayload(event),
        };
      }

      renderEvent(event: string): void {
        for (const m of event.split(US)) {
          for (const e of m.split(US)) {
            if (e === '') continue;
            const eJson = JSON.parse(e) as Record<string, unknown>;
            this.hooks['default']?.(eJson);
            this.hooks[eJson['code'] as string]?.(eJson);
          }
        }
      }

      identity(): void {
        this.client.send({
          id: String(this.botId),
          token: this.token,
          send_all: this.sendAll,
          send_none: this.sendNone,
          bot: this.bot,
        });
      }

      onEventPayload(event: Record<string, unknown>): void {
        const dat = event['dat'] as FatesEventBody;
        const vote = parseVote(dat, dat.m.e, this.bot);
        if (vote) this.votes.push(vote);
      }
    }

    function parseVote(data: FatesEventBody, event: number, bot: boolean): { userId: bigint; test: boolean } | null {
      const ctx = data.ctx as { user: string; test: boolean };
      if (event === 0 && bot) return { userId: BigInt(ctx.user), test: ctx.test };
      if (event === 71 && !bot) return { userId: BigInt(ctx.user), test: ctx.test };
      return null;
    }

    it('the Python client of the flamepaw-era documentation identifies, replays and parses votes for a bot and a server', async () => {
      for (const asBot of [true, false]) {
        const target = asBot ? await newBot(app) : await newServer(app);
        const where = `${asBot ? 'bots' : 'servers'}/${target.id}`;
        const e = asBot ? 0 : 71;
        await postEvent(app, where, vote('111', 1, e));
        await postEvent(app, where, vote('222', 2, e));
        const client = await FatesClient.open(app, '/api/flamepaw/ws/');
        const bot = new DocumentedBot(client, target.id, target.token, asBot);
        bot.renderEvent(client.frames[0] as string);
        let raw = '';
        while (!raw.includes('"done_prior"')) {
          raw = (await client.next()).raw;
          bot.renderEvent(raw);
        }
        await postEvent(app, where, vote('333', 3, e));
        bot.renderEvent((await client.next()).raw);
        assert.deepEqual(
          bot.votes,
          [111n, 222n, 333n].map((userId) => ({ userId, test: false })),
        );
        const codes = bot.defaults.map((d) => d['code']);
        assert.equal(codes[0], 'identity');
        assert.equal(codes[1], 'ready');
        assert.ok(codes.includes('done_prior'));
        await client.close();
      }
    });

    it('the receive loop of the v2-era documentation tells events (by m) from control payloads (by control)', async () => {
      const { id, token } = await newBot(app);
      await postEvent(app, `bots/${id}`, vote('1', 1));
      await postEvent(app, `bots/${id}`, vote('2', 2));
      const client = await FatesClient.open(app, V2_PATH);
      client.send({ id, token, send_all: true });
      const eventTypes: number[] = [];
      const controls: string[] = [];
      while (!controls.includes('done_prior')) {
        const event = (await client.next()).raw;
        for (const m of event.split(US)) {
          for (const e of m.split(US)) {
            if (e === '') continue;
            const eJson = JSON.parse(e) as { m?: { e: number }; control?: boolean; code?: string };
            if (eJson.m) eventTypes.push(eJson.m.e);
            else if (eJson.control) controls.push(eJson.code as string);
          }
        }
      }
      assert.deepEqual(controls, ['ready', 'done_prior']);
      assert.deepEqual(eventTypes.slice(0, 2), [0, 0]);
      await client.close();
    });

    it('parses several events sharing one frame the documented way (split on \\x1f, skip empty)', async () => {
      const { id, token } = await newBot(app);
      for (let i = 0; i < 4; i++) await postEvent(app, `bots/${id}`, vote(String(i), i));
      const { client } = await FatesClient.ready(app, FLAMEPAW_PATH, { id, token, bot: true, send_all: true });
      const frame = await client.next();
      assert.equal(frame.kind, 'events');
      assert.ok(frame.raw.includes(`}${US}${US}{`), 'the original write pump pattern: A\\x1f\\x1fB\\x1f');
      const events = splitEvents(frame.raw) as FlamepawEnvelope[];
      assert.ok(events.length >= 4);
      assert.deepEqual(
        events.slice(0, 4).map((e) => e.dat.ctx['votes']),
        [0, 1, 2, 3],
      );
      await client.close();
    });
  });

  describe('admin API', () => {
    it('requires the admin token on every route', async () => {
      const id = snowflake();
      const routes: ['put' | 'delete' | 'post' | 'get', string][] = [
        ['put', `/admin/fates/bots/${id}/token`],
        ['put', `/admin/fates/servers/${id}/token`],
        ['delete', `/admin/fates/bots/${id}/token`],
        ['delete', `/admin/fates/servers/${id}/token`],
        ['post', `/admin/fates/bots/${id}/events`],
        ['post', `/admin/fates/servers/${id}/events`],
        ['post', '/admin/fates/global/events'],
        ['get', `/admin/fates/bots/${id}/events`],
        ['get', `/admin/fates/servers/${id}/events`],
        ['get', '/admin/fates/global/events'],
      ];
      for (const [method, path] of routes) {
        const answer = await request(app.http)
          [method](path)
          .set('Authorization', 'Bearer wrong-token-0123456789')
          .send({ token: 'x', m: { e: 0 }, ctx: {} });
        assert.equal(answer.status, 401, `${method} ${path}`);
      }
      for (const [method, path] of routes.slice(0, 2)) {
        const answer = await request(app.http)[method](path).send({ token: 'x' });
        assert.equal(answer.status, 401, `${method} ${path} without a token`);
      }
      assert.deepEqual(await history(app, `bots/${id}`), [], 'nothing was stored');
    });

    it('stores tokens hashed and validates the body and the id', async () => {
      const id = snowflake();
      await setToken(app, 'bots', id, 'plain-token-value');
      assert.equal(await app.app.get(Store).get(`fates:token:bot:${id}`), hashToken('plain-token-value'));
      for (const body of [{}, { token: '' }, { token: 5 }, { token: 'x'.repeat(513) }, { token: 'a', extra: 1 }]) {
        const answer = await request(app.http).put(`/admin/fates/bots/${id}/token`).set(adminAuth).send(body);
        assert.equal(answer.status, 400, JSON.stringify(body));
        assert.ok(Array.isArray((answer.body as { message: unknown }).message));
      }
      const notSnowflake = await request(app.http)
        .put('/admin/fates/bots/12ab/token')
        .set(adminAuth)
        .send({ token: 'x' });
      assert.equal(notSnowflake.status, 400);
      const tooLong = await request(app.http)
        .get(`/admin/fates/servers/${'1'.repeat(21)}/events`)
        .set(adminAuth);
      assert.equal(tooLong.status, 400);
    });

    it('deletes tokens: 204, then 404; the id can no longer identify', async () => {
      const { id, token } = await newServer(app);
      assert.equal(await deleteToken(app, 'servers', id), 204);
      assert.equal(await deleteToken(app, 'servers', id), 404);
      const client = await FatesClient.open(app, FLAMEPAW_PATH);
      assert.equal((await client.identify({ id, token })).code, 'invalid_auth');
      await client.expectClose(4004);
    });

    it('accepts events with 202 {eid}, setting m.eid and m.ts unless given, and keeps extra keys', async () => {
      const { id } = await newBot(app);
      const t0 = Date.now() / 1000;
      const eid = await postEvent(app, `bots/${id}`, { ...vote('5', 1), extra: { kept: true } });
      assert.match(eid, UUID_V4);
      const given = await postEvent(app, `bots/${id}`, {
        m: { e: 17, eid: 'my-own-id', ts: 12.5 },
        ctx: { user: '5', api: true },
      });
      assert.equal(given, 'my-own-id');
      const events = await history(app, `bots/${id}`);
      assert.equal(events.length, 2);
      const [first, second] = events as [FatesEventBody, FatesEventBody];
      assert.equal(first.m.eid, eid);
      assert.equal(typeof first.m.ts, 'number');
      assert.ok((first.m.ts as number) >= t0 - 1 && (first.m.ts as number) <= Date.now() / 1000 + 1);
      assert.deepEqual(first['extra'], { kept: true });
      assert.equal(first.m.t, -1);
      assert.deepEqual(second, { m: { e: 17, eid: 'my-own-id', ts: 12.5 }, ctx: { user: '5', api: true } });
    });

    it('refuses bad event bodies with one message per field, and unknown ids with 404', async () => {
      const { id } = await newBot(app);
      const bad = await request(app.http)
        .post(`/admin/fates/bots/${id}/events`)
        .set(adminAuth)
        .send({ m: { e: 'vote', t: 'x' } });
      assert.equal(bad.status, 400);
      assert.deepEqual((bad.body as { message: string[] }).message, [
        'm.e: must be an integer',
        'm.t: must be an integer',
        'ctx: must be an object',
      ]);
      const unknown = await request(app.http)
        .post(`/admin/fates/servers/${snowflake()}/events`)
        .set(adminAuth)
        .send(vote('1', 1, 71));
      assert.equal(unknown.status, 404);
      assert.deepEqual(await history(app, `bots/${id}`), []);
    });

    it('keeps the newest FATES_HISTORY_LIMIT events, oldest first; an id with none has an empty list', async () => {
      const { id } = await newBot(app);
      const eids = [];
      for (let i = 0; i < HISTORY_LIMIT + 3; i++) eids.push(await postEvent(app, `bots/${id}`, vote(String(i), i)));
      assert.deepEqual(eidsOf(await history(app, `bots/${id}`)), eids.slice(3));
      assert.deepEqual(await history(app, `servers/${snowflake()}`), []);
      assert.ok((await history(app, 'global')).length <= HISTORY_LIMIT);
    });

    it('documents its routes in the OpenAPI document', async () => {
      const answer = await request(app.http).get('/admin/openapi.json').set(adminAuth);
      assert.equal(answer.status, 200);
      const paths = (answer.body as { paths: Record<string, Record<string, unknown>> }).paths;
      for (const path of [
        '/admin/fates/bots/{id}/token',
        '/admin/fates/servers/{id}/token',
        '/admin/fates/bots/{id}/events',
        '/admin/fates/servers/{id}/events',
        '/admin/fates/global/events',
      ]) {
        assert.ok(paths[path], path);
      }
      assert.deepEqual(Object.keys(paths['/admin/fates/bots/{id}/token'] ?? {}).sort(), ['delete', 'put']);
      assert.ok(paths['/admin/fates/global/events']?.['post']);
    });
  });
});
