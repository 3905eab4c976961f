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
import { clientIp, upgradePrincipal, type UpgradeVerdict } from '../../core/ws/ws-protocol.js';
import {
  FELIX_EVENT,
  FELIX_MAX_PAYLOAD,
  felixCodec,
  type FelixInbound,
  type FelixServerMessage,
} from './felix.codec.js';
import { FelixTokens, type FelixPrincipal } from './felix-tokens.js';
import { FELIX, FELIX_CLOSE } from './felix.codes.js';
import { FelixService } from './felix.service.js';

type Listeners = Extract<FelixInbound, { kind: 'listeners' }>;
type Ignored = Extract<FelixInbound, { kind: 'ignored' }>;

/** Felix on `/felix`, and on any path of `FELIX_PORT` when set (docs/protocols/felix.md). */
@WebSocketGateway({ path: '/felix', protocol: FELIX })
export class FelixGateway implements OnGatewayConnection, OnGatewayDisconnect {
  constructor(
    private readonly felix: FelixService,
    private readonly tokens: FelixTokens,
    catalog: GatewayCatalog,
    config: AppConfig,
  ) {
    catalog.register({
      name: FELIX,
      paths: ['/felix'],
      dedicatedPort: config.FELIX_PORT,
      maxPayload: Math.min(config.WS_MAX_PAYLOAD, FELIX_MAX_PAYLOAD),
      codec: felixCodec,
      closes: FELIX_CLOSE,
      // The original's sweep: every interval, a socket that has not answered the previous
      // ping is terminated (no close frame), the others pinged again.
      heartbeat: {
        intervalMs: config.FELIX_PING_INTERVAL_MS,
        timeoutMs: config.FELIX_PING_INTERVAL_MS,
        close: null,
      },
      authenticate: (req) => this.authenticate(req),
    });
  }

  /** The raw `Authorization` header must be a registered private token; anything else is a 403. */
  private async authenticate(req: IncomingMessage): Promise<UpgradeVerdict> {
    const principal = await this.tokens.verify(req.headers.authorization);
    return principal ? { accept: true, principal } : { accept: false, status: 403 };
  }

  // Synchronous on purpose: the session exists before the first message can arrive. The
  // server sends nothing on connect, as the original did.
  handleConnection(socket: WebSocket, req: IncomingMessage): void {
    const principal = upgradePrincipal<FelixPrincipal>(req);
    if (!principal) {
      socket.terminate();
      return;
    }
    this.felix.open(socket, principal, clientIp(req));
  }

  handleDisconnect(socket: WebSocket): void {
    this.felix.close(socket);
  }

  @SubscribeMessage(FELIX_EVENT.heartbeat)
  heartbeat(): FelixServerMessage | Promise<FelixServerMessage> {
    return this.felix.heartbeatAck(Date.now());
  }

  /** No reply, as in the original. */
  @SubscribeMessage(FELIX_EVENT.listeners)
  listeners(@ConnectedSocket() socket: WebSocket, @MessageBody() message: Listeners): void {
    this.felix.setListeners(socket, message.users, message.guilds);
  }

  @SubscribeMessage(FELIX_EVENT.ignored)
  ignored(@ConnectedSocket() socket: WebSocket, @MessageBody() message: Ignored): void {
    this.felix.countIgnored(socket, message.reason);
  }
}
