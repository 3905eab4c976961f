import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, afterEach, before, describe, it } from 'node:test';
import { Injectable, Module } from '@nestjs/common';
import { Type } from 'class-transformer';
import { IsInt, IsString, Min, ValidateNested } from 'class-validator';
import type { ClientOptions } from 'ws';
import { JacModule } from '../../src/protocols/jac/jac.module.js';
import { Walker } from '../../src/protocols/jac/walkers/walker.decorator.js';
import type { WalkerRun } from '../../src/protocols/jac/walkers/walker-run.js';
import { startApp, type TestApp } from '../helpers/app.js';
import { request, STACK_FRAME, type HttpResponse } from '../helpers/http.js';
import {
  issue as issueThroughApi,
  JAC_ID,
  PUBLIC_ROOT,
  signJwt as makeJwt,
  type ConnectionData,
} from '../helpers/jac-client.js';
import { WsTestClient } from '../helpers/ws-client.js';

// ---- constants -------------------------------------------------------------------------

const ROOT_ID = /^n::[0-9a-f]{24}$/;
/** The chat message the shipped example walkers (`examples/chat.walkers.ts`) send. */
const CHAT = JSON.stringify({ type: 'chat', data: { message: 'string' } });
/** Text only the test walker's exception carries; a reply containing it leaked internals. */
const WALKER_SECRET = 'db password hunter2';

// ---- test-only walkers ------------------------------------------------------------------

class EchoContext {
  @IsString()
  text!: string;

  @IsInt()
  @Min(0)
  count!: number;
}

class Item {
  @IsString()
  name!: string;
}

/** Validated item by item: one problem per bad item. */
class ItemsContext {
  @ValidateNested({ each: true })
  @Type(() => Item)
  items!: Item[];
}

@Injectable()
class TestWalkers {
  @Walker({ name: 'test_items', auth: false, context: ItemsContext })
  items(context: ItemsContext, run: WalkerRun): void {
    run.report(context.items.length);
  }

  @Walker({ name: 'test_throws', auth: false })
  throws(): void {
    throw new Error(`${WALKER_SECRET} at Object.<anonymous> (/srv/walkers.ts:10:5)`);
  }

  @Walker({ name: 'test_rejects', auth: false })
  async rejects(): Promise<void> {
    await Promise.resolve();
    throw new Error(WALKER_SECRET);
  }

  @Walker({ name: 'test_reports', context: EchoContext })
  reports(context: EchoContext, run: WalkerRun): void {
    run.report({ text: context.text, count: context.count });
    run.report({ root_id: run.rootId, node: run.node });
  }

  @Walker({ name: 'test_public', auth: false })
  publicWalker(_context: Record<string, unknown>, run: WalkerRun): void {
    run.notifySelf({ type: 'progress', progress: '0%' });
    run.report('public ok');
  }

  @Walker({ name: 'test_ws_only', auth: false, methods: ['websocket'] })
  wsOnly(_context: Record<string, unknown>, run: WalkerRun): void {
    run.report('ws only');
  }
}

@Module({ providers: [TestWalkers] })
class TestWalkersModule {}

// ---- helpers ----------------------------------------------------------------------------

interface ConnectionEvent {
  type: 'connection';
  data: ConnectionData;
}

interface ErrorEntry {
  loc: (string | number)[];
  msg: string;
}

interface Issued {
  token: string;
  root_id: string;
}

/** A connected client and what its connection event said. */
interface Jac {
  c: WsTestClient;
  info: ConnectionData;
}

/** Every token the suite has used: no frame may ever contain one. */
const secrets = new Set<string>();
/** Clients opened by the current test; closed after it. */
const opened: WsTestClient[] = [];

function assertClean(text: string): void {
  assert.doesNotMatch(text, STACK_FRAME, `a reply carried a stack frame: ${text.slice(0, 200)}`);
  assert.ok(!text.includes(WALKER_SECRET), 'a reply carried an exception message');
  for (const secret of secrets) assert.ok(!text.includes(secret), 'a reply echoed a token');
}

/** The next frame as text, checked to be a clean text frame. */
async function recv(c: WsTestClient): Promise<string> {
  const message = await c.nextRaw();
  assert.equal(message.isBinary, false, 'jac frames are text');
  const text = message.data.toString('utf8');
  assertClean(text);
  return text;
}

async function recvJson<T>(c: WsTestClient): Promise<T> {
  return JSON.parse(await recv(c)) as T;
}

/** The next frame is exactly these bytes. */
async function expectFrame(c: WsTestClient, expected: string): Promise<void> {
  assert.equal(await recv(c), expected);
}

/** The next frame is an error list whose first entry is at `loc`; returns every entry. */
async function expectError(c: WsTestClient, loc: (string | number)[]): Promise<ErrorEntry[]> {
  const reply = await recvJson<Record<string, unknown>>(c);
  assert.deepEqual(Object.keys(reply), ['error'], `expected an error reply, got ${JSON.stringify(reply)}`);
  const entries = reply['error'] as ErrorEntry[];
  assert.ok(Array.isArray(entries) && entries.length > 0);
  for (const entry of entries) {
    assert.deepEqual(Object.keys(entry).sort(), ['loc', 'msg']);
    assert.ok(Array.isArray(entry.loc));
    assert.equal(typeof entry.msg, 'string');
    assert.ok(entry.msg.length > 0);
  }
  assert.deepEqual(entries[0]?.loc, loc);
  return entries;
}

/** The socket still works: a `connection` event is answered with its connection event. */
async function expectAlive(jac: Jac): Promise<void> {
  jac.c.send({ type: 'connection' });
  assert.deepEqual(await recvJson<ConnectionEvent>(jac.c), { type: 'connection', data: jac.info });
}

