import { Injectable, type OnModuleDestroy } from '@nestjs/common';
import type { Logger as Pino } from 'pino';
import type { WebSocket } from 'ws';
import { AppConfig } from '../../config/app-config.js';
import { EventBus, type Target } from '../../core/bus/event-bus.js';
import { GatehouseLogger } from '../../core/logging/gatehouse-logger.js';
import { OccasionalWarning } from '../../core/logging/occasional-warning.js';
import { ClientRegistry } from '../../core/registry/client-registry.js';
import { Connection, type ClientId, type CloseSpec } from '../../core/registry/connection.js';
import { SessionTable } from '../../core/registry/session-table.js';
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
  type HatsuFrame,
  type HatsuPresence,
} from './hatsu.codec.js';
import { HATSU, HATSU_CLOSE, HATSU_EVENTS, HATSU_PRESENCE } from './hatsu.codes.js';
import { busTarget, counted, guildChannel, indexed, type DispatchTarget } from './hatsu-channels.js';
import { HatsuData, sessionKey } from './hatsu-data.js';
import { HatsuDeflate, ZlibContexts } from './hatsu-deflate.js';
import { HatsuMembers } from './hatsu-members.js';
import { PresenceThrottle } from './hatsu-presence.js';
import type { HatsuSession } from './hatsu-session.js';
import { ulid } from './ulid.js';

/** Frames a client may send before READY; they are handled after it, in order. */
const MAX_BACKLOG = 16;

/**
 * hatsu's state machine: a socket from its upgrade through identify to READY and its close,
 * its encoding (json, or a zlib stream of its own), the events it receives through the bus,
 * and the admin operations that reach live sessions. The registry channels it is in are
 * `hatsu-channels.ts`', guild membership `HatsuMembers`', the presence budget
 * `PresenceThrottle`'s. docs/protocols/hatsu.md describes all of it from the outside.
 */
@Injectable()
export class HatsuService implements OnModuleDestroy {
  private readonly sessions: SessionTable<HatsuSession>;
  private readonly loadListeners = new Set<() => void>();
  private readonly unsubscribe: (() => void)[];
  private readonly log: Pino;
  /** A hung or down Redis fails every presence update: one line per interval, not per update. */
  private readonly localPresence: OccasionalWarning;
  private openSockets = 0;
  private identified = 0;
  /** The zlib sessions' deflate contexts, released while their connection is idle. */
  readonly zlib: ZlibContexts;

  constructor(
    private readonly registry: ClientRegistry,
    private readonly bus: EventBus,
    private readonly data: HatsuData,
    private readonly members: HatsuMembers,
    private readonly config: AppConfig,
    private readonly limits: UpgradeLimits,
    logger: GatehouseLogger,
  ) {
    this.log = logger.child({ protocol: HATSU });
    this.localPresence = new OccasionalWarning(this.log, 'presence reached this instance only');
    this.zlib = new ZlibContexts(config.HATSU_ZLIB_IDLE_MS);
    this.sessions = new SessionTable(registry);
    // Admin dispatches answer how many sessions they reached, cluster-wide.
    registry.shareCounts(HATSU);
    this.unsubscribe = [
      bus.subscribe(HATSU_EVENTS, (payload, target) => this.deliverLocal(target, payload, false)),
      bus.subscribe(HATSU_PRESENCE, (payload, target) => this.deliverLocal(target, payload, true)),
      // A revoked session is ended, not only closed: from then on nothing it sends counts
      // and a zlib session's queued messages still go out ahead of the close.
      registry.onRevoke(HATSU, (connection, close) => {
        const session = this.sessions.of(connection);
        if (session) this.end(session, close);
      }),
      // A session id revoked while this instance was not listening is caught up here.
      registry.recheckOnRejoin(
        HATSU,
        (_, sample) => {
          // A socket is filed under its session id's key only once it has sent one.
          const sessionId = this.sessions.of(sample)?.sessionId;
          return sessionId ? this.data.sessionUser(sessionId) : Promise.resolve(null);
        },
        (connection, owner) => {
          const userId = this.sessions.of(connection)?.userId ?? null;
          return userId === null || userId === owner;
        },
        (connection) => {
          const session = this.sessions.of(connection);
          if (session) this.end(session, HATSU_CLOSE.invalidAuthorization);
        },
      ),
    ];
  }

