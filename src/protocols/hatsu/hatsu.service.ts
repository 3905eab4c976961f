import { Injectable, type OnModuleDestroy } from '@nestjs/common';
import type { Logger as Pino } from 'pino';
import type { WebSocket } from 'ws';
import { AppConfig } from '../../config/app-config.js';
import { EventBus, type Target } from '../../core/bus/event-bus.js';
import { GatehouseLogger } from '../../core/logging/gatehouse-logger.js';
import { ClientRegistry } from '../../core/registry/client-registry.js';
import { Connection, type ClientId, type ClientInfo, type CloseSpec } from '../../core/registry/connection.js';
import { UpgradeLimits } from '../../core/ws/upgrade-limits.js';
import {
  ackFrame,
  guildInitFrame,
  helloFrame,
  parseClientEvent,
  parseIdentify,
  presenceUpdateFrame,
  readyFrame,
  type HatsuEncoding,
  type HatsuFrame,
  type HatsuPresence,
} from './hatsu.codec.js';
import { HATSU_CLOSE } from './hatsu.codes.js';
import { HatsuData, sessionKey } from './hatsu-data.js';
import { HatsuDeflate } from './hatsu-deflate.js';
import { ulid } from './ulid.js';

export const HATSU = 'hatsu';
/** Events for sessions: dispatches from the admin API. */
const EVENTS_TOPIC = HATSU;
/** `PRESENCE_UPDATE`s: the same, but only for sessions that identified with `presences` not false. */
const PRESENCE_TOPIC = 'hatsu.presence';
/** Session revocations and membership changes, for every instance. */
const CONTROL_TOPIC = 'hatsu.control';

/** Registry channel of a guild's member sessions. */
export function guildChannel(guildId: string): string {
  return `guild:${guildId}`;
}

/**
 * Registry channel every session that accepts presences is in, so a presence dispatch can
 * be counted from the cluster-wide registry as well as filtered locally.
 */
export const PRESENCES_CHANNEL = 'presences';

/** Frames a client may send before READY; they are handled after it, in order. */
const MAX_BACKLOG = 16;

/** A slow consumer's close frame waits behind unread bytes; past this it loses the socket without one. */
const SLOW_CONSUMER_GRACE_MS = 1000;

type SessionState = 'awaiting' | 'identifying' | 'ready' | 'closed';

/** One hatsu socket, from upgrade to close. */
export interface HatsuSession {
  readonly connection: Connection;
  /** The peer address, charged for failed identifies (the shared per-IP throttle). */
  readonly ip: string;
  state: SessionState;
  timer: NodeJS.Timeout | null;
  /** Counted against `HATSU_MAX_SESSIONS` from the moment its identify is accepted for lookup. */
  counted: boolean;
  /** The client's own session id, echoed in READY's `s` and ACK's `_s`. */
  sessionId: string | null;
  /** The session id's store key (a hash), for revocation. */
  sessionKey: string | null;
  userId: string | null;
  encoding: HatsuEncoding;
  presences: boolean;
  deflate: HatsuDeflate | null;
  backlog: HatsuFrame[];
  guilds: Set<string>;
  /** Membership changes that arrived while identify was reading the store (guild -> joined). */
  delta: Map<string, boolean> | null;
}

type Control =
  { op: 'revoke'; key: string } | { op: 'members'; guild: string; add: readonly string[]; remove: readonly string[] };

/** Who an admin dispatch is for (SPEC section 3). */
export type DispatchTarget = { guildId: string } | { userId: string } | { all: true };

/**
 * hatsu's behaviour: the identify state machine, per-connection encoding (json or a
 * zlib stream), fan-out through the bus, and the admin operations that affect live
 * sessions. docs/protocols/hatsu.md describes all of it.
 */
@Injectable()
export class HatsuService implements OnModuleDestroy {
  private readonly sessions = new WeakMap<WebSocket, HatsuSession>();
  private readonly byUser = new Map<string, Set<HatsuSession>>();
  private readonly byKey = new Map<string, Set<HatsuSession>>();
  private readonly loadListeners = new Set<() => void>();
  private readonly unsubscribe: (() => void)[];
  private readonly log: Pino;
  private openSockets = 0;
  private identified = 0;

