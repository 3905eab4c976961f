// Shared by the Fates e2e and cluster specs: a client that speaks the protocol the way
// the seeds' reference clients do, and the admin calls that feed it.
import assert from 'node:assert/strict';
import request from 'supertest';
import type { ClientOptions } from 'ws';
import { adminAuth, type TestApp } from '../helpers/app.js';
import { WsTestClient, type Closed } from '../helpers/ws-client.js';

export const US = '\x1f';

export const V2_PATH = '/api/ws';
export const FLAMEPAW_PATH = '/flamepaw/ws';

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
 * The seeds' receive loop (`_render_event` in seed 000, the snippet in seed 001): split
 * on \x1f, split each piece again, skip empty strings, JSON-parse the rest.
 */
export function seedSplit(frame: string): unknown[] {
  const out: unknown[] = [];
  for (const m of frame.split(US)) {
    for (const e of m.split(US)) {
      if (e === '') continue;
      out.push(JSON.parse(e));
    }
  }
  return out;
}

let ids = BigInt(Date.now()) * 1000n;

/** A snowflake no other test uses, so budgets and histories never collide. */
export function freshId(): string {
  ids += 1n;
  return ids.toString();
}

export class FatesClient {
  /** Every frame read so far, as text. */
  readonly frames: string[] = [];

  private constructor(
    readonly ws: WsTestClient,
    readonly identity: Control,
  ) {}

  /** Opens a socket and reads the identity payload that must come first. */
  static async open(app: TestApp, path: string, options: ClientOptions = {}): Promise<FatesClient> {
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
    app: TestApp,
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
    if (raw.endsWith(US)) return { kind: 'events', raw, events: seedSplit(raw) };
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

export async function setToken(app: TestApp, kind: Kind, id: string, token: string): Promise<void> {
  const answer = await request(app.http).put(`/admin/fates/${kind}/${id}/token`).set(adminAuth).send({ token });
  assert.equal(answer.status, 204, answer.text);
}

export async function deleteToken(app: TestApp, kind: Kind, id: string): Promise<number> {
  const answer = await request(app.http).delete(`/admin/fates/${kind}/${id}/token`).set(adminAuth);
  return answer.status;
}

/** `where` is `bots/<id>`, `servers/<id>` or `global`. Resolves with the assigned eid. */
export async function postEvent(app: TestApp, where: string, body: FatesEventBody): Promise<string> {
  const answer = await request(app.http).post(`/admin/fates/${where}/events`).set(adminAuth).send(body);
  assert.equal(answer.status, 202, answer.text);
  const eid = (answer.body as { eid: string }).eid;
  assert.equal(typeof eid, 'string');
  return eid;
}

export async function history(app: TestApp, where: string): Promise<FatesEventBody[]> {
  const answer = await request(app.http).get(`/admin/fates/${where}/events`).set(adminAuth);
  assert.equal(answer.status, 200, answer.text);
  return (answer.body as { events: FatesEventBody[] }).events;
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

/** A bot with a token, ready to identify. */
export async function newBot(app: TestApp): Promise<{ id: string; token: string }> {
  const id = freshId();
  const token = `bot-token-${id}-${Math.random().toString(36).slice(2)}`;
  await setToken(app, 'bots', id, token);
  return { id, token };
}

export async function newServer(app: TestApp): Promise<{ id: string; token: string }> {
  const id = freshId();
  const token = `server-token-${id}-${Math.random().toString(36).slice(2)}`;
  await setToken(app, 'servers', id, token);
  return { id, token };
}
