/**
 * The tests' one HTTP client: supertest, against a base URL.
 *
 * Why supertest, and not the fetch-based helper the resilience suites started with: supertest
 * is the client the project's design names for HTTP in integration tests, and the tests that
 * state a status or a header where the request is made (`.expect(201)`,
 * `.expect('Content-Type', /json/)`) are written in its chain. What the fetch helper was kept
 * for, supertest has too: it takes any base URL (`request('http://127.0.0.1:1234')`), so it
 * reaches an app started in this process, a gateway started as a process of its own
 * (`spawnGateway`) and a dedicated port alike; `.timeout()` bounds a request; and it sets any
 * header, `Host` included, which fetch refuses (two suites needed `node:http` for that). The
 * one thing left, the answer as plain data, is `call` below, built on supertest.
 *
 * Two ways to use it:
 * - `request(base).get(path).set(...).send(...).expect(...)`, the chain, for a test about
 *   one request;
 * - `call` / `admin` / `expectStatus`: one request answered as an `HttpAnswer` (status, text,
 *   JSON, content type, time taken), always bounded: a server that does not answer within
 *   `timeoutMs` (5 s unless the caller names another) fails the test with "a hang" instead
 *   of stalling it. For helpers, polls, and the suites that compare many answers.
 */
import assert from 'node:assert/strict';
import supertest from 'supertest';
import { adminAuth, type Gateway } from './app.js';
import { waitFor } from './wait.js';

export const request = supertest;
/** A response of the `request(...)` chain. */
export type HttpResponse = supertest.Response;
/** A request of the `request(...)` chain, not sent yet. */
export type HttpTest = supertest.Test;

/** What `call` waits for an answer unless told otherwise. */
export const DEFAULT_TIMEOUT_MS = 5000;

export interface HttpAnswer {
  status: number;
  text: string;
  /** The body parsed as JSON (whatever the content type says), or undefined when it is not JSON. */
  json: unknown;
  contentType: string;
  /** From the request to the whole body read. */
  ms: number;
}

export interface CallOptions {
  /** Sent as JSON (`Content-Type: application/json` unless `headers` names another). */
  body?: unknown;
  headers?: Record<string, string>;
  timeoutMs?: number;
}

/** Reads any body as text: the answer's JSON is parsed from it, whatever its content type. */
function readText(res: HttpResponse, done: (err: Error | null, text: string) => void): void {
  // superagent hands a parser the raw response stream, not the `Response` its types name.
  const stream = res as unknown as NodeJS.ReadableStream;
  let text = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => (text += chunk));
  stream.on('end', () => done(null, text));
}

/** One request against `gw` (anything with an `http` base), answered as an `HttpAnswer`. */
export async function call(
  gw: Pick<Gateway, 'http'>,
  method: string,
  path: string,
  { body, headers = {}, timeoutMs = DEFAULT_TIMEOUT_MS }: CallOptions = {},
): Promise<HttpAnswer> {
  const started = performance.now();
  const test = new supertest.Test(gw.http, method, path)
    .set({ ...(body === undefined ? {} : { 'Content-Type': 'application/json' }), ...headers })
    .buffer(true)
    .parse(readText)
    .timeout(timeoutMs);
  let res: HttpResponse;
  try {
    res = await (body === undefined ? test : test.send(JSON.stringify(body)));
  } catch (err) {
    if ((err as { timeout?: unknown }).timeout !== undefined) {
      throw new Error(`${method} ${path} did not answer within ${timeoutMs} ms (a hang)`, { cause: err });
    }
    throw err;
  }
  const text = res.body as string;
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
    contentType: String(res.headers['content-type'] ?? ''),
    ms: performance.now() - started,
  };
}

/** `call` with the admin token. */
export function admin(
  gw: Pick<Gateway, 'http'>,
  method: string,
  path: string,
  body?: unknown,
  { headers = {}, timeoutMs }: Omit<CallOptions, 'body'> = {},
): Promise<HttpAnswer> {
  return call(gw, method, path, { body, headers: { ...adminAuth, ...headers }, timeoutMs });
}

/** `admin`, which must answer `status`. */
export async function expectStatus(
  gw: Pick<Gateway, 'http'>,
  status: number,
  method: string,
  path: string,
  body?: unknown,
): Promise<HttpAnswer> {
  const answer = await admin(gw, method, path, body);
  assert.equal(answer.status, status, `${method} ${path}: ${answer.text}`);
  return answer;
}

/** `GET path` with `headers` (a `Host` of the test's choosing, say), which must answer 200; its JSON. */
export async function getJson(
  gw: Pick<Gateway, 'http'>,
  path: string,
  headers: Record<string, string>,
): Promise<unknown> {
  const res = await request(gw.http).get(path).set(headers);
  assert.equal(res.status, 200, res.text);
  return JSON.parse(res.text);
}

// ---- health and the answers every protocol shares ---------------------------------------------

/** `GET /health/ready`'s status. */
export async function readyStatus(gw: Pick<Gateway, 'http'>): Promise<number> {
  return (await call(gw, 'GET', '/health/ready')).status;
}

/** Polls `GET /health/ready` until it answers `status`. */
export async function waitReady(gw: Pick<Gateway, 'http'>, status: 200 | 503, timeoutMs = 8000): Promise<HttpAnswer> {
  return waitFor(
    async () => {
      const answer = await call(gw, 'GET', '/health/ready');
      return answer.status === status ? answer : undefined;
    },
    { timeoutMs, intervalMs: 50, what: `/health/ready to answer ${status}` },
  );
}

/** An HTTP error as the API gives every one: JSON `{statusCode, error, message}`. */
export interface HttpError {
  statusCode: number;
  error: string;
  message: string | string[];
}

/** A stack frame as V8 prints one, or a source position: neither may reach a client. */
export const STACK_FRAME = /\bat \S+ \(|\n\s+at |\.[cm]?[jt]s:\d+(?::\d+)?|node:internal/;

/** A 503 as the admin API must give it: JSON, the status and a readable message inside, no stack trace. */
export function assertCleanUnavailable(answer: HttpAnswer, what = 'the answer'): void {
  assert.equal(answer.status, 503, `${what}: ${answer.status} ${answer.text}`);
  assert.match(answer.contentType, /^application\/json/, what);
  const body = answer.json as Record<string, unknown>;
  assert.equal(body['statusCode'], 503, what);
  assert.equal(typeof body['message'], 'string', what);
  assert.ok((body['message'] as string).length > 0, what);
  assert.ok(!('stack' in body), `${what}: ${answer.text}`);
  assert.doesNotMatch(answer.text, /\bat .+\.(js|ts):\d+|node_modules|Error:/, `${what}: ${answer.text}`);
}

// ---- the cluster-wide connection list (GET /admin/connections) ------------------------------------

export interface ClientInfo {
  id: string;
  protocol: string;
  user: string | null;
  channels: string[];
  instance: string;
  since: string;
}

export interface ConnectionsPage {
  total: number;
  by_protocol: Record<string, number>;
  by_instance: Record<string, number>;
  clients: ClientInfo[];
  next_cursor: string | null;
}
