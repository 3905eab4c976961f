import { Injectable, type OnModuleDestroy } from '@nestjs/common';
import type { Logger as Pino } from 'pino';
import type { WebSocket } from 'ws';
import { AppConfig } from '../../config/app-config.js';
import { EventBus, type Target } from '../../core/bus/event-bus.js';
import { encodeJson } from '../../core/json.js';
import { GatehouseLogger } from '../../core/logging/gatehouse-logger.js';
import { ClientRegistry, type CountTarget } from '../../core/registry/client-registry.js';
import { Connection, type ClientId, type CloseSpec } from '../../core/registry/connection.js';
import { addToSet, deleteFromSet } from '../../core/set-map.js';
import { PreparedFrame } from '../../core/ws/prepared-frame.js';
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
/** Membership changes, for every instance. */
const CONTROL_TOPIC = 'hatsu.control';

/*
 * Registry channels. Every ready session is in `sessions` and in its guilds' channels; one
 * that accepts presences is also in `presences`, `presence:user:<its user>` and
 * `presence:guild:<id>` for each guild. So every recipient set (everyone, a guild, a user,
 * each with or without the presence filter) is exactly one index of the registry: delivery
 * resolves it without looking at any session's flags, and a dispatch counts it from index
 * sizes, O(instances) across the cluster. Sessions not ready (identifying, closing) are in
 * none of them.
 */

/** Every ready session: the recipients of `to: {all: true}`. */
export const SESSIONS_CHANNEL = 'sessions';

/** Every ready session that accepts presences. */
export const PRESENCES_CHANNEL = 'presences';

/** A guild's member sessions. */
export function guildChannel(guildId: string): string {
  return `guild:${guildId}`;
}

/** The sessions of a channel that accept presences. */
function presenceChannel(channel: string): string {
  return `presence:${channel}`;
}

/** A user's sessions that accept presences. */
function presenceUserChannel(userId: string): string {
  return `presence:user:${userId}`;
}

/** Frames a client may send before READY; they are handled after it, in order. */
const MAX_BACKLOG = 16;

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
  userId: string | null;
  encoding: HatsuEncoding;
  presences: boolean;
  deflate: HatsuDeflate | null;
  backlog: HatsuFrame[];
  guilds: Set<string>;
  /** Membership changes that arrived while identify was reading the store (guild -> joined). */
  delta: Map<string, boolean> | null;
  /** Client presences sent in the current window, and when it ends (`performance.now()`). */
  presencesInWindow: number;
  presenceWindowEnd: number;
  /** The latest presence past the budget, and the timer that sends it when the window ends. */
  heldPresence: HatsuPresence | null;
  presenceTimer: NodeJS.Timeout | null;
}

