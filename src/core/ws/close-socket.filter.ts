import { Catch, Injectable, type ArgumentsHost, type Type, type WsExceptionFilter } from '@nestjs/common';
import type { Logger as Pino } from 'pino';
import type { WebSocket } from 'ws';
import { GatehouseLogger } from '../logging/gatehouse-logger.js';
import type { CloseSpec } from '../registry/connection.js';

/**
 * For a protocol without an error frame: an exception a handler throws is logged and the
 * socket closed with the protocol's internal-error close, so no client ever sees Nest's
 * `{"event":"exception"}` or a stack trace. A gateway binds the one `closeSocketFilter`
 * makes for its protocol: `@UseFilters(closeSocketFilter('fates', FATES_CLOSE.internal))`.
 */
@Catch()
export class CloseSocketFilter implements WsExceptionFilter {
  constructor(
    private readonly log: Pino,
    private readonly close: CloseSpec,
  ) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    this.log.error({ err: exception instanceof Error ? exception : String(exception) }, 'handler failed');
    const socket = host.switchToWs().getClient<WebSocket>();
    if (socket.readyState === socket.OPEN) socket.close(this.close.code, this.close.reason);
  }
}

/** The filter class for one protocol, built by Nest with the application's logger. */
export function closeSocketFilter(protocol: string, close: CloseSpec): Type<WsExceptionFilter> {
  @Catch()
  @Injectable()
  class ProtocolCloseSocketFilter extends CloseSocketFilter {
    constructor(logger: GatehouseLogger) {
      super(logger.child({ protocol }), close);
    }
  }
  return ProtocolCloseSocketFilter;
}
