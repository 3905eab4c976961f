// Shared by the resilience suites: bounded HTTP calls, the suites' socket client (the shared
// one, which can count instead of queue), one "open a live client" function per protocol,
// memory readings with a forced GC, and the figure lines docs/reliability.md is filled from.
import assert from 'node:assert/strict';
import type { ClientOptions } from 'ws';
import { adminAuth } from '../helpers/app.js';
import { collectGarbage } from '../helpers/gc.js';
import { userDocument } from '../helpers/hatsu-client.js';
import { request, type HttpAnswer } from '../helpers/jac-client.js';
import { WsTestClient } from '../helpers/ws-client.js';

/** Anything with an HTTP base and a WebSocket URL builder: a `TestApp`, or a `GatewayProcess`. */
export interface Gateway {
  http: string;
  ws(path: string): string;
}

/** Reads an integer size from the environment (soak runs raise them), else the CI default. */
export function size(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  assert.ok(Number.isInteger(value) && value > 0, `${name} must be a positive integer, got ${raw}`);
  return value;
}

// ---- HTTP ------------------------------------------------------------------------------

/**
 * One admin (or any) HTTP request, bounded: a server that does not answer within
 * `timeoutMs` fails the test instead of stalling it.
 */
export function call(
  gw: Gateway,
  method: string,
  path: string,
  body?: unknown,
  { timeoutMs = 5000, auth = true }: { timeoutMs?: number; auth?: boolean } = {},
): Promise<HttpAnswer> {
  return request(gw, method, path, { body, headers: auth ? adminAuth : {}, timeoutMs });
}

/** `GET /health/ready`'s status. */
export async function readyStatus(gw: Gateway): Promise<number> {
  return (await call(gw, 'GET', '/health/ready', undefined, { auth: false })).status;
}

/** `call`, which must answer `status`. */
export async function expectStatus(
  gw: Gateway,
  status: number,
  method: string,
  path: string,
  body?: unknown,
): Promise<HttpAnswer> {
  const answer = await call(gw, method, path, body);
  assert.equal(answer.status, status, `${method} ${path}: ${answer.text}`);
  return answer;
}

/** A 503 as the admin API must give it: JSON, a readable message, no stack trace. */
export function assertCleanUnavailable(answer: HttpAnswer, what: string): void {
  assert.equal(answer.status, 503, `${what}: ${answer.status} ${answer.text}`);
  assert.match(answer.contentType, /^application\/json/, what);
  const body = answer.json as Record<string, unknown>;
  assert.equal(body['statusCode'], 503, what);
  assert.equal(typeof body['message'], 'string', what);
  assert.ok((body['message'] as string).length > 0, what);
  assert.ok(!('stack' in body), `${what}: ${answer.text}`);
  assert.doesNotMatch(answer.text, /\bat .+\.(js|ts):\d+|node_modules|Error:/, `${what}: ${answer.text}`);
}

// ---- sockets ------------------------------------------------------------------------------

/**
 * The suites' client: no compression, a handshake that never completes fails the test
 * instead of stalling it, 5 s waits, and a close that terminates after 2 s. Rejects with
 * `UpgradeRejected` when the upgrade is answered with a status.
 */
export function connectPeer(url: string, options: ClientOptions = {}): Promise<WsTestClient> {
  return WsTestClient.connect(url, {
    perMessageDeflate: false,
    handshakeTimeout: 10_000,
    timeoutMs: 5000,
    closeTimeoutMs: 2000,
    ...options,
  });
}