interface MembersControl {
  op: 'members';
  guild: string;
  add: readonly string[];
  remove: readonly string[];
}

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
    // Admin dispatches answer how many sessions they reached, cluster-wide.
    registry.shareCounts(HATSU);
    this.unsubscribe = [
      bus.subscribe(EVENTS_TOPIC, (m) => this.deliverLocal(m.target, m.payload, false)),
      bus.subscribe(PRESENCE_TOPIC, (m) => this.deliverLocal(m.target, m.payload, true)),
      bus.subscribe(CONTROL_TOPIC, (m) => this.membersControl(m.payload)),
      // A revoked session is ended, not only closed: from then on nothing it sends counts
      // and a zlib session's queued messages still go out ahead of the close.
      registry.onRevoke(HATSU, (connection, close) => {
        const session = this.sessions.get(connection.socket);
        if (session) this.end(session, close);
      }),
      // A session revoked while this instance was not listening is caught up here.
      bus.onRejoin(() => void this.recheckSessions()),
    ];
  }

  private async recheckSessions(): Promise<void> {
    for (const [, connections] of this.registry.credentials(HATSU)) {
      const first = this.sessionsOf(connections)[0];
      if (!first?.sessionId) continue;
      let owner: string | null;
      try {
        owner = await this.data.sessionUser(first.sessionId);
      } catch {
        return; // Redis went again; the next rejoin checks again.
      }
      for (const session of this.sessionsOf(connections)) {
        if (session.userId !== null && session.userId !== owner) this.end(session, HATSU_CLOSE.invalidAuthorization);
      }
    }
  }

  private sessionsOf(connections: Iterable<Connection>): HatsuSession[] {
    const found: HatsuSession[] = [];
    for (const connection of connections) {
      const session = this.sessions.get(connection.socket);
      if (session) found.push(session);
    }
    return found;
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
        ip,
        normalClose: HATSU_CLOSE.normal,
        slowConsumerClose: HATSU_CLOSE.slowConsumer,
        sendBufferLimit: this.config.WS_SEND_BUFFER_LIMIT,
      }),
      state: 'awaiting',
      timer: null,
      counted: false,
      sessionId: null,
      userId: null,
      encoding: 'json',
      presences: true,
      deflate: null,
      backlog: [],
      guilds: new Set(),
      delta: null,
      presencesInWindow: 0,
      presenceWindowEnd: 0,
      heldPresence: null,
      presenceTimer: null,
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
    dropHeldPresence(session);
    session.deflate?.close();
    session.backlog = [];
    if (session.counted) this.identified--;
    if (session.userId !== null) deleteFromSet(this.byUser, session.userId, session);
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
    this.registry.setCredential(session.connection, sessionKey(fields.sessionId));

    // A guessed or stale session id counts against the client's address, as every
    // protocol's failed authentication does (AUTH_FAILURE_LIMIT). The attempt is charged
    // before the lookup (refunded on success), so parallel guesses cannot exceed it.
    const attempt = this.limits.beginAuth(session.ip, HATSU);
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
    addToSet(this.byUser, userId, session);
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
        this.presenceReceived(session, event.presence);
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
   * A session's presences go out at most `HATSU_PRESENCE_LIMIT` per window of
   * `HATSU_PRESENCE_WINDOW_MS` (each one is stored and copied to every session sharing a
   * guild, so a flood would amplify). Past the budget nothing is closed and nothing is
   * lost: the latest presence is held, replacing any held before it (a presence is state,
   * only the last one matters), and sent when the window ends. At most one held presence
   * and one timer per session (docs/protocols/hatsu.md "Presence").
   */
  private presenceReceived(session: HatsuSession, presence: HatsuPresence): void {
    // While one is held nothing is sent directly, so a late timer can never send an older
    // presence after a newer one.
    if (session.presenceTimer) {
      session.heldPresence = presence;
      return;
    }
    const now = performance.now();
    if (now >= session.presenceWindowEnd) {
      session.presenceWindowEnd = now + this.config.HATSU_PRESENCE_WINDOW_MS;
      session.presencesInWindow = 0;
    }
    if (session.presencesInWindow < this.config.HATSU_PRESENCE_LIMIT) {
      session.presencesInWindow++;
      this.sendPresence(session, presence);
      return;
    }
    session.heldPresence = presence;
    session.presenceTimer = setTimeout(() => this.releasePresence(session), session.presenceWindowEnd - now);
    session.presenceTimer.unref();
  }

  private releasePresence(session: HatsuSession): void {
    const presence = session.heldPresence;
    session.presenceTimer = null;
    session.heldPresence = null;
    if (presence === null || session.state !== 'ready') return;
    // The timer ends the window, whatever the clock read: the held presence opens the next one.
    session.presenceWindowEnd = performance.now() + this.config.HATSU_PRESENCE_WINDOW_MS;
    session.presencesInWindow = 1;
    this.sendPresence(session, presence);
  }

  private sendPresence(session: HatsuSession, presence: HatsuPresence): void {
    this.presence(session, presence).catch((err: unknown) => {
      this.log.warn({ err: String(err), client: session.connection.id }, 'presence reached this instance only');
    });
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
   * `prepared` is the same message framed once for every json recipient of a fan-out.
   */
  private send(session: HatsuSession, payload: Buffer, prepared?: PreparedFrame): void {
    const { deflate, connection } = session;
    if (!deflate) {
      if (prepared) connection.sendPrepared(prepared);
      else connection.send(payload, false);
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
   * This instance's share of a bus message: every ready session the target names, once.
   * The JSON was serialised once by the publisher; json sessions all get the same frame,
   * built once here, and only zlib sessions compress it, each in its own stream.
   */
  private deliverLocal(target: Target, payload: Buffer, presence: boolean): void {
    const prepared = new PreparedFrame(payload, false);
    for (const connection of this.registry.recipients(HATSU, indexed(target, presence))) {
      const session = this.sessions.get(connection.socket);
      if (session?.state === 'ready') this.send(session, payload, prepared);
    }
  }

  /**
   * Sends an admin dispatch to every matching session on every instance; resolves with
   * how many sessions it was sent to: this instance's exact count plus the other live
   * instances' as they last mirrored the size of the same index (docs/protocols/hatsu.md
   * "Dispatch").
   */
  async dispatch(to: DispatchTarget, payload: Buffer, presence: boolean): Promise<number> {
    const target: Target =
      'guildId' in to
        ? { kind: 'channel', ids: [guildChannel(to.guildId)] }
        : 'userId' in to
          ? { kind: 'user', ids: [to.userId] }
          : { kind: 'all' };
    const audience = counted(to, presence);
    // Asked first: with Redis down this throws (503) before anything is delivered anywhere.
    const remote = await this.registry.remoteCount(HATSU, audience);
    // Counted in the same synchronous step as the local delivery inside publish, so exact.
    const local = this.registry.localCount(HATSU, audience);
    await this.bus.publish({ topic: presence ? PRESENCE_TOPIC : EVENTS_TOPIC, target, payload });
    return local + remote;
  }

  // ---- admin operations on live sessions ----------------------------------------------

  /** Closes every live connection on the session id, on every instance (`4002 Invalid authorization`). */
  revoke(sessionId: string): Promise<void> {
    return this.registry.revoke(HATSU, sessionKey(sessionId), HATSU_CLOSE.invalidAuthorization);
  }

  /** Moves live sessions of joined and departed members in or out of the guild's channel, everywhere. */
  membersChanged(guildId: string, add: readonly string[], remove: readonly string[]): Promise<void> {
    if (add.length === 0 && remove.length === 0) return Promise.resolve();
    const control: MembersControl = { op: 'members', guild: guildId, add, remove };
    return this.bus.publish({ topic: CONTROL_TOPIC, target: { kind: 'all' }, payload: encodeJson(control) });
  }

  private membersControl(payload: Buffer): void {
    const control = JSON.parse(payload.toString('utf8')) as MembersControl;
    // Only membership changes travel here; revocations go through the registry.
    if (control.op !== 'members') return;
    for (const user of control.add) this.forUser(user, (s) => this.join(s, control.guild, true));
    for (const user of control.remove) this.forUser(user, (s) => this.join(s, control.guild, false));
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

  /** The session's registry channels, from its guilds and its presences flag (see `SESSIONS_CHANNEL`). */
  private syncChannels(session: HatsuSession): void {
    const guilds = [...session.guilds].map(guildChannel);
    const channels = [SESSIONS_CHANNEL, ...guilds];
    if (session.presences && session.userId !== null) {
      channels.push(PRESENCES_CHANNEL, presenceUserChannel(session.userId), ...guilds.map(presenceChannel));
    }
    this.registry.setChannels(session.connection, channels);
  }

  /**
   * Closes a session with a protocol code; nothing it sends or receives counts after this.
   * On a zlib session the close waits for the messages already queued for compression
   * (HELLO, READY, an ACK...), so it never overtakes them; a slow consumer is cut off at once.
   */
  private end(session: HatsuSession, spec: CloseSpec): void {
    if (session.state === 'closed') return;
    const wasReady = session.state === 'ready';
    session.state = 'closed';
    if (session.timer) clearTimeout(session.timer);
    dropHeldPresence(session);
    if (wasReady) {
      // Out of every index at once: from here on it is neither sent events nor counted,
      // though its socket stays registered until the close completes.
      this.registry.setChannels(session.connection, []);
      this.registry.setUser(session.connection, null);
    }
    if (spec === HATSU_CLOSE.slowConsumer) {
      session.connection.dropSlowConsumer();
      return;
    }
    if (session.deflate) session.deflate.afterQueued(() => session.connection.close(spec));
    else session.connection.close(spec);
  }

  private loadChanged(): void {
    for (const listener of this.loadListeners) listener();
  }
}

/**
 * Where a bus message's recipients are indexed here. The bus names them as the publisher
 * did (a guild's channel, a user, everyone; presences on their own topic), and each
 * instance maps that onto its registry channels.
 */
function indexed(target: Target, presence: boolean): Target {
  switch (target.kind) {
    case 'all':
      return { kind: 'channel', ids: [presence ? PRESENCES_CHANNEL : SESSIONS_CHANNEL] };
    case 'user':
      return presence ? { kind: 'channel', ids: target.ids.map(presenceUserChannel) } : target;
    case 'channel':
      return presence ? { kind: 'channel', ids: target.ids.map(presenceChannel) } : target;
    case 'client':
      return target;
  }
}

/** The one registry index holding a dispatch's recipients: `indexed` of its target. */
function counted(to: DispatchTarget, presence: boolean): CountTarget {
  if ('guildId' in to) {
    const channel = guildChannel(to.guildId);
    return { kind: 'channel', id: presence ? presenceChannel(channel) : channel };
  }
  if ('userId' in to) {
    return presence ? { kind: 'channel', id: presenceUserChannel(to.userId) } : { kind: 'user', id: to.userId };
  }
  return { kind: 'channel', id: presence ? PRESENCES_CHANNEL : SESSIONS_CHANNEL };
}

function dropHeldPresence(session: HatsuSession): void {
  if (session.presenceTimer) clearTimeout(session.presenceTimer);
  session.presenceTimer = null;
  session.heldPresence = null;
}
