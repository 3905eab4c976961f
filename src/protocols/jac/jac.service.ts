import { Injectable } from '@nestjs/common';
import type { Logger as Pino } from 'pino';
import type { WebSocket } from 'ws';
import { AppConfig } from '../../config/app-config.js';
import { EventBus } from '../../core/bus/event-bus.js';
import { GatehouseLogger } from '../../core/logging/gatehouse-logger.js';
import { OccasionalWarning } from '../../core/logging/occasional-warning.js';
import { ClientRegistry } from '../../core/registry/client-registry.js';
import { Connection, type ClientId } from '../../core/registry/connection.js';
import { SessionTable } from '../../core/registry/session-table.js';
import type { FieldProblem } from '../../core/http/validation.js';
import { encodeJac, type PublishKind } from './jac.codec.js';
import { JAC, JAC_EVENTS } from './jac.codes.js';
import { isAuthenticated, newJacId, type JacIdentity } from './jac-tokens.js';
import { WalkerRegistry } from './walkers/walker-registry.js';
import { WalkerRun, type JacNotifier } from './walkers/walker-run.js';

/** One jac socket: its registry entry and who it is. */
export interface JacSession {
  readonly connection: Connection;
  readonly channelId: string;
  /** The peer address, for the failed-authentication throttle. */
  readonly ip: string;
  identity: JacIdentity;
}

export type WalkerOutcome =
  | { kind: 'ok'; reports: unknown[] }
  | { kind: 'unknown' }
  | { kind: 'unauthenticated'; name: string }
  | { kind: 'invalid'; problems: FieldProblem[] }
  | { kind: 'failed'; name: string };

export interface ConnectionEvent {
  type: 'connection';
  data: { client_id: string; root_id: string; channel_id: string };
}

/**
 * jac's behaviour, shared by the socket gateway, the HTTP walker route and the admin
 * API: sessions, fan-out through the bus, and walker runs.
 */
@Injectable()
export class JacService implements JacNotifier {
  private readonly sessions: SessionTable<JacSession>;
  private readonly log: Pino;
  /** A hung or down Redis fails every socket publish: one line per interval, not per frame. */
  private readonly localOnly: OccasionalWarning;

  constructor(
    private readonly registry: ClientRegistry,
    private readonly bus: EventBus,
    private readonly walkers: WalkerRegistry,
    private readonly config: AppConfig,
    logger: GatehouseLogger,
  ) {
    this.log = logger.child({ protocol: JAC });
    this.localOnly = new OccasionalWarning(this.log, 'publish reached this instance only');
    this.sessions = new SessionTable(registry);
    registry.relay(JAC_EVENTS);
  }

  open(socket: WebSocket, identity: JacIdentity, channelId: string | undefined, ip: string): JacSession {
    const connection = new Connection({
      id: newJacId() as ClientId,
      protocol: JAC,
      socket,
      ip,
      user: identity.rootId,
      sendBufferLimit: this.config.WS_SEND_BUFFER_LIMIT,
    });
    const session: JacSession = { connection, channelId: channelId ?? newJacId(), ip, identity };
    this.registry.setChannels(connection, [session.channelId]);
    this.sessions.open(session);
    this.acknowledge(session);
    return session;
  }

  /**
   * Sends the connection event once a message to the socket's root, channel or client id
   * reaches it from any instance. Until then the connection is indexed (the session exists
   * before the first frame) but holds whatever is written to it, so the event comes first.
   */
  acknowledge(session: JacSession): void {
    const pending = this.registry.settled();
    if (!pending) {
      session.connection.send(encodeJac(this.connectionEvent(session)));
      return;
    }
    session.connection.hold();
    void pending.then(() => session.connection.release(encodeJac(this.connectionEvent(session))));
  }

  close(socket: WebSocket): void {
    this.sessions.close(socket);
  }

  session(socket: WebSocket): JacSession | undefined {
    return this.sessions.get(socket);
  }

  connectionEvent(session: JacSession): ConnectionEvent {
    return {
      type: 'connection',
      data: { client_id: session.connection.id, root_id: session.identity.rootId, channel_id: session.channelId },
    };
  }

  /** Changes the socket's root, and answers with the connection event (see `acknowledge`). */
  setIdentity(session: JacSession, identity: JacIdentity): void {
    session.identity = identity;
    this.registry.setUser(session.connection, identity.rootId);
    this.acknowledge(session);
  }

  /** jac's `notify_users/channels/clients`: `data` goes as-is to every match, on every instance. */
  notify(kind: PublishKind, ids: readonly string[], data: unknown): Promise<void> {
    if (ids.length === 0) return Promise.resolve();
    return this.bus.publish(JAC_EVENTS, { kind, ids }, encodeJac(data));
  }

  /**
   * A publish from a socket: local delivery has happened when this returns; a Redis
   * outage only costs the other instances' copies, and is logged, not answered.
   */
  notifyFromSocket(kind: PublishKind, ids: readonly string[], data: unknown): void {
    this.notify(kind, ids, data).catch((err: unknown) => {
      this.localOnly.warn({ err: String(err) });
    });
  }

  async runWalker(
    name: string,
    method: 'websocket' | 'post',
    rawContext: Record<string, unknown>,
    identity: JacIdentity,
    self: ((data: unknown) => void) | null,
    node: string | null,
  ): Promise<WalkerOutcome> {
    const walker = this.walkers.find(name, method);
    if (!walker) return { kind: 'unknown' };
    if (walker.auth && !isAuthenticated(identity)) return { kind: 'unauthenticated', name };
    const context = WalkerRegistry.buildContext(walker, rawContext);
    if (Array.isArray(context)) return { kind: 'invalid', problems: context };
    const run = new WalkerRun(this, identity, self, node);
    try {
      await walker.invoke(context, run);
    } catch (err) {
      this.log.error({ walker: name, err }, 'walker failed');
      return { kind: 'failed', name };
    }
    return { kind: 'ok', reports: run.reports };
  }
}
