import { Catch, Logger, type ArgumentsHost, type WsExceptionFilter } from '@nestjs/common';
import type { WebSocket } from 'ws';
import { HATSU_CLOSE } from './hatsu.codes.js';

/**
 * hatsu has no error frame: the original closed the socket whenever something went
 * wrong. An unexpected exception in a handler is logged and the socket closed `1011`,
 * never answered with Nest's `{"event":"exception"}` or a stack trace.
 */
@Catch()
export class HatsuExceptionFilter implements WsExceptionFilter {
  private readonly log = new Logger('hatsu');

  catch(exception: unknown, host: ArgumentsHost): void {
    this.log.error(exception instanceof Error ? exception : String(exception));
    const socket = host.switchToWs().getClient<WebSocket>();
    if (socket.readyState === socket.OPEN) socket.close(HATSU_CLOSE.internal.code, HATSU_CLOSE.internal.reason);
  }
}
