import assert from 'node:assert/strict';
import { adminAuth, type TestApp } from './app.js';
import { waitFor } from './wait.js';
import { WsTestClient } from './ws-client.js';

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

export interface HttpAnswer {
  status: number;
  text: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  json: unknown;
  contentType: string;
  /** From the request to the whole body read. */
  ms: number;
}

/**
 * A plain HTTP request against a test app (or any `http` base); `body` is sent as JSON. With
 * `timeoutMs`, a server that does not answer in time fails the test instead of stalling it.
 */
export async function request(
  app: Pick<TestApp, 'http'>,
  method: string,
  path: string,
  { body, headers = {}, timeoutMs }: { body?: unknown; headers?: Record<string, string>; timeoutMs?: number } = {},
): Promise<HttpAnswer> {
  const started = performance.now();
  let res: Response;
  try {
    res = await fetch(app.http + path, {
      method,
      headers: { ...(body === undefined ? {} : { 'Content-Type': 'application/json' }), ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: timeoutMs === undefined ? undefined : AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    if (timeoutMs !== undefined && err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) {
      throw new Error(`${method} ${path} did not answer within ${timeoutMs} ms (a hang)`, { cause: err });
    }
    throw err;
  }
  const text = await res.text();
  let json: unknown;
  try {
    json = text === '' ? undefined : JSON.parse(text);
  } catch {
    json = undefined;
  }
  return {
    status: res.status,
    text,
    json,
    contentType: res.headers.get('content-type') ?? '',
    ms: performance.now() - started,
  };
}

/** `POST /admin/jac/tokens`: a token for a new root (or `rootId`). */
export async function issueToken(app: TestApp, rootId?: string): Promise<JacToken> {
  const answer = await request(app, 'POST', '/admin/jac/tokens', {
    headers: adminAuth,
    body: rootId === undefined ? {} : { root_id: rootId },
  });
  assert.equal(answer.status, 201, answer.text);
  const body = answer.json as { token: string; root_id: string };
  return { token: body.token, rootId: body.root_id };
}

/** Opens `/websocket` (with a token and channel when given) and reads the connection event. */
export async function connectJac(
  app: TestApp,
  { token, channel }: { token?: JacToken; channel?: string } = {},
): Promise<JacSocket> {
  const query = channel === undefined ? '' : `?channel_id=${encodeURIComponent(channel)}`;
  const ws = await WsTestClient.connect(app.ws(`/websocket${query}`), {
    headers: token ? { Authorization: `Bearer ${token.token}` } : {},
  });
  const event = await ws.next<{ type: string; data: { client_id: string; root_id: string; channel_id: string } }>();
  assert.equal(event.type, 'connection');
  if (token) assert.equal(event.data.root_id, token.rootId);
  return { ws, clientId: event.data.client_id, rootId: event.data.root_id, channelId: event.data.channel_id };
}

/** Polls `GET /health/ready` until it answers `status`. */
export async function waitReady(app: TestApp, status: 200 | 503, timeoutMs = 8000): Promise<HttpAnswer> {
  return waitFor(
    async () => {
      const answer = await request(app, 'GET', '/health/ready');
      return answer.status === status ? answer : undefined;
    },
    { timeoutMs, intervalMs: 50, what: `/health/ready to answer ${status}` },
  );
}

/**
 * Asserts the socket's next messages are exactly `expected`, in order. Sending a
 * distinct marker after the message under test and expecting it right after proves a
 * message arrived once, with no duplicate in between.
 */
export async function expectMessages(socket: JacSocket, expected: unknown[], timeoutMs = 3000): Promise<void> {
  for (const message of expected) assert.deepEqual(await socket.ws.next(timeoutMs), message);
}
