// The Fates protocol in tests: its constants, `FatesClient` (a strict client that reads
// frames the way the clients of the Fates documentation do), `openFates` (a light, bounded
// one for suites that open hundreds) and the admin calls that feed them.
import assert from 'node:assert/strict';
import type { ClientOptions } from 'ws';
import type { Gateway } from './app.js';
import { admin, expectStatus } from './http.js';
import { snowflake } from './ids.js';
import { connectBounded, WsTestClient, type Closed, type WsTestClientOptions } from './ws-client.js';

/** The record separator: every event frame ends with it, and a frame may hold several events. */
export const US = '\x1f';

export const V2_PATH = '/api/ws';
export const FLAMEPAW_PATH = '/flamepaw/ws';

/** The reason of the 4004 close that ends a refused identify or a revoked token. */
export const INVALID_AUTH = 'Invalid authentication, try again';

/** The two generations of the protocol, served side by side. */
export type FatesEra = 'v2' | 'flamepaw';

/** The canonical path of each era. */
export const ERA_PATH: Record<FatesEra, string> = { v2: V2_PATH, flamepaw: FLAMEPAW_PATH };

export interface Control {
  code: string;
  detail: string;
  ts: number;
  requests_remaining: number;
  control: true;
}

export interface FatesEventBody {
  m: { e: number; eid?: string; ts?: number; t?: number; [key: string]: unknown };
  ctx: Record<string, unknown>;
  [key: string]: unknown;
}

export interface FlamepawEnvelope {
  chan: string;
  code: 'event';
  control: false;
  dat: FatesEventBody;
  detail: null;
}

/** One frame from the server, classified. */
export type Frame =
  { kind: 'control'; raw: string; control: Control } | { kind: 'events'; raw: string; events: unknown[] };

const CONTROL_KEYS = ['code', 'detail', 'ts', 'requests_remaining', 'control'];

/** Every control payload any FatesClient received, for the "no token in a detail" checks. */
export const seenDetails: string[] = [];

/**
 * The receive loop of the documented clients (`_render_event` of the flamepaw era's Python
 * `Bot` class, the snippet of the v2 era): split on \x1f, split each piece again, skip empty
 * strings, JSON-parse the rest.
 */
export function splitEvents(frame: string): unknown[] {
  const out: unknown[] = [];
  for (const m of frame.split(US)) {
    for (const e of m.split(US)) {
      if (e === '') continue;
      out.push(JSON.parse(e));
    }
  }
  return out;
}

export class FatesClient {
  /** Every frame read so far, as text. */
  readonly frames: string[] = [];

  private constructor(
    readonly ws: WsTestClient,
    readonly identity: Control,
  ) {}

  /** Opens a socket and reads the identity payload that must come first. */
  static async open(app: Gateway, path: string, options: ClientOptions = {}): Promise<FatesClient> {
    const ws = await WsTestClient.connect(app.ws(path), options);
    const first = await ws.nextRaw();
    const raw = first.data.toString('utf8');
    assert.equal(first.isBinary, false, 'the identity payload is a text frame');
    const identity = parseControl(raw);
    assert.equal(identity.code, 'identity');
    const client = new FatesClient(ws, identity);
    client.frames.push(raw);
    return client;
  }

  /** Opens, identifies and expects `ready`. */
  static async ready(
    app: Gateway,
    path: string,
    identify: Record<string, unknown>,
    options: ClientOptions = {},
  ): Promise<{ client: FatesClient; ready: Control }> {
    const client = await FatesClient.open(app, path, options);
    const ready = await client.identify(identify);
    assert.equal(ready.code, 'ready', `expected ready, got ${JSON.stringify(ready)}`);
    return { client, ready };
  }

  async next(timeoutMs?: number): Promise<Frame> {
    const message = await this.ws.nextRaw(timeoutMs);
    assert.equal(message.isBinary, false, 'Fates frames are text');
    const raw = message.data.toString('utf8');
    this.frames.push(raw);
    if (raw.endsWith(US)) return { kind: 'events', raw, events: splitEvents(raw) };
    return { kind: 'control', raw, control: parseControl(raw) };
  }

  async control(timeoutMs?: number): Promise<Control> {
    const frame = await this.next(timeoutMs);
    assert.equal(frame.kind, 'control', `expected a control payload, got ${frame.raw}`);
    return (frame as { control: Control }).control;
  }

  async events(timeoutMs?: number): Promise<unknown[]> {
    const frame = await this.next(timeoutMs);
    assert.equal(frame.kind, 'events', `expected events, got ${frame.raw}`);
    return (frame as { events: unknown[] }).events;
  }

  /** Reads event frames until `count` events have arrived; fails on a control payload. */
  async takeEvents(count: number, timeoutMs?: number): Promise<unknown[]> {
    const out: unknown[] = [];
    while (out.length < count) out.push(...(await this.events(timeoutMs)));
    assert.equal(out.length, count, 'more events than expected in the last frame');
    return out;
  }

