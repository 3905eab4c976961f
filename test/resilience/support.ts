// Shared by the resilience suites: a bounded HTTP helper, a light socket client that can
// count instead of queue, one "open a live client" function per protocol, memory readings
// with a forced GC, and the figure lines docs/reliability.md is filled from.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import WebSocket, { type ClientOptions, type RawData } from 'ws';
import { ADMIN_TOKEN, JWT_SECRET } from '../helpers/app.js';
import { waitFor } from '../helpers/wait.js';
import { UpgradeRejected } from '../helpers/ws-client.js';

/** Anything with an HTTP base and a WebSocket URL builder: a `TestApp`, or a gateway child process. */
export interface Gateway {
  http: string;
  ws(path: string): string;
}

export function gatewayAt(port: number): Gateway {
  return { http: `http://127.0.0.1:${port}`, ws: (path) => `ws://127.0.0.1:${port}${path}` };
}

export const admin = { Authorization: `Bearer ${ADMIN_TOKEN}` };

/** Reads an integer size from the environment (soak runs raise them), else the CI default. */
export function size(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  assert.ok(Number.isInteger(value) && value > 0, `${name} must be a positive integer, got ${raw}`);
  return value;
}

// ---- HTTP ------------------------------------------------------------------------------

export interface Answer {
  status: number;
  text: string;
  json: unknown;
  contentType: string;
  ms: number;
}

/**
 * One admin (or any) HTTP request, bounded: a server that does not answer within
 * `timeoutMs` fails the test instead of stalling it.
 */