  constructor(
    private readonly registry: ClientRegistry,
    private readonly bus: EventBus,
    private readonly data: HatsuData,
    private readonly config: AppConfig,
    private readonly limits: UpgradeLimits,
    logger: GatehouseLogger,
  ) {
    this.log = logger.child({ protocol: HATSU });
    this.unsubscribe = [
      bus.subscribe(EVENTS_TOPIC, (m) => this.deliverLocal(m.target, m.payload, false)),
      bus.subscribe(PRESENCE_TOPIC, (m) => this.deliverLocal(m.target, m.payload, true)),
      bus.subscribe(CONTROL_TOPIC, (m) => this.control(m.payload)),
      // A session revoked while this instance was not listening is caught up here.
      bus.onRejoin(() => void this.recheckSessions()),
    ];
  }

  private async recheckSessions(): Promise<void> {
    for (const sessions of [...this.byKey.values()]) {
      const first = [...sessions][0];
      if (!first?.sessionId) continue;
      let owner: string | null;
      try {
        owner = await this.data.sessionUser(first.sessionId);
      } catch {
        return; // Redis went again; the next rejoin checks again.
      }
      for (const session of [...sessions]) {
        if (session.userId !== null && session.userId !== owner) this.end(session, HATSU_CLOSE.invalidAuthorization);
      }
    }
  }

  onModuleDestroy(): void {
    for (const stop of this.unsubscribe) stop();
  }

  /** Open hatsu sockets on this process, identified or not: the load discovery compares. */
  get load(): number {
    return this.openSockets;
  }

  /** Runs whenever `load` changes. */
  onLoadChange(listener: () => void): () => void {
    this.loadListeners.add(listener);
    return () => this.loadListeners.delete(listener);
  }

  // ---- connection lifecycle --------------------------------------------------------

  open(socket: WebSocket, ip: string): HatsuSession {
    const id = ulid();
    const session: HatsuSession = {
      ip,
      connection: new Connection({
        id: id as ClientId,
        protocol: HATSU,
        socket,
        normalClose: HATSU_CLOSE.normal,
        slowConsumerClose: HATSU_CLOSE.slowConsumer,
        sendBufferLimit: this.config.WS_SEND_BUFFER_LIMIT,
      }),
      state: 'awaiting',
      timer: null,
      counted: false,
      sessionId: null,
      sessionKey: null,
      userId: null,
      encoding: 'json',
      presences: true,
      deflate: null,
      backlog: [],
      guilds: new Set(),
      delta: null,
    };
    session.timer = setTimeout(() => {
      if (session.state === 'awaiting') this.end(session, HATSU_CLOSE.identifyTimeout);
    }, this.config.HATSU_IDENTIFY_TIMEOUT_MS);
    session.timer.unref();
    this.sessions.set(socket, session);
    this.registry.add(session.connection);
    this.openSockets++;
    this.loadChanged();
    return session;
  }

  close(socket: WebSocket): void {
    const session = this.sessions.get(socket);
    if (!session) return;
    this.sessions.delete(socket);
    session.state = 'closed';
    if (session.timer) clearTimeout(session.timer);
    session.deflate?.close();
    session.backlog = [];
    if (session.counted) this.identified--;
    if (session.userId !== null) unindex(this.byUser, session.userId, session);
    if (session.sessionKey !== null) unindex(this.byKey, session.sessionKey, session);
    this.registry.remove(session.connection);
    this.openSockets--;
    this.loadChanged();
  }

  /** Every client frame, whatever the state. */
  receive(socket: WebSocket, frame: HatsuFrame): void {
    const session = this.sessions.get(socket);
    if (!session) return;
    switch (session.state) {
      case 'awaiting':
        if (session.timer) clearTimeout(session.timer);
        session.timer = null;
        if (frame.kind === 'invalid') {
          this.end(session, HATSU_CLOSE.invalidPayload);
          return;
        }
        session.state = 'identifying';
        this.identify(session, frame.value).catch((err: unknown) => {
          this.log.error({ err, client: session.connection.id }, 'identify failed');
          this.end(session, HATSU_CLOSE.unavailable);
        });
        return;
      case 'identifying':
        if (session.backlog.length < MAX_BACKLOG) session.backlog.push(frame);
        return;
      case 'ready':
        this.handle(session, frame);
        return;
      case 'closed':
        return;
    }
  }

