import { Catch, Logger, type ArgumentsHost, type WsExceptionFilter } from '@nestjs/common';
import type { WebSocket } from 'ws';
import type { CloseSpec } from '../registry/connection.js';

/**
 * For a protocol without an error frame: an exception a handler throws is logged and the
 * socket closed with the protocol's internal-error close, so no client ever sees Nest's
 * `{"event":"exception"}` or a stack trace. Bound per gateway with
 * `@UseFilters(new CloseSocketFilter('<protocol>', close))`.
 */
@Catch()
export class CloseSocketFilter implements WsExceptionFilter {
  private readonly log: Logger;

  constructor(
    context: string,
    private readonly close: CloseSpec,
  ) {
    this.log = new Logger(context);
  }

  catch(exception: unknown, host: ArgumentsHost): void {
    this.log.error(exception instanceof Error ? exception : String(exception));
    const socket = host.switchToWs().getClient<WebSocket>();
    if (socket.readyState === socket.OPEN) socket.close(this.close.code, this.close.reason);
  }
}
