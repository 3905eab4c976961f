import { Catch, Logger, type ArgumentsHost, type WsExceptionFilter } from '@nestjs/common';
import type { WebSocket } from 'ws';
import { encodeJac } from './jac.codec.js';
import { JAC_MESSAGES, JacException, type JacErrorReply } from './jac.errors.js';

/**
 * Every exception on the jac gateway becomes `{"error": [...]}` on the socket, which
 * stays open. Unexpected ones are logged and answered with a generic entry: never
 * a stack trace (the original sent the traceback) and never Nest's `{"event":"exception"}`.
 */
@Catch()
export class JacExceptionFilter implements WsExceptionFilter {
  private readonly log = new Logger('jac');

  catch(exception: unknown, host: ArgumentsHost): void {
    const socket = host.switchToWs().getClient<WebSocket>();
    let reply: JacErrorReply;
    if (exception instanceof JacException) {
      reply = { error: exception.entries };
    } else {
      this.log.error(exception instanceof Error ? exception : String(exception));
      reply = { error: [{ loc: [], msg: JAC_MESSAGES.internal }] };
    }
    // jac is JSON text; a Buffer would otherwise go out as a binary frame.
    if (socket.readyState === socket.OPEN) socket.send(encodeJac(reply), { binary: false });
  }
}