  /** Reads event frames until a control payload, which must be `code`. */
  async eventsUntil(code: string): Promise<{ events: unknown[]; frames: number; control: Control }> {
    const events: unknown[] = [];
    let frames = 0;
    for (;;) {
      const frame = await this.next();
      if (frame.kind === 'control') {
        assert.equal(frame.control.code, code, `expected ${code}, got ${frame.raw}`);
        return { events, frames, control: frame.control };
      }
      frames++;
      events.push(...frame.events);
    }
  }

  async identify(body: Record<string, unknown> | string): Promise<Control> {
    this.send(body);
    return this.control();
  }

  send(body: unknown): void {
    this.ws.send(body);
  }

  waitClose(timeoutMs?: number): Promise<Closed> {
    return this.ws.waitClose(timeoutMs);
  }

  /** Expects the server to close with `code`, with no further frame before the close. */
  async expectClose(code: number, reason?: string): Promise<void> {
    const closed = await this.ws.waitClose();
    assert.equal(closed.code, code);
    if (reason !== undefined) assert.equal(closed.reason, reason);
    assert.equal(this.ws.pending, 0, 'no frame may precede the close');
  }

  close(): Promise<void> {
    return this.ws.close();
  }
}

export function parseControl(raw: string): Control {
  assert.ok(!raw.includes(US), `a control payload never carries \\x1f: ${raw}`);
  const control = JSON.parse(raw) as Control;
  assert.deepEqual(Object.keys(control), CONTROL_KEYS, `control keys: ${raw}`);
  assert.equal(control.control, true);
  assert.equal(typeof control.detail, 'string');
  assert.ok(Number.isInteger(control.ts), 'ts is whole seconds');
  assert.ok(Math.abs(control.ts - Date.now() / 1000) < 60, 'ts is now');
  assert.ok(Number.isInteger(control.requests_remaining));
  seenDetails.push(control.detail);
  return control;
}

// ---- admin API ------------------------------------------------------------------------------

export type Kind = 'bots' | 'servers';

export async function setToken(app: Pick<Gateway, 'http'>, kind: Kind, id: string, token: string): Promise<void> {
  await expectStatus(app, 204, 'PUT', `/admin/fates/${kind}/${id}/token`, { token });
}

export async function deleteToken(app: Pick<Gateway, 'http'>, kind: Kind, id: string): Promise<number> {
  return (await admin(app, 'DELETE', `/admin/fates/${kind}/${id}/token`)).status;
}

/** `where` is `bots/<id>`, `servers/<id>` or `global`. Resolves with the assigned eid. */
export async function postEvent(app: Pick<Gateway, 'http'>, where: string, body: FatesEventBody): Promise<string> {
  const answer = await expectStatus(app, 202, 'POST', `/admin/fates/${where}/events`, body);
  const eid = (answer.json as { eid: string }).eid;
  assert.equal(typeof eid, 'string');
  return eid;
}

export async function history(app: Pick<Gateway, 'http'>, where: string): Promise<FatesEventBody[]> {
  const answer = await expectStatus(app, 200, 'GET', `/admin/fates/${where}/events`);
  return (answer.json as { events: FatesEventBody[] }).events;
}

/** A vote event as the Dragon server produced it (`e` 0 for bots, 71 for servers). */
export function vote(user: string, votes: number, e = 0): FatesEventBody {
  return { votes, id: user, ctx: { user, votes, test: false }, m: { e, user, t: -1 } };
}

/** The eids of events as the client saw them, in either era's envelope. */
export function eidsOf(events: unknown[]): string[] {
  return events.map((event) => {
    const body = (event as { code?: string }).code === 'event' ? (event as FlamepawEnvelope).dat : event;
    return (body as FatesEventBody).m.eid as string;
  });
}

/** An id of its own with a token of its own, ready to identify. */
async function newTarget(app: Pick<Gateway, 'http'>, kind: Kind): Promise<{ id: string; token: string }> {
  const id = snowflake();
  const token = `${kind === 'bots' ? 'bot' : 'server'}-token-${id}-${Math.random().toString(36).slice(2)}`;
  await setToken(app, kind, id, token);
  return { id, token };
}

/** A bot with a token, ready to identify. */
export function newBot(app: Pick<Gateway, 'http'>): Promise<{ id: string; token: string }> {
  return newTarget(app, 'bots');
}

/** A server with a token, ready to identify. */
export function newServer(app: Pick<Gateway, 'http'>): Promise<{ id: string; token: string }> {
  return newTarget(app, 'servers');
}

// ---- the light client ---------------------------------------------------------------------------

/**
 * Opens a bounded Fates socket (`connectBounded`), identifies as `bot` and reads `ready` (and,
 * with `sendAll`, nothing more: the caller reads the replay). Nothing is checked or kept past
 * that, so a suite can open hundreds and stream what they receive.
 */
export async function openFates(
  gw: Gateway,
  bot: { id: string; token: string },
  {
    era = 'v2',
    sendAll = false,
    options = {},
  }: { era?: FatesEra; sendAll?: boolean; options?: WsTestClientOptions } = {},
): Promise<WsTestClient> {
  const peer = await connectBounded(gw.ws(ERA_PATH[era]), options);
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

/** The events of one Fates frame, unwrapped from the flamepaw envelope; control payloads are skipped. */
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