interface ConnectOptions {
  /** Sent as `Authorization: Bearer <token>`. */
  token?: string;
  /** The raw `Authorization` header (wins over `token`). */
  authorization?: string;
  /** Appended to `/websocket`, e.g. `?channel_id=x`. */
  query?: string;
  options?: ClientOptions;
}

async function connect(app: TestApp, opts: ConnectOptions = {}): Promise<Jac> {
  const headers: Record<string, string> = {};
  if (opts.authorization !== undefined) headers['Authorization'] = opts.authorization;
  else if (opts.token !== undefined) headers['Authorization'] = `Bearer ${opts.token}`;
  const c = await WsTestClient.connect(app.ws(`/websocket${opts.query ?? ''}`), { ...opts.options, headers });
  opened.push(c);
  const event = await recvJson<ConnectionEvent>(c);
  assert.equal(event.type, 'connection');
  return { c, info: event.data };
}

/** `POST /admin/jac/tokens`, keeping the token among the secrets no frame may contain. */
async function issue(app: TestApp, body: Record<string, unknown> = {}): Promise<Issued> {
  const issued = await issueThroughApi(app, body);
  secrets.add(issued.token);
  return issued;
}

/** `signJwt`, keeping the token among the secrets no frame may contain. */
function signJwt(claims: Record<string, unknown>, secret?: string): string {
  const token = makeJwt(claims, secret);
  secrets.add(token);
  return token;
}

const nowS = (): number => Math.floor(Date.now() / 1000);

function assertHttpClean(res: HttpResponse): void {
  assertClean(res.text);
  assert.match(String(res.headers['content-type']), /application\/json/);
}

// ---- the suite --------------------------------------------------------------------------