  // ---- identify ------------------------------------------------------------------

  /** The original's checks, in its order (docs/protocols/hatsu.md "Identify"). */
  private async identify(session: HatsuSession, value: unknown): Promise<void> {
    const fields = parseIdentify(value);
    if (!fields) return this.end(session, HATSU_CLOSE.invalidPayload);
    if (this.identified >= this.config.HATSU_MAX_SESSIONS) return this.end(session, HATSU_CLOSE.tooManySessions);
    if (fields.encoding === null) return this.end(session, HATSU_CLOSE.invalidEncoding);
    if (fields.sessionId === null) return this.end(session, HATSU_CLOSE.invalidAuthorization);
    // Counted and revocable before the first await, so neither a burst of identifies nor
    // a DELETE racing this lookup can slip past.
    session.counted = true;
    this.identified++;
    session.sessionId = fields.sessionId;
    session.sessionKey = sessionKey(fields.sessionId);
    index(this.byKey, session.sessionKey, session);

    // A guessed or stale session id counts against the client's address, as every
    // protocol's failed authentication does (AUTH_FAILURE_LIMIT). The attempt is charged
    // before the lookup (refunded on success), so parallel guesses cannot exceed it.
    const attempt = this.limits.beginAuth(session.ip);
    if (!attempt) return this.end(session, HATSU_CLOSE.invalidAuthorization);
    let userId: string | null;
    let user: Awaited<ReturnType<HatsuData['getUser']>>;
    try {
      userId = await this.data.sessionUser(fields.sessionId);
      user = userId === null ? null : await this.data.getUser(userId);
    } catch (err) {
      attempt.succeeded();
      throw err;
    }
    if (userId === null || user === null) attempt.failed();
    else attempt.succeeded();
    if (session.state !== 'identifying') return;
    if (userId === null || user === null) return this.end(session, HATSU_CLOSE.invalidAuthorization);
    if (fields.presences === null) return this.end(session, HATSU_CLOSE.presencesNotBool);

    session.userId = userId;
    session.delta = new Map();
    index(this.byUser, userId, session);
    const guilds = await this.data.guildsOf(userId);
    if (session.state !== 'identifying') return;
    for (const { id } of guilds) session.guilds.add(id);
    for (const [guild, joined] of session.delta) {
      if (joined) session.guilds.add(guild);
      else session.guilds.delete(guild);
    }
    session.delta = null;
    session.encoding = fields.encoding;
    session.presences = fields.presences;
    if (session.encoding === 'zlib') {
      session.deflate = new HatsuDeflate((err) => {
        this.log.error({ err, client: session.connection.id }, 'deflate failed');
        this.end(session, HATSU_CLOSE.internal);
      });
    }
    this.registry.setUser(session.connection, userId);
    this.syncChannels(session);
    session.state = 'ready';

    // No artificial delay: the original slept 9 s between HELLO and READY.
    this.send(session, helloFrame(session.connection.id));
    this.send(session, readyFrame(fields.sessionId, user));
    for (const { id, guild } of guilds) {
      if (!session.guilds.has(id)) continue;
      this.send(session, guildInitFrame(ulid(), { ...guild.guild, _id: id, channels: guild.channels }));
    }
    const backlog = session.backlog;
    session.backlog = [];
    for (const frame of backlog) {
      if (session.state !== 'ready') break;
      this.handle(session, frame);
    }
  }

  // ---- after READY -------------------------------------------------------------------