/** Runs `task(i)` for i in [0, n) with at most `concurrency` in flight; rejects on the first failure. */
export async function pool(n: number, concurrency: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const failures: Error[] = [];
  const worker = async (): Promise<void> => {
    while (failures.length === 0 && next < n) {
      const i = next++;
      try {
        await task(i);
      } catch (err) {
        failures.push(err instanceof Error ? err : new Error(String(err)));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  if (failures[0]) throw failures[0];
}

// ---- ids --------------------------------------------------------------------------------

let lastId = BigInt(Date.now()) * 1000n + BigInt(process.pid % 1000);

/** A snowflake no other test in this process uses. */
export function snowflake(): string {
  lastId += 1000n;
  return lastId.toString();
}

// ---- one live client per protocol ---------------------------------------------------------

export const US = '\x1f';

/** Fates: a bot with a token. */
export async function fatesBot(gw: Gateway): Promise<{ id: string; token: string }> {
  const id = snowflake();
  const token = `bot-token-${id}`;
  await expectStatus(gw, 204, 'PUT', `/admin/fates/bots/${id}/token`, { token });
  return { id, token };
}

export type FatesEra = 'v2' | 'flamepaw';

/**
 * Opens a Fates socket, identifies and reads `ready` (and, with `sendAll`, nothing more:
 * the caller reads the replay). Frames are returned as text.
 */
export async function openFates(
  gw: Gateway,
  bot: { id: string; token: string },
  { era = 'v2', sendAll = false, options = {} }: { era?: FatesEra; sendAll?: boolean; options?: ClientOptions } = {},
): Promise<WsTestClient> {
  const peer = await connectPeer(gw.ws(era === 'v2' ? '/api/ws' : '/flamepaw/ws'), options);
  const identity = await peer.next<{ code: string }>();
  assert.equal(identity.code, 'identity');
  peer.send({ id: bot.id, token: bot.token, bot: true, send_all: sendAll });
  for (;;) {
    const control = await peer.next<{ code: string }>();
    // Flamepaw's keepalive `ping` goes to every socket, identified or not, every 54 s.
    if (control.code === 'ping') continue;
    assert.equal(control.code, 'ready', JSON.stringify(control));
    return peer;
  }
}

/** The events of one Fates frame, unwrapped from the flamepaw envelope. */
export function fatesEvents(frame: Buffer): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const piece of frame.toString('utf8').split(US)) {
    if (piece === '') continue;
    const parsed = JSON.parse(piece) as Record<string, unknown>;
    if (parsed['control'] === true) continue;
    out.push(parsed['code'] === 'event' ? (parsed['dat'] as Record<string, unknown>) : parsed);
  }
  return out;
}

/** Felix: a private token. */
export async function felixToken(gw: Gateway): Promise<{ id: string; token: string }> {
  const answer = await expectStatus(gw, 201, 'POST', '/admin/felix/tokens', {});
  return answer.json as { id: string; token: string };
}

/** Opens a Felix socket listening to `guilds`; the heartbeat ACK proves the listener list is in place. */
export async function openFelix(
  gw: Gateway,
  token: string,
  guilds: string[],
  options: ClientOptions = {},
): Promise<WsTestClient> {
  const peer = await connectPeer(gw.ws('/felix'), { ...options, headers: { Authorization: token } });
  peer.send({ code: 20002, data: { users: [], guilds } });
  peer.send({ code: 20001 });
  // Updates for the guilds may already come before the ACK; they are dropped here.
  for (;;) {
    const message = await peer.next<{ code: number }>();
    if (message.code === 10001) return peer;
    assert.equal(message.code, 10002, JSON.stringify(message));
  }
}

/** hatsu: a user, a guild it is a member of, and a session id for it. */
export async function hatsuAccount(gw: Gateway): Promise<{ userId: string; guildId: string; sessionId: string }> {
  const userId = snowflake();
  const guildId = snowflake();
  const sessionId = `session-${userId}`;
  await expectStatus(gw, 204, 'PUT', `/admin/hatsu/users/${userId}`, userDocument(`user-${userId}`));
  await expectStatus(gw, 204, 'PUT', `/admin/hatsu/guilds/${guildId}`, {
    guild: { name: `guild-${guildId}`, description: null },
    channels: [{ id: `${guildId}1`, name: 'general', type: 2 }],
    members: [userId],
  });
  await expectStatus(gw, 204, 'PUT', `/admin/hatsu/sessions/${sessionId}`, { user_id: userId });
  return { userId, guildId, sessionId };
}

/**
 * Opens a hatsu socket, identifies and reads HELLO, READY and `guilds` GUILD_INITs
 * (counted, not decoded, for zlib).
 */
export async function openHatsu(
  gw: Gateway,
  sessionId: string,
  {
    encoding = 'json',
    guilds = 1,
    options = {},
  }: { encoding?: 'json' | 'zlib'; guilds?: number; options?: ClientOptions } = {},
): Promise<WsTestClient> {
  const peer = await connectPeer(gw.ws('/hatsu'), options);
  peer.send({ session_id: sessionId, encoding });
  const expected = ['HELLO', 'READY', ...Array<string>(guilds).fill('GUILD_INIT')];
  for (const t of expected) {
    const frame = (await peer.nextRaw()).data;
    if (encoding === 'json') assert.equal((JSON.parse(frame.toString('utf8')) as { t: string }).t, t);
  }
  return peer;
}

/** jac: a token for a new root. */
export async function jacToken(gw: Gateway): Promise<{ token: string; rootId: string }> {
  const answer = await expectStatus(gw, 201, 'POST', '/admin/jac/tokens', {});
  const body = answer.json as { token: string; root_id: string };
  return { token: body.token, rootId: body.root_id };
}

/** Opens a jac socket (with a token and a channel when given) and reads its connection event. */
export async function openJac(
  gw: Gateway,
  { token, channel, options = {} }: { token?: string; channel?: string; options?: ClientOptions } = {},
): Promise<{ peer: WsTestClient; clientId: string; rootId: string }> {
  const query = channel === undefined ? '' : `?channel_id=${encodeURIComponent(channel)}`;
  const peer = await connectPeer(gw.ws(`/websocket${query}`), {
    ...options,
    headers: token === undefined ? {} : { Authorization: `Bearer ${token}` },
  });
  const event = await peer.next<{ type: string; data: { client_id: string; root_id: string } }>();
  assert.equal(event.type, 'connection');
  return { peer, clientId: event.data.client_id, rootId: event.data.root_id };
}

// ---- memory -------------------------------------------------------------------------------

export interface Memory {
  /** V8 heap in use plus memory held outside it by Buffers and other external objects, after a full GC. */
  used: number;
  heapUsed: number;
  external: number;
  rss: number;
}

/** This process's memory after forced full collections. */
export function memory(): Memory {
  collectGarbage(2);
  const m = process.memoryUsage();
  return { used: m.heapUsed + m.external, heapUsed: m.heapUsed, external: m.external, rss: m.rss };
}

export const MiB = 1024 * 1024;

export function mib(bytes: number): string {
  return (bytes / MiB).toFixed(1);
}

// ---- figures --------------------------------------------------------------------------------

/**
 * One line per measured figure, `FIGURE <suite> <name> <value> <unit>`: what
 * docs/reliability.md's table is refreshed from (`grep FIGURE`).
 */
export function figure(suite: string, name: string, value: number | string, unit = ''): void {
  const shown = typeof value === 'number' ? (Number.isInteger(value) ? String(value) : value.toFixed(1)) : value;
  console.log(`FIGURE ${suite} ${name} ${shown}${unit === '' ? '' : ` ${unit}`}`);
}
