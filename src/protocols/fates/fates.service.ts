import { Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Logger as Pino } from 'pino';
import type { WebSocket } from 'ws';
import { AppConfig } from '../../config/app-config.js';
import { hashToken, matchesHash } from '../../core/auth/secrets.js';
import { EventBus, type Target } from '../../core/bus/event-bus.js';
import { EngineUnavailableError } from '../../core/errors/engine-unavailable.error.js';
import { GatehouseLogger } from '../../core/logging/gatehouse-logger.js';
import { ClientRegistry } from '../../core/registry/client-registry.js';
import { Connection, type ClientId, type CloseSpec } from '../../core/registry/connection.js';
import { SessionTable } from '../../core/registry/session-table.js';
import { UpgradeLimits } from '../../core/ws/upgrade-limits.js';
import { clientIp } from '../../core/ws/ws-protocol.js';
import {
  batchFrames,
  channelOf,
  encodeControl,
  encodeEvent,
  parseIdentify,
  type FatesTarget,
  type IdentifyPayload,
} from './fates.codec.js';
import {
  FATES_CLOSE,
  FATES_DETAIL,
  FATES_ERAS,
  FATES_EVENTS,
  FATES_PROTOCOL,
  FATES_PROTOCOLS,
  GLOBAL_CHANNEL,
  IDENTIFY_COST,
  NOT_IDENTIFIED,
  type ControlCode,
  type FatesEra,
} from './fates.codes.js';
import { completeFatesEvent, type FatesEvent } from './dto/fates-event.js';
import { FatesData } from './fates-data.js';

/**
 * `awaiting`: the identity payload went out, no identify yet. `identifying`: the first
 * frame is being checked (later frames are only counted, once it succeeds). `ready`:
 * identified. `closed`: refused, rate-limited, revoked or gone.
 */
type SessionState = 'awaiting' | 'identifying' | 'ready' | 'closed';

/** A live event that arrived while the connection's replay was being read and sent. */
interface HeldEvent {
  chan: string;
  /** The event's JSON, to recognise an event the replay already carried. */
  event: Buffer;
  /** The era's bytes, `\x1f` included. */
  frame: Buffer;
}

export interface FatesSession {
  readonly era: FatesEra;
  readonly connection: Connection;
  state: SessionState;
  target: FatesTarget | null;
  /** Live events held back until the replay is out; null when live events go straight out. */
  held: HeldEvent[] | null;
  /** Bytes of `held`, bounded by WS_SEND_BUFFER_LIMIT. */
  heldBytes: number;
  /**
   * Frames not yet counted against the budget: those that arrived while identify ran, and
   * those that arrive while a count is in flight (one store round trip at a time per connection).
   */
  deferred: number;
  counting: boolean;
  /** The rate counter as last seen, for when the store cannot be asked. */
  used: number;
  /** The client address: a failed identify counts against it in the shared throttle. */
  readonly ip: string;
}

/** A connection whose replay takes this many live events behind it is cut off as a slow consumer. */
const MAX_HELD_EVENTS = 10_000;

/**
 * The Fates behaviour behind both eras' gateways and the admin API: identify, the shared
 * rate limit, replay then live delivery with nothing lost or doubled in between, and token
 * revocation on every instance. docs/protocols/fates.md describes it from the outside.
 *
 * An identified connection is filed in the registry under its bot or server (`bot-<id>`,
 * `server-<id>`) as user and credential, with the digest of the token it identified with as
 * the credential's version: a rotation revokes the credential but keeps the new digest's
 * connections, a deletion revokes them all.
 */
@Injectable()
export class FatesService {
  private readonly sessions: SessionTable<FatesSession>;
  /** Sessions on this instance holding live events back during a replay. */
  private holding = 0;
  private readonly log: Pino;
  private readonly limit: number;
  private readonly windowMs: number;
  private readonly historyLimit: number;
  private readonly sendBufferLimit: number;