  private handle(session: HatsuSession, frame: HatsuFrame): void {
    // After identify the original raised on bad JSON (close 1011); a bad frame closes
    // with the identify's own code instead (docs/protocols/hatsu.md).
    if (frame.kind === 'invalid') {
      this.end(session, HATSU_CLOSE.invalidPayload);
      return;
    }
    const event = parseClientEvent(frame.value);
    switch (event.kind) {
      case 'heartbeat':
        this.send(session, ackFrame(session.sessionId ?? '', event.s));
        return;
      case 'presence':
        this.presence(session, event.presence).catch((err: unknown) => {
          this.log.warn({ err: String(err), client: session.connection.id }, 'presence reached this instance only');
        });
        return;
      case 'dispatch':
        this.end(session, HATSU_CLOSE.invalidDispatch);
        return;
      case 'invalid':
        this.end(session, HATSU_CLOSE.invalidPayload);
        return;
      case 'ignored':
        return;
    }
  }

  /**
   * Stores the presence and sends `PRESENCE_UPDATE` to every session sharing a guild with
   * the user (the user's own included), on every instance. A store failure does not stop
   * the fan-out: the presence is live state first.
   */
  private async presence(session: HatsuSession, presence: HatsuPresence): Promise<void> {
    const userId = session.userId;
    if (userId === null) return;
    try {
      await this.data.putPresence(userId, presence);
    } catch (err) {
      this.log.warn({ err: String(err), user: userId }, 'presence not stored');
    }
    if (session.guilds.size === 0) return;
    await this.bus.publish({
      topic: PRESENCE_TOPIC,
      target: { kind: 'channel', ids: [...session.guilds].map(guildChannel) },
      payload: presenceUpdateFrame(userId, presence),
    });
  }

  // ---- delivery -----------------------------------------------------------------------

  /**
   * Writes one message to a session: as text for json, through the connection's deflate
   * stream for zlib. Messages to one connection leave in the order they were sent here.
   */
  private send(session: HatsuSession, payload: Buffer): void {
    const { deflate, connection } = session;
    if (!deflate) {
      connection.send(payload, false);
      return;
    }
    // Bytes waiting for deflate count toward the send-buffer limit like bytes on the wire.
    if (deflate.pendingBytes + connection.socket.bufferedAmount > this.config.WS_SEND_BUFFER_LIMIT) {
      this.end(session, HATSU_CLOSE.slowConsumer);
      return;
    }
    deflate.compress(payload, (compressed) => connection.send(compressed, true));
  }

  /**
   * This instance's share of a bus message: every ready session the target names, once,
   * skipping sessions that turned presences off when it is a presence. The JSON was
   * serialised once by the publisher; only zlib sessions compress it, each in its own stream.
   */
  private deliverLocal(target: Target, payload: Buffer, presence: boolean): void {
    for (const connection of this.registry.resolve(HATSU, target)) {
      const session = this.sessions.get(connection.socket);
      if (!session || session.state !== 'ready') continue;
      if (presence && !session.presences) continue;
      this.send(session, payload);
    }
  }

  /**
   * Sends an admin dispatch to every matching session on every instance; resolves with
   * how many sessions it was sent to: this instance's exact count plus the other live
   * instances' matching sessions as the cluster registry lists them.
   */
  async dispatch(to: DispatchTarget, payload: Buffer, presence: boolean): Promise<number> {
    const target: Target =
      'guildId' in to
        ? { kind: 'channel', ids: [guildChannel(to.guildId)] }
        : 'userId' in to
          ? { kind: 'user', ids: [to.userId] }
          : { kind: 'all' };
    // Asked first: with Redis down this throws (503) before anything is delivered anywhere.
    const instances = await this.registry.instances();
    const local = this.countLocal(target, presence);
    await this.bus.publish({ topic: presence ? PRESENCE_TOPIC : EVENTS_TOPIC, target, payload });
    if (!instances.some((id) => id !== this.registry.instanceId)) return local;
    const remote = (await this.registry.list()).filter(
      (client) => client.instance !== this.registry.instanceId && matches(client, target, presence),
    );
    return local + remote.length;
  }

  private countLocal(target: Target, presence: boolean): number {
    let n = 0;
    for (const connection of this.registry.resolve(HATSU, target)) {
      const session = this.sessions.get(connection.socket);
      if (session?.state === 'ready' && (!presence || session.presences)) n++;
    }
    return n;
  }

