// The jac protocol in tests: its constants, the connection of a socket (`connectJac`, and
// `openJac` through the bounded client), exactly-once checks and the admin calls.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { JWT_SECRET, type Gateway } from './app.js';
import { expectStatus } from './http.js';
import { connectBounded, WsTestClient, type WsTestClientOptions } from './ws-client.js';

/** The root of every socket without a valid token. */
export const PUBLIC_ROOT = 'n::000000000000000000000001';
/** A client id or a generated channel id: `<seconds>:<32 hex digits>`. */
export const JAC_ID = /^\d+:[0-9a-f]{32}$/;

/** What a socket's connection event carries. */
export interface ConnectionData {
  client_id: string;
  root_id: string;
  channel_id: string;
}

/** A connected jac socket and what its connection event said. */
export interface JacSocket {
  ws: WsTestClient;
  clientId: string;
  rootId: string;
  channelId: string;
}

export interface JacToken {
  token: string;
  rootId: string;
}

/** An HS256 JWT with `claims`, made here, independently of the product's signer. */
export function signJwt(claims: Record<string, unknown>, secret = JWT_SECRET): string {
  const part = (value: unknown): string => Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
  const unsigned = `${part({ alg: 'HS256', typ: 'JWT' })}.${part(claims)}`;
  return `${unsigned}.${createHmac('sha256', secret).update(unsigned).digest('base64url')}`;
}

/** `POST /admin/jac/tokens` with `body`, which must answer 201; the body as the API gives it. */
export async function issue(
  app: Pick<Gateway, 'http'>,
  body: Record<string, unknown> = {},
): Promise<{ token: string; root_id: string }> {
  return (await expectStatus(app, 201, 'POST', '/admin/jac/tokens', body)).json as { token: string; root_id: string };
}

/** `POST /admin/jac/tokens`: a token for a new root (or `rootId`). */
export async function issueToken(app: Pick<Gateway, 'http'>, rootId?: string): Promise<JacToken> {
  const body = await issue(app, rootId === undefined ? {} : { root_id: rootId });
  return { token: body.token, rootId: body.root_id };
}

/**
 * Opens `/websocket` (with a token and channel when given) and reads the connection event,
 * whose root must be the token's.
 */
export async function connectJac(
  app: Gateway,
  { token, channel, options = {} }: { token?: JacToken; channel?: string; options?: WsTestClientOptions } = {},
  connect: typeof WsTestClient.connect = (url, o) => WsTestClient.connect(url, o),
): Promise<JacSocket> {
  const query = channel === undefined ? '' : `?channel_id=${encodeURIComponent(channel)}`;
  const ws = await connect(app.ws(`/websocket${query}`), {
    ...options,
    headers: token ? { Authorization: `Bearer ${token.token}` } : {},
  });
  const event = await ws.next<{ type: string; data: ConnectionData }>();
  assert.equal(event.type, 'connection');
  if (token) assert.equal(event.data.root_id, token.rootId);
  return { ws, clientId: event.data.client_id, rootId: event.data.root_id, channelId: event.data.channel_id };
}

/** `connectJac` through the bounded client (`connectBounded`), as the other protocols' `open*` functions. */
export function openJac(
  gw: Gateway,
  options: { token?: JacToken; channel?: string; options?: WsTestClientOptions } = {},
): Promise<JacSocket> {
  return connectJac(gw, options, connectBounded);
}

/**
 * Asserts the socket's next messages are exactly `expected`, in order. Sending a
 * distinct marker after the message under test and expecting it right after proves a
 * message arrived once, with no duplicate in between.
 */
export async function expectMessages(socket: JacSocket, expected: unknown[], timeoutMs = 3000): Promise<void> {
  for (const message of expected) assert.deepEqual(await socket.ws.next(timeoutMs), message);
}