  constructor(
    private readonly registry: ClientRegistry,
    private readonly bus: EventBus,
    private readonly data: FatesData,
    config: AppConfig,
    logger: GatehouseLogger,
    // The per-IP failed-authentication throttle every protocol shares.
    private readonly limits: UpgradeLimits,
  ) {
    this.log = logger.child({ protocol: 'fates' });
    this.sessions = new SessionTable(registry);
    this.limit = config.FATES_RATE_LIMIT;
    this.windowMs = config.FATES_RATE_WINDOW_MS;
    this.historyLimit = config.FATES_HISTORY_LIMIT;
    this.sendBufferLimit = config.WS_SEND_BUFFER_LIMIT;
    bus.subscribe(FATES_EVENTS, (event, target) => this.deliver(event, target));
    // A rotated or deleted token ends the session, not just the socket: held events go too.
    for (const protocol of FATES_PROTOCOLS) {
      registry.onRevoke(protocol, (connection, close) => {
        const session = this.sessions.of(connection);
        if (session) this.end(session, close);
      });
    }
    // After a gap in the bus a rotation or deletion may have been missed: every identified
    // connection's token is checked against the store again (one read per bot or server).
    registry.recheckOnRejoin(
      FATES_PROTOCOLS,
      (_, sample) => {
        // A connection is filed under its bot or server only once its target is known.
        const target = this.sessions.of(sample)?.target;
        return target ? this.data.tokenDigest(target) : Promise.resolve(sample.credentialVersion);
      },
      (connection, digest) => connection.credentialVersion === digest,
      (connection) => {
        const session = this.sessions.of(connection);
        if (session) this.end(session, FATES_CLOSE.invalidAuth);
      },
    );
  }

  // ---- sockets -----------------------------------------------------------------------------

  /** A new socket: registered (unidentified) and sent the identity payload. */
  open(socket: WebSocket, era: FatesEra, req: IncomingMessage): FatesSession {
    const ip = clientIp(req);
    const connection = new Connection({
      id: randomUUID() as ClientId,
      protocol: FATES_PROTOCOL[era],
      socket,
      ip,
      normalClose: FATES_CLOSE.normal,
      slowConsumerClose: FATES_CLOSE.slowConsumer,
      sendBufferLimit: this.sendBufferLimit,
    });
    const session: FatesSession = {
      era,
      connection,
      state: 'awaiting',
      target: null,
      held: null,
      heldBytes: 0,
      deferred: 0,
      counting: false,
      used: 0,
      ip,
    };
    this.sessions.open(session);
    this.control(session, 'identity', FATES_DETAIL.identity[era], NOT_IDENTIFIED);
    return session;
  }

  close(socket: WebSocket): void {
    const session = this.sessions.close(socket);
    if (!session) return;
    session.state = 'closed';
    this.release(session);
  }

  /**
   * Any client frame. The first is the identify; after a successful identify every frame,
   * whatever it holds, only costs one request (the original's read loop did the same).
   */
  receive(socket: WebSocket, frame: Buffer): void {
    const session = this.sessions.get(socket);
    if (!session) return;
    switch (session.state) {
      case 'awaiting':
        session.state = 'identifying';
        this.run(session, this.identify(session, frame));
        return;
      case 'identifying':
        session.deferred++;
        return;
      case 'ready':
        session.deferred++;
        if (!session.counting) this.run(session, this.drain(session));
        return;
      case 'closed':
        return;
    }
  }

  /** Flamepaw's `ping` control payload, sent with every WebSocket ping. */
  ping(socket: WebSocket): void {
    const session = this.sessions.get(socket);
    if (!session || session.state === 'closed') return;
    if (session.state !== 'ready') {
      this.control(session, 'ping', FATES_DETAIL.ping, NOT_IDENTIFIED);
      return;
    }
    void this.remaining(session).then((remaining) => this.control(session, 'ping', FATES_DETAIL.ping, remaining));
  }

  // ---- identify and the rate limit ------------------------------------------------------------

  private async identify(session: FatesSession, frame: Buffer): Promise<void> {
    const parsed = parseIdentify(frame, session.era);
    if (!parsed.ok) {
      this.refuse(session, 'invalid_payload', parsed.detail);
      return;
    }
    const { target, token } = parsed.value;
    // Charged before the lookup (refunded on success), so identifies sent in parallel
    // over many sockets cannot all slip under the per-address failure budget.
    const attempt = this.limits.beginAuth(session.ip, session.connection.protocol);
    if (!attempt) {
      this.refuse(session, 'invalid_auth', FATES_DETAIL.throttled);
      return;
    }
    let stored: string | null;
    try {
      stored = await this.data.tokenDigest(target);
    } catch (err) {
      attempt.succeeded();
      throw err;
    }
    if (isClosed(session)) {
      attempt.succeeded();
      return;
    }
    // An unknown id and a wrong token look the same, as the original's single query did.
    if (stored === null || !matchesHash(token, stored)) {
      this.log.debug({ clientId: session.connection.id, target: channelOf(target) }, 'identify refused');
      attempt.failed();
      this.refuse(session, 'invalid_auth', FATES_DETAIL.invalidAuth);
      return;
    }
    attempt.succeeded();
    // Only a successful identify costs budget: failures are the per-IP throttle's business.
    const { used } = await this.data.spend(target, IDENTIFY_COST, this.windowMs);
    if (isClosed(session)) return;
    session.used = used;
    if (used > this.limit) {
      this.rateLimited(session, used);
      return;
    }
    await this.admit(session, parsed.value, stored, used);
  }

