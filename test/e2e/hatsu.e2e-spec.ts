import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { HatsuModule } from '../../src/protocols/hatsu/hatsu.module.js';
import { startApp, type TestApp } from '../helpers/app.js';
import {
  connectHatsu,
  dispatch,
  HatsuClient,
  HELLO_INFO,
  newUser,
  putGuild,
  putSession,
  ULID,
  ulidTime,
  type HatsuMessage,
} from '../helpers/hatsu-client.js';
import { admin } from '../helpers/http.js';
import { snowflake } from '../helpers/ids.js';

describe('hatsu gateway', () => {
  let app: TestApp;
  const clients: HatsuClient[] = [];

  /** A user with a session id of its own. */
  const user = (fields: Record<string, unknown> = {}): Promise<{ userId: string; sessionId: string }> =>
    newUser(app, { fields });

  async function open(path = '/hatsu'): Promise<HatsuClient> {
    const client = await HatsuClient.connect(app.ws(path));
    clients.push(client);
    return client;
  }

  async function connect(sessionId: string, options: Parameters<typeof connectHatsu>[2] = {}): Promise<HatsuClient> {
    const client = await connectHatsu(app, sessionId, options);
    clients.push(client);
    return client;
  }

  /** Identifies with `identify` (raw) and expects the close. */
  async function closesWith(identify: unknown, code: number, reason: string): Promise<void> {
    const client = await open();
    client.send(identify);
    assert.deepEqual(await client.waitClose(), { code, reason });
  }

  before(async () => {
    app = await startApp({}, { protocols: [HatsuModule] });
  });

  after(async () => {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    await app.close();
  });

  describe('identify', () => {
    it('closes 4002 "Invalid Payload Type" for anything but a JSON object', async () => {
      for (const frame of ['not json', '{"session_id":', '[]', '42', '"session"', 'null']) {
        await closesWith(frame, 4002, 'Invalid Payload Type');
      }
    });

    it('closes 4004 "Invalid encoding" for an encoding other than json or zlib', async () => {
      const { sessionId } = await user();
      for (const encoding of ['xml', 'ZLIB', null, 1]) {
        await closesWith({ session_id: sessionId, encoding }, 4004, 'Invalid encoding');
      }
    });

    it('closes 4002 "Invalid authorization" for a missing, wrong-typed or unknown session id', async () => {
      for (const identify of [{}, { session_id: 42 }, { session_id: '' }, { session_id: 'no-such-session' }]) {
        await closesWith(identify, 4002, 'Invalid authorization');
      }
    });

    it('closes 4001 "Presence has to be a bool." for a presences that is not a bool', async () => {
      const { sessionId } = await user();
      for (const presences of ['yes', 1, null, {}]) {
        await closesWith({ session_id: sessionId, presences }, 4001, 'Presence has to be a bool.');
      }
    });

    it('checks in the original order: encoding, then session, then presences', async () => {
      const { sessionId } = await user();
      await closesWith({ session_id: 'unknown', encoding: 'xml', presences: 'x' }, 4004, 'Invalid encoding');
      await closesWith({ session_id: 'unknown', presences: 'x' }, 4002, 'Invalid authorization');
      await closesWith({ session_id: sessionId, presences: 'x' }, 4001, 'Presence has to be a bool.');
    });

    it('sends HELLO, READY and one GUILD_INIT per guild the user is a member of, in join order', async () => {
      const { userId, sessionId } = await user({ username: 'vincent', flags: 4, extra: { nested: true } });
      const other = snowflake();
      const [g1, g2, g3] = [snowflake(), snowflake(), snowflake()];
      await putGuild(app, g1, [userId, other], [{ id: '11', name: 'general', type: 2 }]);
      await putGuild(app, g2, [other]);
      await putGuild(
        app,
        g3,
        [other, userId],
        [
          { id: '31', name: 'cat', type: 1 },
          { id: '32', name: 'text', type: 2, inside_of: '31' },
        ],
      );
      const started = Date.now();
      const client = await open();
      client.identify(sessionId);
      const { hello, ready, inits } = await client.ready(2);

      assert.deepEqual(Object.keys(hello).sort(), ['d', 'i', 's', 't']);
      assert.equal(hello.d, null);
      assert.equal(hello.i, HELLO_INFO);
      assert.match(hello.s as string, ULID);
      assert.ok(Math.abs(ulidTime(hello.s as string) - started) < 5000);

      assert.deepEqual(ready, {
        t: 'READY',
        s: sessionId,
        i: null,
        d: {
          _id: userId,
          username: 'vincent',
          separator: '0001',
          avatar_url: null,
          banner_url: null,
          flags: 4,
          verified: true,
          system: false,
          extra: { nested: true },
        },
      });

      assert.deepEqual(
        inits.map((m) => ({ ...m, s: undefined })),
        [
          {
            t: 'GUILD_INIT',
            s: undefined,
            i: '',
            d: { _id: g1, name: `guild-${g1}`, description: null, channels: [{ id: '11', name: 'general', type: 2 }] },
          },
          {
            t: 'GUILD_INIT',
            s: undefined,
            i: '',
            d: {
              _id: g3,
              name: `guild-${g3}`,
              description: null,
              channels: [
                { id: '31', name: 'cat', type: 1 },
                { id: '32', name: 'text', type: 2, inside_of: '31' },
              ],
            },
          },
        ],
      );
      for (const init of inits) assert.match(init.s as string, ULID);
      assert.notEqual(inits[0]?.s, inits[1]?.s);
      // No third GUILD_INIT (g2) and no artificial delay before READY.
      await client.expectNothingPending();
      assert.ok(Date.now() - started < 3000);
    });

    it('leaves out guilds the user was removed from, and reflects a later PUT of the guild', async () => {
      const { userId, sessionId } = await user();
      const [g1, g2] = [snowflake(), snowflake()];
      await putGuild(app, g1, [userId]);
      await putGuild(app, g2, [userId]);
      await putGuild(app, g1, []);
      const client = await connect(sessionId, { guilds: 0 });
      const init = await client.expect('GUILD_INIT');
      assert.equal((init.d as { _id: string })._id, g2);
      await client.expectNothingPending();
    });

    it('accepts a user with no guilds (READY, no GUILD_INIT) and the path with a slash and a query', async () => {
      const { sessionId } = await user();
      const client = await open('/hatsu/?v=1');
      client.identify(sessionId, { encoding: 'json', presences: true });
      await client.ready(0);
      await client.expectNothingPending('x');
    });

    it('handles messages sent right behind the identify, after READY, in order', async () => {
      const { sessionId } = await user();
      const client = await open();
      client.identify(sessionId);
      client.send({ t: 'HEARTBEAT', s: 1 });
      client.send({ t: 'HEARTBEAT', s: 2 });
      await client.ready(0);
      assert.equal((await client.expect('ACK')).s, 1);
      assert.equal((await client.expect('ACK')).s, 2);
    });
  });

  describe('client messages', () => {
    it('answers HEARTBEAT with ACK echoing s, with _s the session id', async () => {
      const { sessionId } = await user();
      const client = await connect(sessionId);
      for (const s of [7, 'abc', { deep: [1, 2] }, null]) {
        client.send({ t: 'HEARTBEAT', s });
        assert.deepEqual(await client.next(), { t: 'ACK', _s: sessionId, s, d: null });
      }
      client.send({ t: 'HEARTBEAT' });
      assert.deepEqual(await client.next(), { t: 'ACK', _s: sessionId, s: null, d: null });
    });

    it('ignores an unknown t, a t that is not a string, and a client NOTIFICATION', async () => {
      const { sessionId } = await user();
      const client = await connect(sessionId);
      client.send({ t: 'WHATEVER', d: 1 });
      client.send({ t: 5 });
      client.send({ nothing: true });
      client.send({ t: 'NOTIFICATION', type: 'FRIEND_REQUEST', excerpt: {}, id: '1' });
      await client.expectNothingPending();
    });

    for (const t of ['DISPATCH', 'DISPATCH_TO', 'DISPATCH_TO_GUILD']) {
      it(`closes 4004 "Invalid Dispatch Sent" on a client ${t}`, async () => {
        const { sessionId } = await user();
        const client = await connect(sessionId);
        client.send({ t, d: { name: 'GUILD_DELETE', data: null } });
        assert.deepEqual(await client.waitClose(), { code: 4004, reason: 'Invalid Dispatch Sent' });
      });
    }

    it('closes 4002 "Invalid Payload Type" on bad JSON or a non-object after identify', async () => {
      for (const frame of ['{oops', '[1,2]']) {
        const { sessionId } = await user();
        const client = await connect(sessionId);
        client.send(frame);
        assert.deepEqual(await client.waitClose(), { code: 4002, reason: 'Invalid Payload Type' });
      }
    });
  });

  describe('dispatch', () => {
    /** Three members of one guild (one with two sessions), a user outside it. */
    async function world(): Promise<{
      guild: string;
      a: HatsuClient;
      a2: HatsuClient;
      b: HatsuClient;
      outsider: HatsuClient;
      userA: string;
    }> {
      const ua = await user();
      const ub = await user();
      const uo = await user();
      const guild = snowflake();
      await putGuild(app, guild, [ua.userId, ub.userId]);
      const a = await connect(ua.sessionId, { guilds: 1 });
      const a2 = await connect(ua.sessionId, { guilds: 1 });
      const b = await connect(ub.sessionId, { guilds: 1 });
      const outsider = await connect(uo.sessionId);
      return { guild, a, a2, b, outsider, userA: ua.userId };
    }

    it('sends to every session of the guild members, and nobody else', async () => {
      const { guild, a, a2, b, outsider } = await world();
      const d = { name: 'renamed', description: 'new' };
      assert.equal(await dispatch(app, { t: 'GUILD_UPDATE', d, to: { guild_id: guild } }), 3);
      for (const client of [a, a2, b]) assert.deepEqual(await client.next(), { t: 'GUILD_UPDATE', d });
      // The outsider's next message is its own ACK: the dispatch never reached it.
      await outsider.expectNothingPending();
      for (const client of [a, a2, b]) await client.expectNothingPending();
    });

    it('sends to every session of one user', async () => {
      const { a, a2, b, outsider, userA } = await world();
      assert.equal(await dispatch(app, { t: 'GUILD_CREATE', d: { _id: '5' }, to: { user_id: userA } }), 2);
      for (const client of [a, a2]) assert.deepEqual(await client.next(), { t: 'GUILD_CREATE', d: { _id: '5' } });
      await b.expectNothingPending();
      await outsider.expectNothingPending();
    });

    it('sends to everyone, and d defaults to null', async () => {
      const { a, a2, b, outsider } = await world();
      const unidentified = await open();
      const sent = await dispatch(app, { t: 'CHANNEL_CREATE', to: { all: true } });
      assert.ok(sent >= 4, `sent to ${sent}`);
      for (const client of [a, a2, b, outsider])
        assert.deepEqual(await client.next(), { t: 'CHANNEL_CREATE', d: null });
      // A socket that has not identified gets nothing: its first message is READY's HELLO.
      const { sessionId } = await user();
      unidentified.identify(sessionId);
      await unidentified.ready(0);
      await unidentified.expectNothingPending();
    });

    it('reports 0 sessions for a guild or user with nobody connected', async () => {
      const lonely = await user();
      const guild = snowflake();
      await putGuild(app, guild, [lonely.userId]);
      assert.equal(await dispatch(app, { t: 'GUILD_DELETE', d: null, to: { guild_id: guild } }), 0);
      assert.equal(await dispatch(app, { t: 'GUILD_DELETE', d: null, to: { user_id: lonely.userId } }), 0);
    });

    it('sends NOTIFICATION with type and excerpt at top level and no d', async () => {
      const { a, a2, userA } = await world();
      const excerpt = { from: '77', username: 'friend' };
      const sent = await dispatch(app, { t: 'NOTIFICATION', type: 'FRIEND_REQUEST', excerpt, to: { user_id: userA } });
      assert.equal(sent, 2);
      for (const client of [a, a2]) {
        assert.deepEqual(await client.next(), { t: 'NOTIFICATION', type: 'FRIEND_REQUEST', excerpt });
      }
    });

    it('follows membership changes of live sessions at once', async () => {
      const { guild, a, a2, b, outsider, userA } = await world();
      const joiner = await user();
      const joinerClient = await connect(joiner.sessionId);
      const members = [userA, joiner.userId];
      // b leaves, the joiner (already connected) joins.
      await putGuild(app, guild, members);
      assert.equal(await dispatch(app, { t: 'GUILD_JOIN', d: { guild_id: guild }, to: { guild_id: guild } }), 3);
      for (const client of [a, a2, joinerClient]) {
        assert.deepEqual(await client.next(), { t: 'GUILD_JOIN', d: { guild_id: guild } });
      }
      await b.expectNothingPending();
      await outsider.expectNothingPending();
    });
  });

  describe('presence', () => {
    it('fans PRESENCE_UPDATE out to sessions sharing a guild, except those with presences false', async () => {
      const sender = await user();
      const watcher = await user();
      const quiet = await user();
      const stranger = await user();
      const [g1, g2] = [snowflake(), snowflake()];
      await putGuild(app, g1, [sender.userId, watcher.userId]);
      await putGuild(app, g2, [sender.userId, quiet.userId, watcher.userId]);
      const s = await connect(sender.sessionId, { guilds: 2 });
      const w = await connect(watcher.sessionId, { guilds: 2, presences: true });
      const q = await connect(quiet.sessionId, { guilds: 1, presences: false });
      const x = await connect(stranger.sessionId);

      s.send({
        t: 'PRESENCE',
        type: 2,
        description: 'playing',
        emoji: '123',
        embed: { name: 'n', description: 'd', banner_url: 'https://b', top_text: 'top', bottom_text: 'bottom' },
      });
      const expected: HatsuMessage = {
        t: 'PRESENCE_UPDATE',
        id: sender.userId,
        _id: sender.userId,
        d: {
          type: 2,
          description: 'playing',
          emoji: '123',
          embed: { name: 'n', description: 'd', banner_url: 'https://b', text: { top: 'top', bottom: 'bottom' } },
        },
      };
      // Once per session, though the watcher shares two guilds with the sender.
      assert.deepEqual(await w.next(), expected);
      assert.deepEqual(await s.next(), expected);
      await w.expectNothingPending();
      await q.expectNothingPending();
      await x.expectNothingPending();

      // An admin PRESENCE_UPDATE honours the flag too.
      const sent = await dispatch(app, {
        t: 'PRESENCE_UPDATE',
        id: sender.userId,
        d: { type: 1 },
        to: { guild_id: g2 },
      });
      assert.equal(sent, 2);
      for (const client of [s, w]) {
        assert.deepEqual(await client.next(), {
          t: 'PRESENCE_UPDATE',
          id: sender.userId,
          _id: sender.userId,
          d: { type: 1 },
        });
      }
      await q.expectNothingPending();
    });

    it('counts every presence dispatch exactly (guild, user, everyone), leaving out presences false', async () => {
      const open1 = await user();
      const quiet = await user();
      const guild = snowflake();
      await putGuild(app, guild, [open1.userId, quiet.userId]);
      const plain = await connect(open1.sessionId, { guilds: 1 });
      const packed = await connect(open1.sessionId, { guilds: 1, encoding: 'zlib' });
      const q = await connect(quiet.sessionId, { guilds: 1, presences: false });
      const update = (d: unknown): HatsuMessage => ({ t: 'PRESENCE_UPDATE', id: quiet.userId, _id: quiet.userId, d });
      const send = (d: unknown, to: Record<string, unknown>): Promise<number> =>
        dispatch(app, { t: 'PRESENCE_UPDATE', id: quiet.userId, d, to });

      assert.equal(await send({ n: 1 }, { guild_id: guild }), 2);
      assert.equal(await send({ n: 2 }, { user_id: open1.userId }), 2);
      assert.equal(await send({ n: 3 }, { user_id: quiet.userId }), 0);
      // Everyone: as many as the registry lists identified sessions accepting presences.
      const listed = await admin(app, 'GET', '/admin/connections?protocol=hatsu&limit=1000');
      const view = (listed.json as { clients: { user: string | null; channels: string[] }[] }).clients;
      const accepting = view.filter((c) => c.user !== null && c.channels.includes('presences')).length;
      assert.ok(accepting >= 2);
      assert.equal(await send({ n: 4 }, { all: true }), accepting);
      assert.equal(await dispatch(app, { t: 'PING', to: { all: true } }), view.filter((c) => c.user !== null).length);
      for (const client of [plain, packed]) {
        for (const n of [1, 2, 4]) assert.deepEqual(await client.next(), update({ n }));
        assert.deepEqual(await client.next(), { t: 'PING', d: null });
        await client.expectNothingPending();
      }
      assert.deepEqual(await q.next(), { t: 'PING', d: null });
      await q.expectNothingPending();
    });

    it('ignores a PRESENCE whose type is not 1 to 4 or whose fields have the wrong type', async () => {
      const sender = await user();
      const watcher = await user();
      const guild = snowflake();
      await putGuild(app, guild, [sender.userId, watcher.userId]);
      const s = await connect(sender.sessionId, { guilds: 1 });
      const w = await connect(watcher.sessionId, { guilds: 1 });
      for (const bad of [
        { type: 5 },
        { type: '1' },
        { type: 1, description: 5 },
        { type: 1, embed: 'x' },
        { type: 1, embed: { name: 1 } },
        { type: 1, description: 'x'.repeat(2000) },
      ]) {
        s.send({ t: 'PRESENCE', ...bad });
      }
      await s.expectNothingPending();
      s.send({ t: 'PRESENCE', type: 4 });
      assert.deepEqual(await w.next(), {
        t: 'PRESENCE_UPDATE',
        id: sender.userId,
        _id: sender.userId,
        d: { type: 4, description: null, emoji: null, embed: null },
      });
    });
  });

  describe('zlib', () => {
    it('sends every message as one binary message a single inflate context reads, large ones included', async () => {
      const { userId, sessionId } = await user();
      const guild = snowflake();
      await putGuild(app, guild, [userId]);
      const client = await open();
      client.identify(sessionId, { encoding: 'zlib' });
      const { ready } = await client.ready(1);
      assert.equal(ready.s, sessionId);

      // 100 KB payloads (several deflate blocks and windows each), small ones between them.
      const expected: unknown[] = [];
      for (let i = 0; i < 40; i++) {
        const big = i % 4 === 0;
        const d = big
          ? { i, blob: Buffer.alloc(75_000, i).toString('base64'), text: `${'lorem ipsum '.repeat(2000)}${i}` }
          : { i, name: `event ${i}` };
        expected.push(d);
        await dispatch(app, { t: 'GUILD_UPDATE', d, to: { guild_id: guild } });
      }
      for (const d of expected) assert.deepEqual(await client.next(), { t: 'GUILD_UPDATE', d });
      await client.expectNothingPending('zlib');
      // HELLO, READY, GUILD_INIT, 40 events and the ACK: one binary message each.
      assert.equal(client.binarySizes.length, 44);
      // The large events left compressed (well under their ~200 KB of JSON).
      assert.ok(Math.max(...client.binarySizes) < 150_000);
    });

    it('closes only after the messages queued before the close went out (found by test/fuzz)', async () => {
      // A DISPATCH right behind the identify: HELLO and READY are still being compressed when
      // it is handled; the 4004 used to overtake them, so the client never saw them.
      const { sessionId } = await user();
      const early = await open();
      early.identify(sessionId, { encoding: 'zlib' });
      early.send({ t: 'DISPATCH', d: {} });
      await early.ready(0);
      assert.deepEqual(await early.waitClose(), { code: 4004, reason: 'Invalid Dispatch Sent' });
      // The same after READY: every ACK asked for before the bad frame arrives before the close.
      const late = await connect(sessionId, { encoding: 'zlib' });
      for (let i = 0; i < 5; i++) late.send({ t: 'HEARTBEAT', s: i });
      late.send('{oops');
      for (let i = 0; i < 5; i++) assert.equal((await late.expect('ACK')).s, i);
      assert.deepEqual(await late.waitClose(), { code: 4002, reason: 'Invalid Payload Type' });
    });

    it('compresses ACKs and presence updates too, in order with events', async () => {
      const { userId, sessionId } = await user();
      const guild = snowflake();
      await putGuild(app, guild, [userId]);
      const client = await connectHatsu(app, sessionId, { encoding: 'zlib', guilds: 1 });
      clients.push(client);
      client.send({ t: 'PRESENCE', type: 1, description: 'hi' });
      const update = await client.expect('PRESENCE_UPDATE');
      assert.equal(update['_id'], userId);
      for (let i = 0; i < 20; i++) client.send({ t: 'HEARTBEAT', s: i });
      for (let i = 0; i < 20; i++) assert.equal((await client.expect('ACK')).s, i);
    });
  });

  describe('revocation', () => {
    it('DELETE of a session closes its live connections 4002 "Invalid authorization" and refuses it after', async () => {
      const { sessionId } = await user();
      const first = await connect(sessionId);
      const second = await connect(sessionId);
      const answer = await admin(app, 'DELETE', `/admin/hatsu/sessions/${sessionId}`);
      assert.equal(answer.status, 204, answer.text);
      assert.deepEqual(await first.waitClose(), { code: 4002, reason: 'Invalid authorization' });
      assert.deepEqual(await second.waitClose(), { code: 4002, reason: 'Invalid authorization' });
      await closesWith({ session_id: sessionId }, 4002, 'Invalid authorization');
      assert.equal((await admin(app, 'DELETE', `/admin/hatsu/sessions/${sessionId}`)).status, 404);
    });

    it('re-binding a session to another user closes connections identified as the previous one', async () => {
      const one = await user();
      const two = await user();
      const client = await connect(one.sessionId);
      await putSession(app, one.sessionId, one.userId);
      await client.expectNothingPending();
      await putSession(app, one.sessionId, two.userId);
      assert.deepEqual(await client.waitClose(), { code: 4002, reason: 'Invalid authorization' });
      const again = await open();
      again.identify(one.sessionId);
      const { ready } = await again.ready(0);
      assert.equal((ready.d as { _id: string })._id, two.userId);
    });
  });
});