  // ---- admin operations on live sessions ----------------------------------------------

  /** Closes every live connection on the session id, on every instance (`4002 Invalid authorization`). */
  revoke(sessionId: string): Promise<void> {
    return this.publishControl({ op: 'revoke', key: sessionKey(sessionId) });
  }

  /** Moves live sessions of joined and departed members in or out of the guild's channel, everywhere. */
  membersChanged(guildId: string, add: readonly string[], remove: readonly string[]): Promise<void> {
    if (add.length === 0 && remove.length === 0) return Promise.resolve();
    return this.publishControl({ op: 'members', guild: guildId, add, remove });
  }

  private publishControl(control: Control): Promise<void> {
    return this.bus.publish({
      topic: CONTROL_TOPIC,
      target: { kind: 'all' },
      payload: Buffer.from(JSON.stringify(control)),
    });
  }

  private control(payload: Buffer): void {
    const control = JSON.parse(payload.toString('utf8')) as Control;
    switch (control.op) {
      case 'revoke':
        for (const session of [...(this.byKey.get(control.key) ?? [])]) {
          this.end(session, HATSU_CLOSE.invalidAuthorization);
        }
        return;
      case 'members':
        for (const user of control.add) this.forUser(user, (s) => this.join(s, control.guild, true));
        for (const user of control.remove) this.forUser(user, (s) => this.join(s, control.guild, false));
        return;
    }
  }

  private forUser(userId: string, fn: (session: HatsuSession) => void): void {
    for (const session of this.byUser.get(userId) ?? []) fn(session);
  }

  private join(session: HatsuSession, guildId: string, joined: boolean): void {
    if (session.state === 'identifying') {
      session.delta?.set(guildId, joined);
      return;
    }
    if (session.state !== 'ready') return;
    if (joined) session.guilds.add(guildId);
    else session.guilds.delete(guildId);
    this.syncChannels(session);
  }

  private syncChannels(session: HatsuSession): void {
    const channels = [...session.guilds].map(guildChannel);
    if (session.presences) channels.push(PRESENCES_CHANNEL);
    this.registry.setChannels(session.connection, channels);
  }

  /**
   * Closes a session with a protocol code; nothing it sends or receives counts after this.
   * On a zlib session the close waits for the messages already queued for compression
   * (HELLO, READY, an ACK...), so it never overtakes them; a slow consumer is cut off at once.
   */
  private end(session: HatsuSession, spec: CloseSpec): void {
    if (session.state === 'closed') return;
    session.state = 'closed';
    if (session.timer) clearTimeout(session.timer);
    if (spec === HATSU_CLOSE.slowConsumer) {
      session.connection.close(spec);
      const socket = session.connection.socket;
      setTimeout(() => socket.terminate(), SLOW_CONSUMER_GRACE_MS).unref();
      return;
    }
    if (session.deflate) session.deflate.afterQueued(() => session.connection.close(spec));
    else session.connection.close(spec);
  }

  private loadChanged(): void {
    for (const listener of this.loadListeners) listener();
  }
}

/** Whether another instance's client (from the cluster registry) is a recipient of `target`. */
function matches(client: ClientInfo, target: Target, presence: boolean): boolean {
  if (client.protocol !== HATSU || client.user === null) return false;
  if (presence && !client.channels.includes(PRESENCES_CHANNEL)) return false;
  switch (target.kind) {
    case 'all':
      return true;
    case 'user':
      return target.ids.includes(client.user);
    case 'channel':
      return client.channels.some((channel) => target.ids.includes(channel));
    case 'client':
      return target.ids.includes(client.id);
  }
}

function index(map: Map<string, Set<HatsuSession>>, key: string, session: HatsuSession): void {
  let set = map.get(key);
  if (!set) {
    set = new Set();
    map.set(key, set);
  }
  set.add(session);
}

function unindex(map: Map<string, Set<HatsuSession>>, key: string, session: HatsuSession): void {
  const set = map.get(key);
  if (!set) return;
  set.delete(session);
  if (set.size === 0) map.delete(key);
}
