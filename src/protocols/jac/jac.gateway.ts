import { UseFilters, UseGuards } from '@nestjs/common';
import {
  ConnectedSocket,
  MessageBody,
  SubscribeMessage,
  WebSocketGateway,
  type OnGatewayConnection,
  type OnGatewayDisconnect,
} from '@nestjs/websockets';
import type { IncomingMessage } from 'node:http';
import type { WebSocket } from 'ws';
import { AppConfig } from '../../config/app-config.js';
import { GatewayCatalog } from '../../core/ws/gateway-catalog.js';
import { UpgradeLimits } from '../../core/ws/upgrade-limits.js';
import { clientIp, upgradePrincipal, type UpgradeVerdict } from '../../core/ws/ws-protocol.js';
import { JAC_INVALID, jacCodec, encodeJac, Problems, type JacInbound } from './jac.codec.js';
import { JAC_MESSAGES, JacException, type JacErrorEntry, type JacErrorReply } from './jac.errors.js';
import { JacExceptionFilter } from './jac-exception.filter.js';
import { JacPublishGuard } from './jac-publish.guard.js';
import { JacTokens, PUBLIC_IDENTITY, type JacIdentity } from './jac-tokens.js';
import { JAC, JAC_CLOSE } from './jac.codes.js';
import { JacService, type ConnectionEvent, type JacSession } from './jac.service.js';
import { WalkerRegistry } from './walkers/walker-registry.js';

type Publish = Extract<JacInbound, { type: 'user' | 'channel' | 'client' }>;
type ChangeUser = Extract<JacInbound, { type: 'change_user' }>;
type WalkerCall = Extract<JacInbound, { type: 'walker' }>;

interface WalkerError {
  type: 'walker';
  error: string;
}

/** jac on `/websocket` (docs/protocols/jac.md). */
@WebSocketGateway({ path: '/websocket', protocol: JAC })
@UseFilters(JacExceptionFilter)
export class JacGateway implements OnGatewayConnection, OnGatewayDisconnect {
  constructor(
    private readonly jac: JacService,
    private readonly tokens: JacTokens,
    private readonly walkers: WalkerRegistry,
    private readonly limits: UpgradeLimits,
    catalog: GatewayCatalog,
    config: AppConfig,
  ) {
    catalog.register({
      name: JAC,
      paths: ['/websocket'],
      // A frame of JSON costs the event loop up to ~0.5 ms per KiB to parse (one-letter keys),
      // so the limit bounds how long one frame can hold up every other socket.
      maxPayload: Math.min(config.WS_MAX_PAYLOAD, config.JAC_MAX_PAYLOAD),
      codec: jacCodec,
      closes: JAC_CLOSE,
      heartbeat: {
        intervalMs: config.JAC_PING_INTERVAL_MS,
        timeoutMs: config.JAC_PING_TIMEOUT_MS,
        close: JAC_CLOSE.keepaliveTimeout,
      },
      authenticate: (req) => this.authenticate(req),
    });
  }

  /**
   * Never refuses a client for its token (a bad one is simply public); only when no
   * walker accepts websocket calls is the upgrade refused, as the original did.
   */
  private authenticate(req: IncomingMessage): UpgradeVerdict {
    if (!this.walkers.acceptsWebsocket()) return { accept: false, status: 403 };
    const presented = req.headers.authorization;
    const identity = this.tokens.verifyHeader(presented);
    // A bad token still connects (as public), but counts as a failed authentication.
    if (JacTokens.rejected(presented, identity)) this.limits.authFailed(clientIp(req), JAC);
    return { accept: true, principal: identity };
  }

  // Synchronous on purpose: the session exists before the first message can arrive.
  handleConnection(socket: WebSocket, req: IncomingMessage): void {
    const identity = upgradePrincipal<JacIdentity>(req) ?? PUBLIC_IDENTITY;
    // Sends the connection event once the bus reaches the socket.
    this.jac.open(socket, identity, channelIdOf(req), clientIp(req));
  }

  handleDisconnect(socket: WebSocket): void {
    this.jac.close(socket);
  }

  @SubscribeMessage(JAC_INVALID)
  invalid(@MessageBody() errors: JacErrorEntry[]): JacErrorReply {
    return { error: errors };
  }

  @SubscribeMessage('connection')
  connection(@ConnectedSocket() socket: WebSocket): ConnectionEvent {
    return this.jac.connectionEvent(this.sessionOf(socket));
  }

  @SubscribeMessage('user')
  @UseGuards(JacPublishGuard)
  user(@MessageBody() message: Publish): void {
    this.publish(message);
  }

  @SubscribeMessage('channel')
  @UseGuards(JacPublishGuard)
  channel(@MessageBody() message: Publish): void {
    this.publish(message);
  }

  @SubscribeMessage('client')
  @UseGuards(JacPublishGuard)
  client(@MessageBody() message: Publish): void {
    this.publish(message);
  }

  /**
   * Re-authenticates with `token` (`Bearer <jwt>` or bare); an invalid or absent token
   * makes the socket public. The original fell back to the handshake header when the
   * token was absent; the document says public, and so do we (docs/protocols/jac.md).
   */
  /** Replies with the connection event, sent by the service once the new root is reachable. */
  @SubscribeMessage('change_user')
  changeUser(@ConnectedSocket() socket: WebSocket, @MessageBody() message: ChangeUser): void {
    const session = this.sessionOf(socket);
    const identity = this.tokens.verifyHeader(message.token);
    if (JacTokens.rejected(message.token, identity)) this.limits.authFailed(session.ip, JAC);
    this.jac.setIdentity(session, identity);
  }

  @SubscribeMessage('walker')
  async walker(
    @ConnectedSocket() socket: WebSocket,
    @MessageBody() message: WalkerCall,
  ): Promise<WalkerError | JacErrorReply | Record<string, unknown> | undefined> {
    const session = this.sessionOf(socket);
    const self = (data: unknown): void => void session.connection.send(encodeJac(data));
    const outcome = await this.jac.runWalker(
      message.walker,
      'websocket',
      message.context,
      session.identity,
      self,
      message.node,
    );
    switch (outcome.kind) {
      case 'unknown':
        return { type: 'walker', error: JAC_MESSAGES.unknownWalker };
      case 'unauthenticated':
        return { type: 'walker', error: JAC_MESSAGES.walkerNeedsAuth(outcome.name) };
      case 'invalid': {
        // A walker's context can be validated item by item: its reply is capped like any other.
        const problems = new Problems('walker');
        for (const p of outcome.problems) problems.add(['walker', 'context', ...p.field.split('.')], p.message);
        return { error: problems.reply() };
      }
      case 'failed':
        return { error: [{ loc: ['walker'], msg: JAC_MESSAGES.walkerFailed(outcome.name) }] };
      case 'ok':
        if (!message.response) return undefined;
        return outcome.reports.length > 0 ? { status: 200, reports: outcome.reports } : { status: 200 };
    }
  }

  private publish(message: Publish): void {
    this.jac.notifyFromSocket(message.type, message.ids, message.data);
  }

  private sessionOf(socket: WebSocket): JacSession {
    const session = this.jac.session(socket);
    if (!session) throw new JacException([{ loc: [], msg: JAC_MESSAGES.internal }]);
    return session;
  }
}

function channelIdOf(req: IncomingMessage): string | undefined {
  try {
    const value = new URL(req.url ?? '/', 'http://localhost').searchParams.get('channel_id');
    return value === null || value === '' ? undefined : value;
  } catch {
    return undefined;
  }
}
