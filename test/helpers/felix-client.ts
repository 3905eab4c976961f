// The Felix protocol in tests: its messages, the socket calls (heartbeat, listen lists, a
// strict reader), `openFelix` (a bounded listener for suites that open hundreds) and the
// admin calls.
import assert from 'node:assert/strict';
import type { Gateway } from './app.js';
import { expectStatus } from './http.js';
import { connectBounded, WsTestClient, type WsTestClientOptions } from './ws-client.js';

/** A private token as `POST /admin/felix/tokens` issues it. */
export interface FelixToken {
  id: string;
  token: string;
  public: boolean;
}

/** A token in Felix's own format: `<25>.<24>.<24>.<24>.<24>.<24>.<24>.<24>.<24>.<24>.<9>`, from [A-Za-z0-9_$-]. */
export const FELIX_TOKEN_FORMAT = /^[A-Za-z0-9_$-]{25}(?:\.[A-Za-z0-9_$-]{24}){9}\.[A-Za-z0-9_$-]{9}$/;

/** Every server message: `{code, name, data}`. */
export interface FelixMessage {
  code: number;
  name: string;
  data: Record<string, unknown>;
}

/** What a heartbeat ACK (10001) carries. */
export interface AckData {
  receivedAt: number;
  shards: Record<string, unknown>[];
  guildsCount: number;
  memoryUsage: number;
  uptime: number;
}

// ---- the socket ------------------------------------------------------------------------------

/** Opens a Felix socket at `url` with `token` as the raw `Authorization` header. */
export function connectFelix(url: string, token: string, options: WsTestClientOptions = {}): Promise<WsTestClient> {
  return WsTestClient.connect(url, { ...options, headers: { Authorization: token, ...options.headers } });
}

/** The next frame, checked to be a text frame of the `{code, name, data}` shape. */
export async function nextFelix(c: WsTestClient): Promise<FelixMessage> {
  const raw = await c.nextRaw();
  assert.equal(raw.isBinary, false, 'Felix frames are text');
  const message = JSON.parse(raw.data.toString('utf8')) as FelixMessage;
  assert.deepEqual(Object.keys(message).sort(), ['code', 'data', 'name']);
  return message;
}

/** Sends a heartbeat and returns the ACK, asserting it is the very next frame. */
export async function heartbeat(c: WsTestClient): Promise<AckData> {
  c.send({ code: 20001 });
  const message = await nextFelix(c);
  assert.equal(message.code, 10001, `expected the ACK, got ${JSON.stringify(message).slice(0, 200)}`);
  assert.equal(message.name, 'Heartbeat ACK');
  return message.data as unknown as AckData;
}

/**
 * `count` heartbeats from each client, all sent before any ACK is read (a flood, not a
 * round trip at a time); resolves with every ACK's data.
 */
export async function heartbeatFlood(clients: WsTestClient[], count: number): Promise<AckData[]> {
  for (const c of clients) for (let i = 0; i < count; i++) c.send({ code: 20001 });
  const acks: AckData[] = [];
  for (const c of clients) {
    for (let i = 0; i < count; i++) {
      const message = await nextFelix(c);
      assert.equal(message.code, 10001);
      acks.push(message.data as unknown as AckData);
    }
  }
  return acks;
}

/** Replaces the listen lists; the ACK that follows proves the server applied them. */
export async function listen(c: WsTestClient, lists: { users?: string[]; guilds?: string[] }): Promise<void> {
  c.send({ code: 20002, data: { users: lists.users ?? [], guilds: lists.guilds ?? [] } });
  await heartbeat(c);
  assert.equal(c.pending, 0, 'a listeners update has no reply');
}

/** Nothing arrived: a heartbeat round trip shows the ACK is the next frame and nothing else is queued. */
export async function assertQuiet(c: WsTestClient): Promise<void> {
  await heartbeat(c);
  assert.equal(c.pending, 0, 'nothing but the ACK arrived');
}

/**
 * Opens a bounded Felix socket (`connectBounded`) listening to `guilds`; the heartbeat ACK
 * proves the listener list is in place. Nothing is checked or kept past that, so a suite
 * can open hundreds and stream what they receive.
 */
export async function openFelix(
  gw: Gateway,
  token: string,
  guilds: string[],
  options: WsTestClientOptions = {},
): Promise<WsTestClient> {
  const peer = await connectBounded(gw.ws('/felix'), { ...options, headers: { Authorization: token } });
  peer.send({ code: 20002, data: { users: [], guilds } });
  peer.send({ code: 20001 });
  // Updates for the guilds may already come before the ACK; they are dropped here.
  for (;;) {
    const message = await peer.next<{ code: number }>();
    if (message.code === 10001) return peer;
    assert.equal(message.code, 10002, JSON.stringify(message));
  }
}

// ---- admin API ------------------------------------------------------------------------------

/** `POST /admin/felix/tokens`, which must answer 201. */
export async function createToken(app: Pick<Gateway, 'http'>, body: Record<string, unknown> = {}): Promise<FelixToken> {
  return (await expectStatus(app, 201, 'POST', '/admin/felix/tokens', body)).json as FelixToken;
}

/** `PUT /admin/felix/guilds/:id` or `/users/:id`, which must answer 204. */
export async function putDocument(
  app: Pick<Gateway, 'http'>,
  kind: 'guilds' | 'users',
  id: string,
  body: unknown,
): Promise<void> {
  await expectStatus(app, 204, 'PUT', `/admin/felix/${kind}/${id}`, body);
}

/** `PUT /admin/felix/status`, which must answer 204. */
export async function putStatus(app: Pick<Gateway, 'http'>, body: Record<string, unknown>): Promise<void> {
  await expectStatus(app, 204, 'PUT', '/admin/felix/status', body);
}