  private async admit(session: FatesSession, identify: IdentifyPayload, stored: string, used: number): Promise<void> {
    const { target, sendAll, sendNone } = identify;
    const chan = channelOf(target);
    session.target = target;
    // From here live events are held, not sent: none can slip between the history read
    // and going live, nor arrive before `ready`.
    if (!sendNone) this.hold(session);
    this.registry.setUser(session.connection, chan);
    this.registry.setCredential(session.connection, chan, stored);
    if (!sendNone) this.registry.setChannels(session.connection, [chan, GLOBAL_CHANNEL]);
    // A rotation published before this connection was filed under its credential missed it;
    // the token it wrote did not. Reading the token again closes that gap.
    const current = await this.data.tokenDigest(target);
    if (isClosed(session)) return;
    if (current !== stored) {
      this.end(session, FATES_CLOSE.invalidAuth);
      return;
    }
    // `ready` once the bus reaches the connection: an event published after it is not missed.
    const pending = this.registry.settled();
    if (pending) await pending;
    if (isClosed(session)) return;
    this.control(session, 'ready', FATES_DETAIL.ready(used), this.limit - used);
    session.state = 'ready';
    if (session.deferred > 0) this.run(session, this.drain(session));
    const replayed = sendAll ? await this.replay(session, chan) : null;
    if (isClosed(session) || sendNone) return;
    this.goLive(session, replayed);
  }

  /** Counts the uncounted frames, those arriving meanwhile in one more hit, until none is left. */
  private async drain(session: FatesSession): Promise<void> {
    session.counting = true;
    try {
      while (session.deferred > 0 && !isClosed(session)) {
        const cost = session.deferred;
        session.deferred = 0;
        await this.count(session, cost);
      }
    } finally {
      session.counting = false;
    }
  }

  /** Client chatter after identify: `cost` requests, and the close once the budget is spent. */
  private async count(session: FatesSession, cost: number): Promise<void> {
    const target = session.target;
    if (!target) return;
    let used: number;
    try {
      ({ used } = await this.data.spend(target, cost, this.windowMs));
    } catch (err) {
      // The budget cannot be checked while Redis is away; the connection is not punished for it.
      if (!(err instanceof EngineUnavailableError)) throw err;
      return;
    }
    session.used = used;
    if (isClosed(session) || used <= this.limit) return;
    this.rateLimited(session, used);
  }

  private rateLimited(session: FatesSession, used: number): void {
    this.control(session, 'ratelimited', FATES_DETAIL.ratelimited(used), this.limit - used);
    this.end(session, FATES_CLOSE.ratelimited);
  }

  private refuse(session: FatesSession, code: 'invalid_payload' | 'invalid_auth', detail: string): void {
    this.control(session, code, detail, NOT_IDENTIFIED);
    this.end(session, FATES_CLOSE.invalidAuth);
  }

  /** `requests_remaining` now: the shared counter, or the last one seen if the store is away. */
  private async remaining(session: FatesSession): Promise<number> {
    if (!session.target) return NOT_IDENTIFIED;
    try {
      const { used } = await this.data.spent(session.target);
      return this.limit - used;
    } catch {
      return this.limit - session.used;
    }
  }

  // ---- replay and live delivery -----------------------------------------------------------------

  /**
   * The stored events of the target, then of `global`, oldest first, packed several to a
   * frame; then `done_prior`. Resolves with what was sent, so held live events it already
   * carried are not sent twice.
   */
  private async replay(session: FatesSession, chan: string): Promise<Set<string>> {
    const [own, global] = await Promise.all([this.data.events(chan), this.data.events(GLOBAL_CHANNEL)]);
    if (isClosed(session)) return new Set();
    const era = session.era;
    const events = [
      ...own.map((event) => encodeEvent(era, chan, Buffer.from(event))),
      ...global.map((event) => encodeEvent(era, GLOBAL_CHANNEL, Buffer.from(event))),
    ];
    for (const frame of batchFrames(events)) session.connection.send(frame);
    const remaining = await this.remaining(session);
    this.control(session, 'done_prior', FATES_DETAIL.donePrior, remaining);
    return new Set([...own.map((e) => heldKey(chan, e)), ...global.map((e) => heldKey(GLOBAL_CHANNEL, e))]);
  }

  private goLive(session: FatesSession, replayed: Set<string> | null): void {
    const held = session.held ?? [];
    this.release(session);
    const pending = replayed ? held.filter((h) => !replayed.has(heldKey(h.chan, h.event.toString('utf8')))) : held;
    for (const frame of batchFrames(pending.map((h) => h.frame))) session.connection.send(frame);
  }

