import { UseFilters } from '@nestjs/common';
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
import { closeSocketFilter } from '../../core/ws/close-socket.filter.js';
import { GatewayCatalog } from '../../core/ws/gateway-catalog.js';
import { FATES_FRAME, fatesCodec } from './fates.codec.js';
import { FATES_CLOSE, FATES_MAX_PAYLOAD, FATES_PATHS, FATES_PROTOCOL, type FatesEra } from './fates.codes.js';
import { FatesService } from './fates.service.js';

/** An unexpected error in a handler closes the socket 4500, the original's internal-error close. */
const exceptionFilter = closeSocketFilter('fates', FATES_CLOSE.internal);

/**
 * What both eras share; each subclass is one `@WebSocketGateway` (one Nest gateway per
 * path) registering its era's `WsProtocol`. The behaviour is in `FatesService`.
 */
abstract class FatesGateway implements OnGatewayConnection, OnGatewayDisconnect {
  protected constructor(
    private readonly era: FatesEra,
    protected readonly fates: FatesService,
    catalog: GatewayCatalog,
    config: AppConfig,
  ) {
    catalog.register({
      name: FATES_PROTOCOL[era],
      paths: FATES_PATHS[era],
      maxPayload: FATES_MAX_PAYLOAD,
      codec: fatesCodec,
      closes: FATES_CLOSE,
      // A client past its inbound budget is closed as the protocol closes one past its request budget.
      rateLimitClose: FATES_CLOSE.ratelimited,
      heartbeat: {
        intervalMs: config.FATES_PING_INTERVAL_MS,
        timeoutMs: config.FATES_PONG_TIMEOUT_MS,
        close: FATES_CLOSE.invalidConnection,
        // Flamepaw followed every ping frame with a `ping` control payload; v2 did not.
        onPing: era === 'flamepaw' ? (socket) => this.fates.ping(socket) : undefined,
      },
    });
  }

  // Synchronous on purpose: the session exists before the first frame can arrive.
  handleConnection(socket: WebSocket, req: IncomingMessage): void {
    this.fates.open(socket, this.era, req);
  }

  handleDisconnect(socket: WebSocket): void {
    this.fates.close(socket);
  }

  @SubscribeMessage(FATES_FRAME)
  frame(@ConnectedSocket() socket: WebSocket, @MessageBody() frame: Buffer): void {
    this.fates.receive(socket, frame);
  }
}

/** The v2 era on `/api/ws`: bare events, always a bot. */
@WebSocketGateway({ path: '/api/ws', protocol: FATES_PROTOCOL.v2 })
@UseFilters(exceptionFilter)
export class FatesV2Gateway extends FatesGateway {
  constructor(fates: FatesService, catalog: GatewayCatalog, config: AppConfig) {
    super('v2', fates, catalog, config);
  }
}

/** The flamepaw era on `/flamepaw/ws`, `/api/flamepaw/ws`, `/api/dragon/ws`: wrapped events, bots and servers. */
@WebSocketGateway({ path: '/flamepaw/ws', protocol: FATES_PROTOCOL.flamepaw })
@UseFilters(exceptionFilter)
export class FatesFlamepawGateway extends FatesGateway {
  constructor(fates: FatesService, catalog: GatewayCatalog, config: AppConfig) {
    super('flamepaw', fates, catalog, config);
  }
}
