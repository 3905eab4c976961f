import { Catch, type ArgumentsHost, type WsExceptionFilter } from '@nestjs/common';
import type { Logger as Pino } from 'pino';
import type { WebSocket } from 'ws';
import type { CloseSpec } from '../registry/connection.js';

/**
 * For a protocol without an error frame: an exception a handler throws is logged and the
 * socket closed with the protocol's internal-error close, so no client ever sees Nest's
 * `{"event":"exception"}` or a stack trace. A protocol binds a subclass that names its
 * logger and close, so Nest can build it with the protocol's dependencies:
 * `@UseFilters(FatesExceptionFilter)`.
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