  onModuleDestroy(): void {
    for (const stop of this.unsubscribe) stop();
    this.zlib.stop();
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
    const session: HatsuSession = {
      ip,
      connection: new Connection({
        id: ulid() as ClientId,
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
      presence: new PresenceThrottle(this.config.HATSU_PRESENCE_LIMIT, this.config.HATSU_PRESENCE_WINDOW_MS, (p) =>
        this.sendPresence(session, p),
      ),
    };
    session.timer = setTimeout(() => {
      if (session.state === 'awaiting') this.end(session, HATSU_CLOSE.identifyTimeout);
    }, this.config.HATSU_IDENTIFY_TIMEOUT_MS);
    session.timer.unref();
    this.sessions.open(session);
    this.openSockets++;
    this.loadChanged();
    return session;
  }

  close(socket: WebSocket): void {
    const session = this.sessions.close(socket);
    if (!session) return;
    session.state = 'closed';
    if (session.timer) clearTimeout(session.timer);
    session.presence.stop();
    session.deflate?.close();
    session.backlog = [];
    if (session.counted) this.identified--;
    this.members.untrack(session);
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
          this.log.error({ err, clientId: session.connection.id }, 'identify failed');
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
    this.members.track(session);
    const guilds = await this.data.guildsOf(userId);
    if (session.state !== 'identifying') return;
    for (const { id } of guilds) session.guilds.add(id);
    session.encoding = fields.encoding;
    session.presences = fields.presences;
    if (session.encoding === 'zlib') {
      session.deflate = new HatsuDeflate((err) => {
        this.log.error({ err, clientId: session.connection.id }, 'deflate failed');
        this.end(session, HATSU_CLOSE.internal);
      }, this.zlib);
    }
    this.registry.setUser(session.connection, userId);
    // READY once the bus reaches the session in every channel it is in, membership changes
    // that arrive meanwhile included: an event published after READY is not missed.
    for (;;) {
      applyDelta(session);
      this.members.place(session);
      const pending = this.registry.settled();
      if (pending) await pending;
      if (session.state !== 'identifying') return;
      if (session.delta.size === 0) break;
    }
    session.delta = null;
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
        session.presence.received(event.presence);
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

  private sendPresence(session: HatsuSession, presence: HatsuPresence): void {
    if (session.state !== 'ready') return;
    this.presence(session, presence).catch((err: unknown) => {
      this.localPresence.warn({ err: String(err), clientId: session.connection.id });
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
      this.log.warn({ err: String(err), userId }, 'presence not stored');
    }
    if (session.guilds.size === 0) return;
    await this.bus.publish(
      HATSU_PRESENCE,
      { kind: 'channel', ids: [...session.guilds].map(guildChannel) },
      presenceUpdateFrame(userId, presence),
    );
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
    for (const session of this.sessions.all(this.registry.recipients(HATSU, indexed(target, presence)))) {
      if (session.state === 'ready') this.send(session, payload, prepared);
    }
  }

  /**
   * Sends an admin dispatch to every matching session on every instance; resolves with
   * how many sessions it was sent to: this instance's exact count plus the other live
   * instances' as they last mirrored the size of the same index (docs/protocols/hatsu.md
   * "Dispatch").
   */
  async dispatch(to: DispatchTarget, payload: Buffer, presence: boolean): Promise<number> {
    const audience = counted(to, presence);
    // Asked first: with Redis down this throws (503) before anything is delivered anywhere.
    const remote = await this.registry.remoteCount(HATSU, audience);
    // Counted in the same synchronous step as the local delivery inside publish, so exact.
    const local = this.registry.localCount(HATSU, audience);
    await this.bus.publish(presence ? HATSU_PRESENCE : HATSU_EVENTS, busTarget(to), payload);
    return local + remote;
  }

  // ---- admin operations on live sessions ----------------------------------------------

  /** Closes every live connection on the session id, on every instance (`4002 Invalid authorization`). */
  revoke(sessionId: string): Promise<void> {
    return this.registry.revoke(HATSU, sessionKey(sessionId), HATSU_CLOSE.invalidAuthorization);
  }

  /** Moves live sessions of joined and departed members in or out of the guild's channel, everywhere. */
  membersChanged(guildId: string, add: readonly string[], remove: readonly string[]): Promise<void> {
    return this.members.announce(guildId, add, remove);
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
    session.presence.stop();
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

/** Applies the membership changes heard while identifying, and forgets them. */
function applyDelta(session: HatsuSession): void {
  if (!session.delta) return;
  for (const [guild, joined] of session.delta) {
    if (joined) session.guilds.add(guild);
    else session.guilds.delete(guild);
  }
  session.delta.clear();
}