export async function call(
  gw: Gateway,
  method: string,
  path: string,
  body?: unknown,
  { timeoutMs = 5000, auth = true }: { timeoutMs?: number; auth?: boolean } = {},
): Promise<Answer> {
  const started = performance.now();
  let res: Response;
  try {
    res = await fetch(gw.http + path, {
      method,
      headers: {
        ...(auth ? admin : {}),
        ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) {
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

/** `call`, which must answer `status`. */
export async function expectStatus(
  gw: Gateway,
  status: number,
  method: string,
  path: string,
  body?: unknown,
): Promise<Answer> {
  const answer = await call(gw, method, path, body);
  assert.equal(answer.status, status, `${method} ${path}: ${answer.text}`);
  return answer;
}

/** A 503 as the admin API must give it: JSON, a readable message, no stack trace. */
export function assertCleanUnavailable(answer: Answer, what: string): void {
  assert.equal(answer.status, 503, `${what}: ${answer.status} ${answer.text}`);
  assert.match(answer.contentType, /^application\/json/, what);
  const body = answer.json as Record<string, unknown>;
  assert.equal(body['statusCode'], 503, what);
  assert.equal(typeof body['message'], 'string', what);
  assert.ok((body['message'] as string).length > 0, what);
  assert.ok(!('stack' in body), `${what}: ${answer.text}`);
  assert.doesNotMatch(answer.text, /\bat .+\.(js|ts):\d+|node_modules|Error:/, `${what}: ${answer.text}`);
}

// ---- a socket client that can count instead of queue ----------------------------------

export interface Closed {
  code: number;
  reason: string;
}

interface Waiter {
  resolve: (data: Buffer) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/**
 * A real `ws` client. Until `stream` is called it queues messages for `next`; after it,
 * every message goes to the callback and nothing is kept, so thousands of clients (or a
 * firehose) cost the test process no memory.
 */
export class Peer {
  private inbox: Buffer[] = [];
  private waiters: Waiter[] = [];
  private sink: ((data: Buffer, isBinary: boolean) => void) | null = null;
  /** Messages received, streamed or not. */
  received = 0;
  readonly closed: Promise<Closed>;
  closeInfo: Closed | null = null;

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (raw: RawData, isBinary: boolean) => {
      const data = toBuffer(raw);
      this.received++;
      if (this.sink) {
        this.sink(data, isBinary);
        return;
      }
      const waiter = this.waiters.shift();
      if (waiter) {
        clearTimeout(waiter.timer);
        waiter.resolve(data);
      } else {
        this.inbox.push(data);
      }
    });
    this.closed = new Promise((resolve) => {
      socket.on('close', (code: number, reason: Buffer) => {
        this.closeInfo = { code, reason: reason.toString() };
        for (const waiter of this.waiters.splice(0)) {
          clearTimeout(waiter.timer);
          waiter.reject(new Error(`socket closed (${code} ${reason.toString()}) while waiting for a message`));
        }
        resolve(this.closeInfo);
      });
    });
    socket.on('error', () => undefined);
  }

  /** Opens a socket; rejects with `UpgradeRejected` when the upgrade is answered with a status. */
  static connect(url: string, options: ClientOptions = {}): Promise<Peer> {
    // A handshake that never completes fails the test instead of stalling it.
    const socket = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: 10_000, ...options });
    const peer = new Peer(socket);
    return new Promise((resolve, reject) => {
      socket.once('open', () => resolve(peer));
      socket.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk.toString()));
        res.on('end', () => reject(new UpgradeRejected(res.statusCode ?? 0, body)));
        res.on('error', () => reject(new UpgradeRejected(res.statusCode ?? 0, body)));
      });
      socket.once('error', (err) => reject(err));
    });
  }

  next(timeoutMs = 5000): Promise<Buffer> {
    const queued = this.inbox.shift();
    if (queued) return Promise.resolve(queued);
    if (this.closeInfo) {
      return Promise.reject(new Error(`socket closed (${this.closeInfo.code}) while waiting for a message`));
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters = this.waiters.filter((w) => w !== waiter);
          reject(new Error(`no message within ${timeoutMs} ms`));
        }, timeoutMs),
      };
      this.waiters.push(waiter);
    });
  }

  async nextJson<T = Record<string, unknown>>(timeoutMs?: number): Promise<T> {
    return JSON.parse((await this.next(timeoutMs)).toString('utf8')) as T;
  }

  /** From now on every message (queued ones first) goes to `sink`; nothing is kept. */
  stream(sink: (data: Buffer, isBinary: boolean) => void): void {
    this.sink = sink;
    for (const data of this.inbox.splice(0)) sink(data, false);
  }

  send(message: unknown): void {
    this.socket.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  get isOpen(): boolean {
    return this.socket.readyState === WebSocket.OPEN;
  }

  async waitClose(timeoutMs = 5000): Promise<Closed> {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        this.closed,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no close within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Closes from the client side and waits for the close to finish (terminates after 2 s). */
  async close(): Promise<void> {
    if (this.socket.readyState === WebSocket.CLOSED) return;
    this.socket.close();
    try {
      await this.waitClose(2000);
    } catch {
      this.socket.terminate();
      await this.closed;
    }
  }

  terminate(): void {
    this.socket.terminate();
  }
}

function toBuffer(raw: RawData): Buffer {
  if (Buffer.isBuffer(raw)) return raw;
  if (Array.isArray(raw)) return Buffer.concat(raw);
  return Buffer.from(raw);
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
): Promise<Peer> {
  const peer = await Peer.connect(gw.ws(era === 'v2' ? '/api/ws' : '/flamepaw/ws'), options);
  const identity = await peer.nextJson<{ code: string }>();
  assert.equal(identity.code, 'identity');
  peer.send({ id: bot.id, token: bot.token, bot: true, send_all: sendAll });
  for (;;) {
    const control = await peer.nextJson<{ code: string }>();
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
): Promise<Peer> {
  const peer = await Peer.connect(gw.ws('/felix'), { ...options, headers: { Authorization: token } });
  peer.send({ code: 20002, data: { users: [], guilds } });
  peer.send({ code: 20001 });
  // Updates for the guilds may already come before the ACK; they are dropped here.
  for (;;) {
    const message = await peer.nextJson<{ code: number }>();
    if (message.code === 10001) return peer;
    assert.equal(message.code, 10002, JSON.stringify(message));
  }
}

/** hatsu: a user, a guild it is a member of, and a session id for it. */
export async function hatsuAccount(gw: Gateway): Promise<{ userId: string; guildId: string; sessionId: string }> {
  const userId = snowflake();
  const guildId = snowflake();
  const sessionId = `session-${userId}`;
  await expectStatus(gw, 204, 'PUT', `/admin/hatsu/users/${userId}`, {
    username: `user-${userId}`,
    separator: '0001',
    avatar_url: null,
    banner_url: null,
    flags: 0,
    verified: true,
    system: false,
  });
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
): Promise<Peer> {
  const peer = await Peer.connect(gw.ws('/hatsu'), options);
  peer.send({ session_id: sessionId, encoding });
  const expected = ['HELLO', 'READY', ...Array<string>(guilds).fill('GUILD_INIT')];
  for (const t of expected) {
    const frame = await peer.next();
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
): Promise<{ peer: Peer; clientId: string; rootId: string }> {
  const query = channel === undefined ? '' : `?channel_id=${encodeURIComponent(channel)}`;
  const peer = await Peer.connect(gw.ws(`/websocket${query}`), {
    ...options,
    headers: token === undefined ? {} : { Authorization: `Bearer ${token}` },
  });
  const event = await peer.nextJson<{ type: string; data: { client_id: string; root_id: string } }>();
  assert.equal(event.type, 'connection');
  return { peer, clientId: event.data.client_id, rootId: event.data.root_id };
}

// ---- memory -------------------------------------------------------------------------------

setFlagsFromString('--expose-gc');
const gcFunction = runInNewContext('gc') as () => void;

export interface Memory {
  /** V8 heap in use plus memory held outside it by Buffers and other external objects, after a full GC. */
  used: number;
  heapUsed: number;
  external: number;
  rss: number;
}

/** This process's memory after forced full collections. */
export function memory(): Memory {
  gcFunction();
  gcFunction();
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

// ---- a gateway as a real child process ---------------------------------------------------------

export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

export interface GatewayProcess extends Gateway {
  child: ChildProcess;
  port: number;
  /** Everything the process wrote to stdout and stderr (its JSON log lines). */
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Starts the compiled gateway (`<build>/src/main.js`, as the test runner compiled it) as a
 * real process, and resolves once it answers `/health/live`.
 */
export async function spawnGateway(env: Record<string, string>): Promise<GatewayProcess> {
  const port = await freePort();
  const main = new URL('../../src/main.js', import.meta.url);
  const child = spawn(process.execPath, [main.pathname], {
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      ADMIN_TOKEN,
      JAC_JWT_SECRET: JWT_SECRET,
      LOG_LEVEL: 'warn',
      AUTH_FAILURE_LIMIT: '0',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const gw = gatewayAt(port);
  try {
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`the gateway exited (${child.exitCode}) at start-up: ${output}`);
        return (await call(gw, 'GET', '/health/live', undefined, { timeoutMs: 1000, auth: false })).status === 200;
      },
      { timeoutMs: 20_000, intervalMs: 50, what: 'the gateway process to answer /health/live' },
    );
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  return { ...gw, child, port, output: () => output, exited };
}
