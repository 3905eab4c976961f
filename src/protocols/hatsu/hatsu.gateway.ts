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
import { Metrics } from '../../core/metrics/metrics.js';
import { closeSocketFilter } from '../../core/ws/close-socket.filter.js';
import { GatewayCatalog } from '../../core/ws/gateway-catalog.js';
import { clientIp } from '../../core/ws/ws-protocol.js';
import { HATSU_FRAME, hatsuCodec, type HatsuFrame } from './hatsu.codec.js';
import { HATSU, HATSU_CLOSE } from './hatsu.codes.js';
import { HatsuService } from './hatsu.service.js';

/**
 * hatsu has no error frame: the original closed the socket whenever something went wrong.
 * An unexpected exception in a handler closes it `1011`.
 */
const exceptionFilter = closeSocketFilter('hatsu', HATSU_CLOSE.internal);

/**
 * hatsu on `/hatsu` and `/` (the published client connects with no path; a plain `GET /`
 * stays the HTTP index), and on any path of `HATSU_PORT` when set (docs/protocols/hatsu.md).
 */
@WebSocketGateway({ path: '/hatsu', protocol: HATSU })
@UseFilters(exceptionFilter)
export class HatsuGateway implements OnGatewayConnection, OnGatewayDisconnect {
  constructor(
    private readonly hatsu: HatsuService,
    catalog: GatewayCatalog,
    config: AppConfig,
    metrics: Metrics,
  ) {
    metrics.watchZlib(HATSU, hatsu.zlib);
    catalog.register({
      name: HATSU,
      paths: ['/hatsu', '/'],
      dedicatedPort: config.HATSU_PORT,
      // The original took websockets' default max_size, 1 MiB; the largest frame the protocol
      // carries (a presence of six 1024-character strings) is about 6 KiB in ASCII.
      maxPayload: Math.min(config.WS_MAX_PAYLOAD, config.HATSU_MAX_PAYLOAD),
      codec: hatsuCodec,
      closes: HATSU_CLOSE,
      heartbeat: {
        intervalMs: config.HATSU_PING_INTERVAL_MS,
        timeoutMs: config.HATSU_PING_TIMEOUT_MS,
        close: HATSU_CLOSE.keepaliveTimeout,
      },
    });
  }

  // Synchronous on purpose: the session (and its identify timer) exists before the first
  // message can arrive. The server sends nothing until the client identifies.
  handleConnection(socket: WebSocket, req: IncomingMessage): void {
    this.hatsu.open(socket, clientIp(req));
  }

  handleDisconnect(socket: WebSocket): void {
    this.hatsu.close(socket);
  }

  /** Every frame: the identify first, then events (the service knows which). */
  @SubscribeMessage(HATSU_FRAME)
  frame(@ConnectedSocket() socket: WebSocket, @MessageBody() frame: HatsuFrame): void {
    this.hatsu.receive(socket, frame);
  }
}