  private hold(session: FatesSession): void {
    if (session.held) return;
    session.held = [];
    session.heldBytes = 0;
    this.holding++;
  }

  private release(session: FatesSession): void {
    if (!session.held) return;
    session.held = null;
    session.heldBytes = 0;
    this.holding--;
  }

  /**
   * A live event from any instance. Its bytes are built once per era and written to every
   * recipient of that era; a recipient still replaying keeps them for later.
   */
  private deliver(event: Buffer, target: Target): void {
    if (target.kind !== 'channel' || target.ids.length !== 1) return;
    const chan = target.ids[0] as string;
    for (const era of FATES_ERAS) {
      const protocol = FATES_PROTOCOL[era];
      const frame = encodeEvent(era, chan, event);
      if (this.holding === 0) {
        this.registry.deliver(protocol, target, frame);
        continue;
      }
      for (const session of this.sessions.all(this.registry.resolve(protocol, target))) {
        if (!session.held) {
          session.connection.send(frame);
        } else if (session.held.length >= MAX_HELD_EVENTS || session.heldBytes + frame.length > this.sendBufferLimit) {
          // Held events are bytes owed to the client like any send buffer: the same limit.
          this.end(session, FATES_CLOSE.slowConsumer);
        } else {
          session.held.push({ chan, event, frame });
          session.heldBytes += frame.length;
        }
      }
    }
  }

  // ---- the admin API ------------------------------------------------------------------------------

  /** Sets or rotates a token (stored hashed); connections holding another token are closed everywhere. */
  async setToken(target: FatesTarget, token: string): Promise<void> {
    const digest = hashToken(token);
    await this.data.setTokenDigest(target, digest);
    await this.registry.revoke(FATES_PROTOCOLS, channelOf(target), FATES_CLOSE.invalidAuth, { keep: digest });
  }

  /** Removes a token; resolves false when there was none. Every connection of the id is closed. */
  async deleteToken(target: FatesTarget): Promise<boolean> {
    const existed = await this.data.deleteToken(target);
    // Announced even when nothing was stored: a retry after a publish that failed must
    // still close the connections on the other instances.
    await this.registry.revoke(FATES_PROTOCOLS, channelOf(target), FATES_CLOSE.invalidAuth);
    return existed;
  }

  async hasToken(target: FatesTarget): Promise<boolean> {
    return (await this.data.tokenDigest(target)) !== null;
  }

  /**
   * Stores an event in the channel's bounded history, then publishes it live. Appending
   * first means a connection replaying meanwhile either reads it or holds it, never neither.
   */
  async publish(chan: string, event: FatesEvent): Promise<string> {
    const complete = completeFatesEvent(event);
    const json = JSON.stringify(complete);
    await this.data.appendEvent(chan, json, this.historyLimit);
    await this.bus.publish(FATES_EVENTS, { kind: 'channel', ids: [chan] }, Buffer.from(json));
    return complete.m.eid as string;
  }

  async history(chan: string): Promise<unknown[]> {
    const stored = await this.data.events(chan);
    const events: unknown[] = [];
    for (const entry of stored) {
      try {
        events.push(JSON.parse(entry));
      } catch {
        this.log.warn({ chan }, 'skipped an unreadable stored event');
      }
    }
    return events;
  }

  // ---- plumbing ---------------------------------------------------------------------------------

  private control(session: FatesSession, code: ControlCode, detail: string, remaining: number): void {
    session.connection.send(encodeControl(code, detail, remaining));
  }

  private end(session: FatesSession, spec: CloseSpec): void {
    session.state = 'closed';
    this.release(session);
    // A slow consumer is cut off like any other: nothing more is written, and it is counted.
    if (spec === FATES_CLOSE.slowConsumer) session.connection.dropSlowConsumer();
    else session.connection.close(spec);
  }

  /** Session work runs detached from the socket handler; an engine failure closes 4500, never silently. */
  private run(session: FatesSession, work: Promise<void>): void {
    work.catch((err: unknown) => {
      if (err instanceof EngineUnavailableError) {
        this.log.warn({ clientId: session.connection.id, err: err.message }, 'engine unavailable; connection closed');
      } else {
        this.log.error({ clientId: session.connection.id, err }, 'fates session failed');
      }
      if (session.state !== 'closed') this.end(session, FATES_CLOSE.internal);
    });
  }
}

/** Read through a call so the compiler does not keep the state it saw before an `await`. */
function isClosed(session: FatesSession): boolean {
  return session.state === 'closed';
}

function heldKey(chan: string, event: string): string {
  return `${chan}\u0000${event}`;
}
