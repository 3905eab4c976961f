import { Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { Logger as Pino } from 'pino';
import type { WebSocket } from 'ws';
import { AppConfig } from '../../config/app-config.js';
import { EventBus } from '../../core/bus/event-bus.js';
import { GatehouseLogger } from '../../core/logging/gatehouse-logger.js';
import type { JsonObject } from '../../core/json.js';
import { ClientRegistry } from '../../core/registry/client-registry.js';
import { Connection, type ClientId } from '../../core/registry/connection.js';
import { SessionTable } from '../../core/registry/session-table.js';
import {
  encodeFelix,
  gdbUpdate,
  heartbeatAck,
  udbUpdate,
  type FelixServerMessage,
  type IgnoredReason,
} from './felix.codec.js';
import { FELIX, FELIX_CLOSE, FELIX_EVENTS } from './felix.codes.js';
import { FelixData, type DocumentKind } from './felix-data.js';
import { ackData, processFigures } from './felix-status.js';
import { FelixStatusService, type StatusReport } from './felix-status.service.js';
import { FelixTokens, type FelixPrincipal } from './felix-tokens.js';

/** One Felix socket: its registry entry and the token it authenticated with. */
export interface FelixSession {
  readonly connection: Connection;
  readonly principal: FelixPrincipal;
}

/**
 * The registry channel a socket joins to listen to a guild's or a user's database entry.
 * Channels are protocol-scoped, so these never meet another protocol's.
 */
export function listenChannel(kind: DocumentKind, id: string): string {
  return `${kind}:${id}`;
}

/**
 * Felix's behaviour, shared by the gateway and the admin API: sessions and their listen
 * lists, the heartbeat ACK from the bot's last reported status, the guild/user documents
 * and their fan-out, and token revocation across instances.
 */
@Injectable()
export class FelixService {
  private readonly sessions: SessionTable<FelixSession>;
  private readonly ignoredCounts = new Map<IgnoredReason, number>();
  private readonly log: Pino;

  constructor(
    private readonly registry: ClientRegistry,
    private readonly bus: EventBus,
    private readonly data: FelixData,
    private readonly tokens: FelixTokens,
    private readonly status: FelixStatusService,
    private readonly config: AppConfig,
    logger: GatehouseLogger,
  ) {
    this.log = logger.child({ protocol: FELIX });
    this.sessions = new SessionTable(registry);
    registry.relay(FELIX_EVENTS);
    // A revocation published while this instance was not listening is caught up here.
    registry.recheckOnRejoin(
      FELIX,
      (tokenId) => this.tokens.exists(tokenId),
      (_, exists) => exists,
      (connection) => connection.close(FELIX_CLOSE.revoked),
    );
  }

  // ---- sockets --------------------------------------------------------------------------

  open(socket: WebSocket, principal: FelixPrincipal, ip: string): FelixSession {
    const connection = new Connection({
      id: randomUUID() as ClientId,
      protocol: FELIX,
      socket,
      ip,
      user: principal.user,
      sendBufferLimit: this.config.WS_SEND_BUFFER_LIMIT,
    });
    this.registry.setCredential(connection, principal.tokenId);
    const session = this.sessions.open({ connection, principal });
    void this.confirmToken(session);
    return session;
  }

  close(socket: WebSocket): void {
    this.sessions.close(socket);
  }

  session(socket: WebSocket): FelixSession | undefined {
    return this.sessions.get(socket);
  }

  /** 20002: the socket now listens to exactly these users and guilds (the lists are replaced, not merged). */
  setListeners(socket: WebSocket, users: readonly string[], guilds: readonly string[]): void {
    const session = this.sessions.get(socket);
    if (!session) return;
    const channels = [
      ...guilds.map((id) => listenChannel('guild', id)),
      ...users.map((id) => listenChannel('user', id)),
    ];
    this.registry.setChannels(session.connection, channels);
  }

  /**
   * 20001: the 10001 reply for a heartbeat received at `receivedAt`, from the status held in
   * memory; at once when nothing is pending (the common case), else once it has settled.
   */
  heartbeatAck(receivedAt: number): FelixServerMessage | Promise<FelixServerMessage> {
    // The ACK is the protocol's only reply: after it, updates of every id the socket listens
    // to reach it, listen lists changed just before included.
    const pending = this.registry.settled();
    const status = this.status.current();
    if (!pending && !(status instanceof Promise)) return heartbeatAck(ackData(status, receivedAt, processFigures()));
    return Promise.all([status, pending]).then(([known]) => heartbeatAck(ackData(known, receivedAt, processFigures())));
  }

  /** A frame the protocol ignores: counted per reason and logged at debug, never answered. */
  countIgnored(socket: WebSocket, reason: IgnoredReason): void {
    const count = (this.ignoredCounts.get(reason) ?? 0) + 1;
    this.ignoredCounts.set(reason, count);
    this.log.debug({ clientId: this.sessions.get(socket)?.connection.id, reason, count }, 'ignored a client frame');
  }

  /** How many frames this process ignored for `reason`. */
  ignoredCount(reason: IgnoredReason): number {
    return this.ignoredCounts.get(reason) ?? 0;
  }

  // ---- admin ----------------------------------------------------------------------------

  /**
   * Stores a guild or user document and sends 10002/10003 to every socket listening to that
   * id, on every instance: encoded once, one bus publish, the same bytes to every listener.
   */
  async putDocument(kind: DocumentKind, id: string, document: JsonObject): Promise<void> {
    await this.data.putDocument(kind, id, document);
    const message = kind === 'guild' ? gdbUpdate(id, document) : udbUpdate(id, document);
    await this.bus.publish(FELIX_EVENTS, { kind: 'channel', ids: [listenChannel(kind, id)] }, encodeFelix(message));
  }

  getDocument(kind: DocumentKind, id: string): Promise<JsonObject | null> {
    return this.data.getDocument(kind, id);
  }

  /** Stores the bot's status and hands it to every instance's heartbeats. */
  reportStatus(report: StatusReport): Promise<void> {
    return this.status.report(report);
  }

  /** Revokes a token and closes its sockets on every instance; false when there is no such token. */
  async revokeToken(tokenId: string): Promise<boolean> {
    const existed = await this.tokens.revoke(tokenId);
    // Announced even for an unknown id: a retry after a publish that failed must still
    // close the sockets on the other instances.
    await this.registry.revoke(FELIX, tokenId, FELIX_CLOSE.revoked);
    return existed;
  }

  // ---- internals ------------------------------------------------------------------------

  /**
   * Closes a socket whose token was revoked while it was upgrading: the revocation's bus
   * message may have gone out before this socket was indexed, but the store delete came
   * before that message, so this read sees it.
   */
  private async confirmToken(session: FelixSession): Promise<void> {
    try {
      if (!(await this.tokens.exists(session.principal.tokenId))) session.connection.close(FELIX_CLOSE.revoked);
    } catch (err) {
      this.log.debug({ err: String(err), clientId: session.connection.id }, 'token re-check skipped');
    }
  }
}