describe('jac (embedded engine)', () => {
  let app: TestApp;

  before(async () => {
    // Every client here comes from 127.0.0.1 and many present bad tokens on purpose; the
    // per-IP failed-authentication throttle is not what this suite is about.
    // Frames up to WS_MAX_PAYLOAD (1 MiB) and a budget to match, to show the id and reply caps.
    app = await startApp(
      { AUTH_FAILURE_LIMIT: '0', JAC_MAX_PAYLOAD: '1048576', WS_INBOUND_BYTES_BURST: '4194304' },
      { protocols: [JacModule, TestWalkersModule] },
    );
  });
  after(() => app.close());
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((c) => c.close()));
  });

  describe('connection event', () => {
    it('gives a public socket the public root, a fresh client id and a fresh channel', async () => {
      const c = await WsTestClient.connect(app.ws('/websocket'));
      opened.push(c);
      const raw = await recv(c);
      const event = JSON.parse(raw) as ConnectionEvent;
      assert.deepEqual(Object.keys(event), ['type', 'data']);
      assert.equal(event.type, 'connection');
      assert.deepEqual(Object.keys(event.data), ['client_id', 'root_id', 'channel_id']);
      assert.match(event.data.client_id, JAC_ID);
      assert.match(event.data.channel_id, JAC_ID);
      assert.notEqual(event.data.channel_id, event.data.client_id);
      assert.equal(event.data.root_id, PUBLIC_ROOT);
      // The seconds part is the current time.
      const seconds = Number(event.data.client_id.split(':')[0]);
      assert.ok(Math.abs(seconds - nowS()) <= 5, `client id time ${seconds} is not now`);
    });

    it('gives every socket its own client id and channel', async () => {
      const [a, b] = await Promise.all([connect(app), connect(app)]);
      assert.notEqual(a.info.client_id, b.info.client_id);
      assert.notEqual(a.info.channel_id, b.info.channel_id);
    });

    it('honours ?channel_id=', async () => {
      const a = await connect(app, { query: '?channel_id=room-42' });
      assert.equal(a.info.channel_id, 'room-42');
      const b = await connect(app, { query: '?channel_id=a%20b%2Fc&other=1' });
      assert.equal(b.info.channel_id, 'a b/c');
      assert.match(a.info.client_id, JAC_ID);
    });

    it('gives a socket with a valid bearer token the root of the token', async () => {
      const issued = await issue(app);
      assert.match(issued.root_id, ROOT_ID);
      const a = await connect(app, { token: issued.token });
      assert.equal(a.info.root_id, issued.root_id);
      assert.match(a.info.client_id, JAC_ID);
    });

    it('accepts the bearer prefix in any case', async () => {
      const issued = await issue(app);
      const lower = await connect(app, { authorization: `bearer ${issued.token}` });
      assert.equal(lower.info.root_id, issued.root_id);
      const upper = await connect(app, { authorization: `BEARER ${issued.token}` });
      assert.equal(upper.info.root_id, issued.root_id);
    });

    it('accepts a token signed with JAC_JWT_SECRET that was not issued through the API', async () => {
      // Proves the crafted tokens below are well-formed: only their expiry makes them fail.
      const root = 'n::0123456789abcdef01234567';
      const a = await connect(app, { token: signJwt({ root_id: root, exp: nowS() + 600 }) });
      assert.equal(a.info.root_id, root);
    });

    it('treats an expired token as public', async () => {
      const token = signJwt({ root_id: 'n::0123456789abcdef01234567', iat: nowS() - 120, exp: nowS() - 60 });
      const a = await connect(app, { token });
      assert.equal(a.info.root_id, PUBLIC_ROOT);
    });

    it('treats a garbage, forged or alg-none token as public, without refusing the upgrade', async () => {
      const forged = signJwt(
        { root_id: 'n::0123456789abcdef01234567', exp: nowS() + 600 },
        'another-secret-0123456789',
      );
      const claims = Buffer.from(JSON.stringify({ root_id: 'n::0123456789abcdef01234567', exp: nowS() + 600 }));
      const none = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${claims.toString('base64url')}.`;
      secrets.add('garbage-token-value');
      for (const authorization of ['Bearer garbage-token-value', `Bearer ${forged}`, `Bearer ${none}`, 'Bearer ']) {
        const a = await connect(app, { authorization });
        assert.equal(a.info.root_id, PUBLIC_ROOT, authorization);
      }
    });

    it('answers a `connection` event with the same connection event', async () => {
      const issued = await issue(app);
      const a = await connect(app, { token: issued.token, query: '?channel_id=again' });
      a.c.send({ type: 'connection' });
      const raw = await recv(a.c);
      assert.equal(raw, JSON.stringify({ type: 'connection', data: a.info }));
      assert.deepEqual(a.info, {
        client_id: a.info.client_id,
        root_id: issued.root_id,
        channel_id: 'again',
      });
    });
  });

  describe('user, channel and client events', () => {
    let publisher: Issued;
    before(async () => {
      publisher = await issue(app);
    });

    it('delivers `user` data as-is to every socket of the root, and to nobody else', async () => {
      const alice = await issue(app);
      const bob = await issue(app);
      const p = await connect(app, { token: publisher.token });
      const a1 = await connect(app, { token: alice.token });
      const a2 = await connect(app, { token: alice.token, query: '?channel_id=elsewhere' });
      const b = await connect(app, { token: bob.token });
      const pub = await connect(app);

      const data = { type: 'chat', data: { text: 'héllo ✓', n: 1.5, list: [1, null, true], nested: { a: {} } } };
      p.c.send({ type: 'user', root_ids: [alice.root_id], data });
      await expectFrame(a1.c, JSON.stringify(data));
      await expectFrame(a2.c, JSON.stringify(data));

      // Nothing reached bob, the public socket or the publisher: each one's next frame is a later one.
      const second = { to: 'bob' };
      p.c.send({ type: 'user', root_ids: [bob.root_id], data: second });
      await expectFrame(b.c, JSON.stringify(second));
      const third = { to: 'public' };
      p.c.send({ type: 'user', root_ids: [PUBLIC_ROOT], data: third });
      await expectFrame(pub.c, JSON.stringify(third));
      await expectAlive(p);
      await expectAlive(a1);
      await expectAlive(a2);
    });

    it('delivers to several roots at once, once per socket', async () => {
      const alice = await issue(app);
      const bob = await issue(app);
      const p = await connect(app, { token: publisher.token });
      const a = await connect(app, { token: alice.token });
      const b = await connect(app, { token: bob.token });
      const data = { several: true };
      p.c.send({ type: 'user', root_ids: [alice.root_id, bob.root_id, alice.root_id], data });
      await expectFrame(a.c, JSON.stringify(data));
      await expectFrame(b.c, JSON.stringify(data));
      const marker = { marker: 1 };
      p.c.send({ type: 'user', root_ids: [alice.root_id], data: marker });
      await expectFrame(a.c, JSON.stringify(marker));
    });

    it('delivers `channel` data to every member of the channel, and to nobody else', async () => {
      const p = await connect(app, { token: publisher.token });
      const m1 = await connect(app, { query: '?channel_id=room-a' });
      const m2 = await connect(app, { query: '?channel_id=room-a' });
      const other = await connect(app, { query: '?channel_id=room-b' });
      const fresh = await connect(app);

      const data = { type: 'group', data: { text: 'hi room a' } };
      p.c.send({ type: 'channel', channel_ids: ['room-a'], data });
      await expectFrame(m1.c, JSON.stringify(data));
      await expectFrame(m2.c, JSON.stringify(data));

      const second = { text: 'hi room b' };
      p.c.send({ type: 'channel', channel_ids: ['room-b'], data: second });
      await expectFrame(other.c, JSON.stringify(second));
      // A generated channel id is a channel like any other.
      const third = { text: 'hi fresh' };
      p.c.send({ type: 'channel', channel_ids: [fresh.info.channel_id], data: third });
      await expectFrame(fresh.c, JSON.stringify(third));
      await expectAlive(m1);
    });

    it('delivers `client` data to that one client only', async () => {
      const alice = await issue(app);
      const p = await connect(app, { token: publisher.token });
      const t = await connect(app, { token: alice.token });
      const sibling = await connect(app, { token: alice.token });
      const u = await connect(app);

      const data = { type: 'direct', data: { text: 'only you' } };
      p.c.send({ type: 'client', client_ids: [t.info.client_id], data });
      await expectFrame(t.c, JSON.stringify(data));

      const second = { text: 'now you' };
      p.c.send({ type: 'client', client_ids: [u.info.client_id, '1:00000000000000000000000000000000'], data: second });
      await expectFrame(u.c, JSON.stringify(second));
      const third = { text: 'and the sibling' };
      p.c.send({ type: 'client', client_ids: [sibling.info.client_id], data: third });
      await expectFrame(sibling.c, JSON.stringify(third));
      await expectAlive(t);
    });

    it('lets a socket publish to itself', async () => {
      const p = await connect(app, { token: publisher.token });
      const data = { self: true };
      p.c.send({ type: 'client', client_ids: [p.info.client_id], data });
      await expectFrame(p.c, JSON.stringify(data));
    });
  });

  describe('JAC_PUBLISH_POLICY=authenticated (the default)', () => {
    it('answers a public socket that publishes with an error and delivers nothing', async () => {
      const alice = await issue(app);
      const publisher = await issue(app);
      const target = await connect(app, { token: alice.token, query: '?channel_id=guarded' });
      const pub = await connect(app);
      const p = await connect(app, { token: publisher.token });

      const attempts = [
        { type: 'user', root_ids: [alice.root_id], data: { spoof: 'user' } },
        { type: 'channel', channel_ids: ['guarded'], data: { spoof: 'channel' } },
        { type: 'client', client_ids: [target.info.client_id], data: { spoof: 'client' } },
      ] as const;
      for (const attempt of attempts) {
        pub.c.send(attempt);
        const entries = await expectError(pub.c, [attempt.type]);
        assert.equal(entries.length, 1);
        assert.match(entries[0]?.msg ?? '', /authenticated/);
      }
      // Had any attempt been delivered, it would have come before this.
      const marker = { legit: true };
      p.c.send({ type: 'client', client_ids: [target.info.client_id], data: marker });
      await expectFrame(target.c, JSON.stringify(marker));
      await expectAlive(pub);
    });
  });

  describe('change_user', () => {
    let publisher: Issued;
    before(async () => {
      publisher = await issue(app);
    });

    it('re-authenticates with "Bearer <jwt>": same client and channel, new root, new messages', async () => {
      const alice = await issue(app);
      const p = await connect(app, { token: publisher.token });
      const witness = await connect(app);
      const s = await connect(app, { query: '?channel_id=keep-me' });
      assert.equal(s.info.root_id, PUBLIC_ROOT);

      s.c.send({ type: 'change_user', token: `Bearer ${alice.token}` });
      const reply = await recv(s.c);
      assert.equal(
        reply,
        JSON.stringify({
          type: 'connection',
          data: { client_id: s.info.client_id, root_id: alice.root_id, channel_id: 'keep-me' },
        }),
      );

      // The public root's messages no longer reach it; alice's do.
      const toPublic = { to: 'public' };
      p.c.send({ type: 'user', root_ids: [PUBLIC_ROOT], data: toPublic });
      await expectFrame(witness.c, JSON.stringify(toPublic));
      const toAlice = { to: 'alice' };
      p.c.send({ type: 'user', root_ids: [alice.root_id], data: toAlice });
      await expectFrame(s.c, JSON.stringify(toAlice));
      // Its channel is unchanged.
      const toChannel = { to: 'channel' };
      p.c.send({ type: 'channel', channel_ids: ['keep-me'], data: toChannel });
      await expectFrame(s.c, JSON.stringify(toChannel));
    });

    it('accepts the bare token and a lowercase prefix', async () => {
      const alice = await issue(app);
      const bob = await issue(app);
      const s = await connect(app);
      s.c.send({ type: 'change_user', token: alice.token });
      assert.deepEqual(await recvJson<ConnectionEvent>(s.c), {
        type: 'connection',
        data: { ...s.info, root_id: alice.root_id },
      });
      s.c.send({ type: 'change_user', token: `bearer ${bob.token}` });
      assert.deepEqual(await recvJson<ConnectionEvent>(s.c), {
        type: 'connection',
        data: { ...s.info, root_id: bob.root_id },
      });
    });

    it('makes the socket public on an invalid token, and it stops receiving the old root', async () => {
      const alice = await issue(app);
      const p = await connect(app, { token: publisher.token });
      const stay = await connect(app, { token: alice.token });
      const s = await connect(app, { token: alice.token });
      assert.equal(s.info.root_id, alice.root_id);

      const bad = signJwt({ root_id: alice.root_id, exp: nowS() - 1 });
      s.c.send({ type: 'change_user', token: `Bearer ${bad}` });
      assert.deepEqual(await recvJson<ConnectionEvent>(s.c), {
        type: 'connection',
        data: { ...s.info, root_id: PUBLIC_ROOT },
      });

      const toAlice = { to: 'alice' };
      p.c.send({ type: 'user', root_ids: [alice.root_id], data: toAlice });
      await expectFrame(stay.c, JSON.stringify(toAlice));
      const toPublic = { to: 'public' };
      p.c.send({ type: 'user', root_ids: [PUBLIC_ROOT], data: toPublic });
      await expectFrame(s.c, JSON.stringify(toPublic));

      // Public again, it may no longer publish.
      s.c.send({ type: 'client', client_ids: [stay.info.client_id], data: { x: 1 } });
      await expectError(s.c, ['client']);
    });

    it('makes the socket public without a token (or with null), not the handshake identity', async () => {
      const alice = await issue(app);
      for (const message of [{ type: 'change_user' }, { type: 'change_user', token: null }]) {
        const s = await connect(app, { token: alice.token });
        s.c.send(message);
        assert.deepEqual(await recvJson<ConnectionEvent>(s.c), {
          type: 'connection',
          data: { ...s.info, root_id: PUBLIC_ROOT },
        });
      }
    });

    it('lets a socket that became authenticated publish', async () => {
      const alice = await issue(app);
      const s = await connect(app);
      const target = await connect(app);
      s.c.send({ type: 'client', client_ids: [target.info.client_id], data: { before: true } });
      await expectError(s.c, ['client']);
      s.c.send({ type: 'change_user', token: `Bearer ${alice.token}` });
      assert.equal((await recvJson<ConnectionEvent>(s.c)).data.root_id, alice.root_id);
      const data = { after: true };
      s.c.send({ type: 'client', client_ids: [target.info.client_id], data });
      await expectFrame(target.c, JSON.stringify(data));
    });
  });

  describe('walkers over the socket', () => {
    let caller: Issued;
    before(async () => {
      caller = await issue(app);
    });

    it('answers an unknown walker (or one not callable over websocket)', async () => {
      const s = await connect(app, { token: caller.token });
      s.c.send({ type: 'walker', walker: 'no_such_walker', response: true });
      await expectFrame(s.c, '{"type":"walker","error":"Invalid request! Please use valid walker event!"}');
      await expectAlive(s);
    });

    it('refuses an authenticated-only walker on a public socket', async () => {
      const alice = await issue(app);
      const target = await connect(app, { token: alice.token });
      const s = await connect(app);
      s.c.send({ type: 'walker', walker: 'send_chat_to_user', response: true, context: { root_id: alice.root_id } });
      await expectFrame(s.c, '{"type":"walker","error":"Event send_chat_to_user requires to be authenticated!"}');
      // The walker did not run: the target's next message is a later one.
      const p = await connect(app, { token: caller.token });
      p.c.send({ type: 'user', root_ids: [alice.root_id], data: { marker: 1 } });
      await expectFrame(target.c, '{"marker":1}');
    });

    it('answers a bad context with one entry per field', async () => {
      const s = await connect(app, { token: caller.token });
      s.c.send({ type: 'walker', walker: 'send_chat_to_user', response: true, context: {} });
      const missing = await expectError(s.c, ['walker', 'context', 'root_id']);
      assert.equal(missing.length, 1);
      s.c.send({ type: 'walker', walker: 'send_chat_to_user', context: { root_id: 42 } });
      assert.equal((await expectError(s.c, ['walker', 'context', 'root_id'])).length, 1);
      s.c.send({ type: 'walker', walker: 'test_reports', response: true, context: { text: 1, count: -1 } });
      const two = await expectError(s.c, ['walker', 'context', 'text']);
      assert.deepEqual(
        two.map((e) => e.loc),
        [
          ['walker', 'context', 'text'],
          ['walker', 'context', 'count'],
        ],
      );
      await expectAlive(s);
    });

    it('caps the reply to a context with a problem per item at 16 entries, over the socket and HTTP', async () => {
      const items = Array.from({ length: 500 }, () => ({ name: 1 }));
      const s = await connect(app);
      s.c.send({ type: 'walker', walker: 'test_items', response: true, context: { items } });
      const errors = await expectError(s.c, ['walker', 'context', 'items', '0', 'name']);
      assert.equal(errors.length, 16);
      assert.deepEqual(errors[14]?.loc, ['walker', 'context', 'items', '14', 'name']);
      assert.deepEqual(errors[15], {
        loc: ['walker'],
        msg: 'Too many errors; the first 15 are reported, the rest omitted',
      });
      await expectAlive(s);
      const res = await request(app.http).post('/walker/test_items').send({ items }).expect(400);
      const body = res.body as { message: string[] };
      assert.equal(body.message.length, 16);
      assert.equal(body.message[0], 'items.0.name: must be a string');
      assert.equal(body.message[15], 'Too many errors; the first 15 are reported, the rest omitted');
    });

    it('send_chat_to_user reaches every socket of the root and answers {"status":200}', async () => {
      const alice = await issue(app);
      const a1 = await connect(app, { token: alice.token });
      const a2 = await connect(app, { token: alice.token });
      const other = await connect(app);
      const s = await connect(app, { token: caller.token });
      s.c.send({ type: 'walker', walker: 'send_chat_to_user', response: true, context: { root_id: alice.root_id } });
      await expectFrame(s.c, '{"status":200}');
      await expectFrame(a1.c, CHAT);
      await expectFrame(a2.c, CHAT);
      s.c.send({ type: 'walker', walker: 'send_chat_to_user', context: { root_id: PUBLIC_ROOT } });
      await expectFrame(other.c, CHAT);
      // Without `response` the caller gets no reply: its next frame answers the next request.
      await expectAlive(s);
    });

    it('send_chat_to_group reaches the channel', async () => {
      const m1 = await connect(app, { query: '?channel_id=walker-room' });
      const m2 = await connect(app, { query: '?channel_id=walker-room' });
      const outside = await connect(app);
      const s = await connect(app, { token: caller.token });
      s.c.send({ type: 'walker', walker: 'send_chat_to_group', context: { channel_id: 'walker-room' } });
      await expectFrame(m1.c, CHAT);
      await expectFrame(m2.c, CHAT);
      s.c.send({ type: 'walker', walker: 'send_chat_to_group', context: { channel_id: outside.info.channel_id } });
      await expectFrame(outside.c, CHAT);
      await expectAlive(m1);
    });

    it('send_chat_to_client reaches that one client', async () => {
      const alice = await issue(app);
      const t = await connect(app, { token: alice.token });
      const sibling = await connect(app, { token: alice.token });
      const s = await connect(app, { token: caller.token });
      s.c.send({
        type: 'walker',
        walker: 'send_chat_to_client',
        response: true,
        context: { client_id: t.info.client_id },
      });
      await expectFrame(s.c, '{"status":200}');
      await expectFrame(t.c, CHAT);
      s.c.send({ type: 'walker', walker: 'send_chat_to_client', context: { client_id: sibling.info.client_id } });
      await expectFrame(sibling.c, CHAT);
    });

    it('answers a walker that throws with a generic error, no trace and no message', async () => {
      const s = await connect(app);
      s.c.send({ type: 'walker', walker: 'test_throws', response: true });
      await expectFrame(s.c, '{"error":[{"loc":["walker"],"msg":"Walker test_throws failed"}]}');
      s.c.send({ type: 'walker', walker: 'test_rejects' });
      await expectFrame(s.c, '{"error":[{"loc":["walker"],"msg":"Walker test_rejects failed"}]}');
      await expectAlive(s);
    });

    it('returns what a walker reports, with the caller identity and node', async () => {
      const s = await connect(app, { token: caller.token });
      s.c.send({
        type: 'walker',
        walker: 'test_reports',
        response: true,
        node: 'n:graph:0123456789abcdef01234567',
        context: { text: 'hi', count: 3, extra: 'ignored' },
      });
      assert.deepEqual(await recvJson(s.c), {
        status: 200,
        reports: [
          { text: 'hi', count: 3 },
          { root_id: caller.root_id, node: 'n:graph:0123456789abcdef01234567' },
        ],
      });
    });

    it('runs an auth:false walker for a public socket; notifySelf reaches the caller', async () => {
      const s = await connect(app);
      const other = await connect(app);
      s.c.send({ type: 'walker', walker: 'test_public', response: true });
      await expectFrame(s.c, '{"type":"progress","progress":"0%"}');
      await expectFrame(s.c, '{"status":200,"reports":["public ok"]}');
      // notifySelf went to the caller only.
      other.c.send({ type: 'walker', walker: 'test_ws_only', response: true });
      await expectFrame(other.c, '{"status":200,"reports":["ws only"]}');
      // An auth:false walker also runs for an authenticated socket.
      const authed = await connect(app, { token: caller.token });
      authed.c.send({ type: 'walker', walker: 'test_public' });
      await expectFrame(authed.c, '{"type":"progress","progress":"0%"}');
      await expectAlive(authed);
    });
  });

  describe('POST /walker/:name', () => {
    let caller: Issued;
    before(async () => {
      caller = await issue(app);
    });

    it('runs the walker with a valid bearer token: 200 {"status":200}, notification delivered', async () => {
      const alice = await issue(app);
      const a1 = await connect(app, { token: alice.token });
      const a2 = await connect(app, { token: alice.token });
      const res = await request(app.http)
        .post('/walker/send_chat_to_user')
        .set('Authorization', `Bearer ${caller.token}`)
        .send({ root_id: alice.root_id })
        .expect(200);
      assert.deepEqual(res.body, { status: 200 });
      await expectFrame(a1.c, CHAT);
      await expectFrame(a2.c, CHAT);

      const member = await connect(app, { query: '?channel_id=http-room' });
      await request(app.http)
        .post('/walker/send_chat_to_group')
        .set('Authorization', `bearer ${caller.token}`)
        .send({ channel_id: 'http-room' })
        .expect(200, { status: 200 });
      await expectFrame(member.c, CHAT);

      await request(app.http)
        .post('/walker/send_chat_to_client')
        .set('Authorization', `Bearer ${caller.token}`)
        .send({ client_id: a2.info.client_id })
        .expect(200, { status: 200 });
      await expectFrame(a2.c, CHAT);
      // a1 got nothing from the last call.
      await expectAlive(a1);
    });

    it('401s without a token, with a garbage one and with an expired one', async () => {
      const alice = await issue(app);
      const target = await connect(app, { token: alice.token });
      const expired = signJwt({ root_id: caller.root_id, exp: nowS() - 5 });
      for (const auth of [undefined, 'Bearer garbage', `Bearer ${expired}`, caller.token.slice(0, -2)]) {
        const req = request(app.http).post('/walker/send_chat_to_user');
        if (auth !== undefined) req.set('Authorization', auth);
        const res = await req.send({ root_id: alice.root_id });
        assert.equal(res.status, 401, String(auth));
        assertHttpClean(res);
        assert.equal((res.body as { statusCode: number }).statusCode, 401);
      }
      // None of them ran.
      const p = await connect(app, { token: caller.token });
      p.c.send({ type: 'user', root_ids: [alice.root_id], data: { marker: 2 } });
      await expectFrame(target.c, '{"marker":2}');
    });

    it('404s for an unknown walker and for a websocket-only one', async () => {
      for (const name of ['no_such_walker', 'test_ws_only']) {
        const res = await request(app.http)
          .post(`/walker/${name}`)
          .set('Authorization', `Bearer ${caller.token}`)
          .send({});
        assert.equal(res.status, 404, name);
        assertHttpClean(res);
      }
    });

    it('400s for a bad context with one message per field', async () => {
      const one = await request(app.http)
        .post('/walker/send_chat_to_user')
        .set('Authorization', `Bearer ${caller.token}`)
        .send({});
      assert.equal(one.status, 400);
      assertHttpClean(one);
      const oneMessages = (one.body as { message: string[] }).message;
      assert.equal(oneMessages.length, 1);
      assert.match(oneMessages[0] ?? '', /^root_id: /);

      const two = await request(app.http)
        .post('/walker/test_reports')
        .set('Authorization', `Bearer ${caller.token}`)
        .send({ text: 5, count: 'many' });
      assert.equal(two.status, 400);
      assertHttpClean(two);
      const twoMessages = (two.body as { message: string[] }).message;
      assert.equal(twoMessages.length, 2);
      assert.deepEqual(twoMessages.map((m) => m.split(':')[0]).sort(), ['count', 'text']);

      const notObject = await request(app.http)
        .post('/walker/send_chat_to_user')
        .set('Authorization', `Bearer ${caller.token}`)
        .send([1, 2]);
      assert.equal(notObject.status, 400);
      assertHttpClean(notObject);
    });

    it('returns reports, runs auth:false walkers without a token, and hides walker failures', async () => {
      await request(app.http)
        .post('/walker/test_reports')
        .set('Authorization', `Bearer ${caller.token}`)
        .send({ text: 'x', count: 0 })
        .expect(200, {
          status: 200,
          reports: [
            { text: 'x', count: 0 },
            { root_id: caller.root_id, node: null },
          ],
        });
      // notifySelf does nothing over HTTP.
      await request(app.http)
        .post('/walker/test_public')
        .expect(200, { status: 200, reports: ['public ok'] });
      const failed = await request(app.http).post('/walker/test_throws').send({});
      assert.equal(failed.status, 500);
      assertHttpClean(failed);
      assert.deepEqual(failed.body, {
        statusCode: 500,
        error: 'Internal Server Error',
        message: 'Walker test_throws failed',
      });
    });
  });

  describe('bad input', () => {
    const cases: { name: string; frame: string | Buffer; loc: (string | number)[]; entries?: number }[] = [
      { name: 'not JSON', frame: '{"type": "connection"', loc: [] },
      { name: 'a binary frame', frame: Buffer.from('{"type":"connection"}'), loc: [] },
      { name: 'a JSON array', frame: '[{"type":"connection"}]', loc: [] },
      { name: 'a JSON number', frame: '42', loc: [] },
      { name: 'JSON null', frame: 'null', loc: [] },
      { name: 'a JSON string', frame: '"connection"', loc: [] },
      { name: 'no type', frame: '{"root_ids":["x"],"data":{}}', loc: ['type'] },
      { name: 'an unknown type', frame: '{"type":"subscribe"}', loc: ['type'] },
      { name: 'a numeric type', frame: '{"type":1}', loc: ['type'] },
      { name: 'an empty root_ids', frame: '{"type":"user","root_ids":[],"data":{}}', loc: ['user', 'root_ids'] },
      {
        name: 'an empty channel_ids',
        frame: '{"type":"channel","channel_ids":[],"data":{}}',
        loc: ['channel', 'channel_ids'],
      },
      {
        name: 'ids not an array',
        frame: '{"type":"client","client_ids":"abc","data":{}}',
        loc: ['client', 'client_ids'],
      },
      { name: 'missing ids', frame: '{"type":"user","data":{}}', loc: ['user', 'root_ids'] },
      {
        name: 'a non-string id',
        frame: '{"type":"user","root_ids":["n::1",7],"data":{}}',
        loc: ['user', 'root_ids', 1],
      },
      {
        name: 'data not an object',
        frame: '{"type":"channel","channel_ids":["c"],"data":"hi"}',
        loc: ['channel', 'data'],
      },
      { name: 'data an array', frame: '{"type":"user","root_ids":["r"],"data":[1]}', loc: ['user', 'data'] },
      { name: 'missing data', frame: '{"type":"client","client_ids":["c"]}', loc: ['client', 'data'] },
      {
        name: 'two problems at once',
        frame: '{"type":"user","root_ids":"r"}',
        loc: ['user', 'root_ids'],
        entries: 2,
      },
      { name: 'no walker name', frame: '{"type":"walker","response":true}', loc: ['walker', 'walker'] },
      { name: 'a non-string walker name', frame: '{"type":"walker","walker":3}', loc: ['walker', 'walker'] },
      {
        name: 'response not a bool',
        frame: '{"type":"walker","walker":"test_public","response":"yes"}',
        loc: ['walker', 'response'],
      },
      {
        name: 'context not an object',
        frame: '{"type":"walker","walker":"test_public","context":[1]}',
        loc: ['walker', 'context'],
      },
      { name: 'token not a string', frame: '{"type":"change_user","token":12345}', loc: ['change_user', 'token'] },
    ];

    it('answers each bad frame with {"error":[...]} and keeps the socket working', async () => {
      const issued = await issue(app);
      // An authenticated socket, so the publish policy is not what answers.
      const s = await connect(app, { token: issued.token });
      for (const { name, frame, loc, entries } of cases) {
        s.c.send(frame);
        const got = await expectError(s.c, loc);
        assert.equal(got.length, entries ?? 1, name);
        await expectAlive(s);
      }
      // The same for a public socket.
      const pub = await connect(app);
      for (const { frame, loc } of cases) {
        pub.c.send(frame);
        await expectError(pub.c, loc);
      }
      await expectAlive(pub);
    });

    it('never echoes a bad token or the input back', async () => {
      const issued = await issue(app);
      const s = await connect(app);
      // A valid token in a wrong-typed field, a forged one where a token belongs.
      s.c.send({ type: 'change_user', token: [issued.token] });
      await expectError(s.c, ['change_user', 'token']);
      const forged = signJwt({ root_id: issued.root_id, exp: nowS() + 60 }, 'not-the-secret-0123456789');
      s.c.send({ type: 'change_user', token: `Bearer ${forged}` });
      assert.equal((await recvJson<ConnectionEvent>(s.c)).data.root_id, PUBLIC_ROOT);
      s.c.send({ type: 'user', root_ids: [issued.token], data: issued.token });
      await expectError(s.c, ['user', 'data']);
      s.c.send(`{"type":"change_user","token":"${issued.token}"`);
      await expectError(s.c, []);
    });

    it('answers a 1 MiB frame of bad ids with one entry, not one per id, and keeps the socket', async () => {
      const issued = await issue(app);
      const s = await connect(app, { token: issued.token });
      const head = '{"type":"user","root_ids":[';
      const tail = '],"data":{}}';
      const ids = Math.floor((1024 * 1024 - head.length - tail.length + 1) / 2);
      const frame = head + Array<string>(ids).fill('1').join(',') + tail;
      assert.ok(frame.length <= 1024 * 1024 && frame.length > 1024 * 1024 - 4, String(frame.length));
      s.c.send(frame);
      const reply = await recv(s.c);
      assert.deepEqual(JSON.parse(reply), {
        error: [
          { loc: ['user', 'root_ids'], msg: `List should have at most 10000 items after validation, not ${ids}` },
        ],
      });
      assert.ok(reply.length < 128, `${reply.length} bytes`);
      assert.equal(s.c.pending, 0, 'one reply');
      await expectAlive(s);
    });

    it('lists at most 16 problems per reply, the last saying the rest were omitted', async () => {
      const s = await connect(app);
      // 10000 ids (the most a publish may name), none of them a string, and bad data.
      s.c.send({ type: 'channel', channel_ids: Array<number>(10_000).fill(7), data: 'x' });
      const reply = await recv(s.c);
      assert.ok(reply.length < 2048, `${reply.length} bytes`);
      const entries = (JSON.parse(reply) as { error: ErrorEntry[] }).error;
      assert.equal(entries.length, 16);
      entries.slice(0, 15).forEach((entry, i) => {
        assert.deepEqual(entry, { loc: ['channel', 'channel_ids', i], msg: 'Input should be a valid string' });
      });
      assert.deepEqual(entries[15], {
        loc: ['channel'],
        msg: 'Too many errors; the first 15 are reported, the rest omitted',
      });
      // Sixteen problems exactly: all of them, no marker.
      s.c.send({ type: 'client', client_ids: [...Array<number>(15).fill(0), 'ok'], data: [] });
      const exact = await expectError(s.c, ['client', 'client_ids', 0]);
      assert.equal(exact.length, 16);
      assert.deepEqual(exact[15], { loc: ['client', 'data'], msg: 'Input should be a valid dictionary' });
      await expectAlive(s);
    });

    it('delivers a publish naming 10000 ids and refuses one naming 10001, delivering nothing', async () => {
      const issued = await issue(app);
      const p = await connect(app, { token: issued.token });
      const receiver = await connect(app);
      const others = Array.from({ length: 9_999 }, (_, i) => `n::${i.toString(16).padStart(24, '0')}`);
      p.c.send({ type: 'user', root_ids: [...others, PUBLIC_ROOT], data: { n: 1 } });
      await expectFrame(receiver.c, '{"n":1}');
      p.c.send({ type: 'user', root_ids: [...others, 'n::ffffffffffffffffffffffff', PUBLIC_ROOT], data: { n: 2 } });
      assert.deepEqual(await expectError(p.c, ['user', 'root_ids']), [
        { loc: ['user', 'root_ids'], msg: 'List should have at most 10000 items after validation, not 10001' },
      ]);
      // Had the refused publish gone out, it would be ahead of this one.
      p.c.send({ type: 'user', root_ids: [PUBLIC_ROOT], data: { n: 3 } });
      await expectFrame(receiver.c, '{"n":3}');
      await expectAlive(p);
    });

    it('keeps delivering to other clients while one sends garbage', async () => {
      const issued = await issue(app);
      const p = await connect(app, { token: issued.token });
      const receiver = await connect(app);
      const garbage = await connect(app);
      const rounds = 40;
      for (let i = 0; i < rounds; i++) {
        garbage.c.send(cases[i % cases.length]?.frame ?? 'x');
        p.c.send({ type: 'client', client_ids: [receiver.info.client_id], data: { seq: i } });
      }
      for (let i = 0; i < rounds; i++) await expectFrame(receiver.c, JSON.stringify({ seq: i }));
      for (let i = 0; i < rounds; i++) await expectError(garbage.c, cases[i % cases.length]?.loc ?? []);
      await expectAlive(garbage);
    });
  });

  describe('JAC_PUBLISH_POLICY=open', () => {
    let open: TestApp;
    before(async () => {
      open = await startApp({ JAC_PUBLISH_POLICY: 'open' });
    });
    after(() => open.close());

    it('lets a public socket publish to users, channels and clients', async () => {
      const alice = await issue(open);
      const pub = await connect(open);
      const a = await connect(open, { token: alice.token, query: '?channel_id=open-room' });
      const other = await connect(open);

      pub.c.send({ type: 'user', root_ids: [alice.root_id], data: { via: 'user' } });
      await expectFrame(a.c, '{"via":"user"}');
      pub.c.send({ type: 'channel', channel_ids: ['open-room'], data: { via: 'channel' } });
      await expectFrame(a.c, '{"via":"channel"}');
      pub.c.send({ type: 'client', client_ids: [other.info.client_id], data: { via: 'client' } });
      await expectFrame(other.c, '{"via":"client"}');
      // The public root includes the publisher itself.
      pub.c.send({ type: 'user', root_ids: [PUBLIC_ROOT], data: { via: 'public' } });
      await expectFrame(pub.c, '{"via":"public"}');
      await expectFrame(other.c, '{"via":"public"}');
      await expectAlive(a);
    });
  });

  describe('frame size limit', () => {
    let small: TestApp;
    before(async () => {
      small = await startApp({ WS_MAX_PAYLOAD: '2048' });
    });
    after(() => small.close());

    it('serves a frame up to WS_MAX_PAYLOAD and closes 1009 above it, leaving others alone', async () => {
      const s = await connect(small);
      const bystander = await connect(small);
      const fits = JSON.stringify({ type: 'connection', pad: 'x'.repeat(1900) });
      assert.ok(Buffer.byteLength(fits) <= 2048);
      s.c.send(fits);
      assert.deepEqual(await recvJson<ConnectionEvent>(s.c), { type: 'connection', data: s.info });

      s.c.send(JSON.stringify({ type: 'connection', pad: 'x'.repeat(2100) }));
      const closed = await s.c.waitClose();
      assert.equal(closed.code, 1009);
      await expectAlive(bystander);
    });
  });

  describe('heartbeat', () => {
    let fast: TestApp;
    before(async () => {
      fast = await startApp({ JAC_PING_INTERVAL_MS: '50', JAC_PING_TIMEOUT_MS: '100' });
    });
    after(() => fast.close());

    it('closes a client that does not answer pings with 1011', async () => {
      const silent = await connect(fast, { options: { autoPong: false } });
      let pinged = false;
      silent.c.socket.on('ping', () => (pinged = true));
      const closed = await silent.c.waitClose(2000);
      assert.equal(closed.code, 1011);
      assert.equal(closed.reason, 'keepalive ping timeout');
      assert.ok(pinged, 'the server pinged before giving up');
    });

    it('keeps a client that answers pings open across several intervals', async () => {
      const live = await connect(fast);
      for (let i = 0; i < 4; i++) await once(live.c.socket, 'ping');
      assert.equal(live.c.socket.readyState, live.c.socket.OPEN);
      await expectAlive(live);
    });
  });

  describe('shutdown', () => {
    it('sends every connected client a close frame with 1001', async () => {
      const doomed = await startApp({}, { protocols: [JacModule, TestWalkersModule] });
      const issued = await issue(doomed);
      const clients = await Promise.all([connect(doomed), connect(doomed, { token: issued.token }), connect(doomed)]);
      const closes = clients.map((j) => j.c.waitClose());
      await doomed.close();
      for (const closed of await Promise.all(closes)) assert.equal(closed.code, 1001);
    });
  });
});
