// The hatsu protocol in tests: `HatsuClient` (JSON or zlib, read through one inflate context
// as the protocol's documented client does), `openHatsu` (a light, bounded one for suites that
// open hundreds) and the admin calls that provision users, guilds and sessions.
import assert from 'node:assert/strict';
import { constants, createInflate, type Inflate } from 'node:zlib';
import type { ClientOptions } from 'ws';
import type { Gateway } from './app.js';
import { admin } from './http.js';
import { snowflake } from './ids.js';
import { connectBounded, WsTestClient, type Closed, type WsTestClientOptions } from './ws-client.js';

export type HatsuMessage = Record<string, unknown> & { t: string };

/** HELLO's `i`, word for word as docs/protocols/hatsu.md gives it. */
export const HELLO_INFO =
  'Sent once we have verified your session_id, the data given will be null. please wait for the READY event before continuing--with any requests.';

/** A ULID (HELLO's `s`, every message's `s`): 26 Crockford base-32 characters, 48 bits of time first. */
export const ULID = /^[0-7][0-9A-HJKMNP-TV-Z]{25}$/;

/** The milliseconds a ULID's first 10 characters carry. */
export function ulidTime(id: string): number {
  let time = 0;
  for (const char of id.slice(0, 10)) time = time * 32 + '0123456789ABCDEFGHJKMNPQRSTVWXYZ'.indexOf(char);
  return time;
}

export interface IdentifyOptions {
  encoding?: 'json' | 'zlib';
  presences?: boolean;
}

const SYNC_FLUSH_TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);

/**
 * A hatsu client as the protocol's documented client is: JSON text in; JSON text or, with
 * `zlib`, binary messages read through one inflate context for the whole connection.
 */
export class HatsuClient {
  private inflate: Inflate | null = null;
  private inflated: Buffer[] = [];
  /** Every binary message's length, in order (zlib only). */
  readonly binarySizes: number[] = [];

  private constructor(readonly ws: WsTestClient) {}

  static async connect(url: string, options: ClientOptions = {}): Promise<HatsuClient> {
    return new HatsuClient(await WsTestClient.connect(url, options));
  }

  /** Sends the identify; with zlib, every later message is read through one inflate context. */
  identify(sessionId: string, options: IdentifyOptions = {}): void {
    if (options.encoding === 'zlib') {
      this.inflate = createInflate();
      this.inflate.on('data', (chunk: Buffer) => this.inflated.push(chunk));
    }
    this.ws.send({ session_id: sessionId, ...options });
  }

  send(message: unknown): void {
    this.ws.send(message);
  }

  /** The next message, decoded (and inflated when the session is zlib). */
  async next(timeoutMs?: number): Promise<HatsuMessage> {
    const raw = await this.ws.nextRaw(timeoutMs);
    if (!this.inflate) {
      assert.equal(raw.isBinary, false, 'a json session gets text frames');
      return JSON.parse(raw.data.toString('utf8')) as HatsuMessage;
    }
    assert.equal(raw.isBinary, true, 'a zlib session gets binary frames');
    assert.deepEqual(raw.data.subarray(-4), SYNC_FLUSH_TAIL, 'each zlib message ends with a sync flush');
    this.binarySizes.push(raw.data.length);
    return JSON.parse((await this.inflateMessage(raw.data)).toString('utf8')) as HatsuMessage;
  }

  /** The next message, which must be `t` (returned for further checks). */
  async expect(t: string, timeoutMs?: number): Promise<HatsuMessage> {
    const message = await this.next(timeoutMs);
    assert.equal(message.t, t, `expected ${t}, got ${JSON.stringify(message).slice(0, 300)}`);
    return message;
  }

  /** Sends a heartbeat and expects its ACK as the very next message: proof nothing else was queued. */
  async expectNothingPending(marker: string | number = Math.random()): Promise<void> {
    this.send({ t: 'HEARTBEAT', s: marker });
    const ack = await this.expect('ACK');
    assert.equal(ack['s'], marker);
  }

  /** Reads HELLO, READY and the GUILD_INITs (as many as `guilds`). */
  async ready(guilds = 0): Promise<{ hello: HatsuMessage; ready: HatsuMessage; inits: HatsuMessage[] }> {
    const hello = await this.expect('HELLO');
    const ready = await this.expect('READY');
    const inits: HatsuMessage[] = [];
    for (let i = 0; i < guilds; i++) inits.push(await this.expect('GUILD_INIT'));
    return { hello, ready, inits };
  }

  waitClose(timeoutMs?: number): Promise<Closed> {
    return this.ws.waitClose(timeoutMs);
  }

  close(): Promise<void> {
    this.inflate?.close();
    return this.ws.close();
  }

  /** Feeds one message to the connection's inflate context and reads up to its sync flush. */
  private inflateMessage(data: Buffer): Promise<Buffer> {
    const inflate = this.inflate as Inflate;
    return new Promise((resolve, reject) => {
      inflate.once('error', reject);
      inflate.write(data);
      inflate.flush(constants.Z_SYNC_FLUSH, () => {
        inflate.off('error', reject);
        const message = Buffer.concat(this.inflated);
        this.inflated = [];
        resolve(message);
      });
    });
  }
}

// ---- admin API ---------------------------------------------------------------------------

/** A user as `PUT /admin/hatsu/users/:id` takes it: every field set, `fields` overriding. */
export function userDocument(username: string, fields: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    username,
    separator: '0001',
    avatar_url: null,
    banner_url: null,
    flags: 0,
    verified: true,
    system: false,
    ...fields,
  };
}

export async function putUser(
  app: Pick<Gateway, 'http'>,
  id: string,
  user: Record<string, unknown> = {},
): Promise<void> {
  const answer = await admin(app, 'PUT', `/admin/hatsu/users/${id}`, userDocument(`user-${id}`, user));
  assert.equal(answer.status, 204, answer.text);
}

export async function putGuild(
  app: Pick<Gateway, 'http'>,
  id: string,
  members: string[],
  channels: Record<string, unknown>[] = [{ id: `${id}1`, name: 'general', type: 2 }],
): Promise<void> {
  const answer = await admin(app, 'PUT', `/admin/hatsu/guilds/${id}`, {
    guild: { name: `guild-${id}`, description: null },
    channels,
    members,
  });
  assert.equal(answer.status, 204, answer.text);
}

export async function putSession(app: Pick<Gateway, 'http'>, sessionId: string, userId: string): Promise<void> {
  const answer = await admin(app, 'PUT', `/admin/hatsu/sessions/${encodeURIComponent(sessionId)}`, {
    user_id: userId,
  });
  assert.equal(answer.status, 204, answer.text);
}

/** `POST /admin/hatsu/dispatch`; resolves with the session count. */
export async function dispatch(app: Pick<Gateway, 'http'>, body: Record<string, unknown>): Promise<number> {
  const answer = await admin(app, 'POST', '/admin/hatsu/dispatch', body);
  assert.equal(answer.status, 202, answer.text);
  return (answer.json as { sessions: number }).sessions;
}

/** Connects to `/hatsu`, identifies, and reads up to the last GUILD_INIT. */
export async function connectHatsu(
  app: Gateway,
  sessionId: string,
  options: IdentifyOptions & { guilds?: number } = {},
): Promise<HatsuClient> {
  const { guilds = 0, ...identify } = options;
  const client = await HatsuClient.connect(app.ws('/hatsu'));
  client.identify(sessionId, identify);
  await client.ready(guilds);
  return client;
}

/** A user and a session id for it. */
export interface HatsuUser {
  userId: string;
  sessionId: string;
}

/** A user of its own, and a guild of its own it is a member of, with a session id for it. */
export interface HatsuAccount extends HatsuUser {
  guildId: string;
}

/**
 * A user of its own (`fields` set on its document) with a session id of its own; the session
 * is stored through `sessionOn` (another instance, say), `app` unless named.
 */
export async function newUser(
  app: Pick<Gateway, 'http'>,
  { fields = {}, sessionOn = app }: { fields?: Record<string, unknown>; sessionOn?: Pick<Gateway, 'http'> } = {},
): Promise<HatsuUser> {
  const userId = snowflake();
  await putUser(app, userId, fields);
  const sessionId = `session-${userId}`;
  await putSession(sessionOn, sessionId, userId);
  return { userId, sessionId };
}

/** `newUser`, and a guild of its own it is a member of (one text channel). */
export async function hatsuAccount(gw: Pick<Gateway, 'http'>): Promise<HatsuAccount> {
  const user = await newUser(gw);
  const guildId = snowflake();
  await putGuild(gw, guildId, [user.userId]);
  return { ...user, guildId };
}

/**
 * Opens a bounded hatsu socket (`connectBounded`), identifies and reads HELLO, READY and
 * `guilds` GUILD_INITs (counted, not decoded, for zlib). Nothing is checked or kept past
 * that, so a suite can open hundreds and stream what they receive.
 */
export async function openHatsu(
  gw: Gateway,
  sessionId: string,
  {
    encoding = 'json',
    guilds = 1,
    options = {},
  }: { encoding?: 'json' | 'zlib'; guilds?: number; options?: WsTestClientOptions } = {},
): Promise<WsTestClient> {
  const peer = await connectBounded(gw.ws('/hatsu'), options);
  peer.send({ session_id: sessionId, encoding });
  const expected = ['HELLO', 'READY', ...Array<string>(guilds).fill('GUILD_INIT')];
  for (const t of expected) {
    const frame = (await peer.nextRaw()).data;
    if (encoding === 'json') assert.equal((JSON.parse(frame.toString('utf8')) as { t: string }).t, t);
  }
  return peer;
}
