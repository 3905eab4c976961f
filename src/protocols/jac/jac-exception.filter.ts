import { Catch, Injectable, type ArgumentsHost, type WsExceptionFilter } from '@nestjs/common';
import type { Logger as Pino } from 'pino';
import type { WebSocket } from 'ws';
import { GatehouseLogger } from '../../core/logging/gatehouse-logger.js';
import { ClientRegistry } from '../../core/registry/client-registry.js';
import { encodeJac } from './jac.codec.js';
import { JAC } from './jac.codes.js';
import { JAC_MESSAGES, JacException, type JacErrorReply } from './jac.errors.js';

/**
 * Every exception on the jac gateway becomes `{"error": [...]}` on the socket, which
 * stays open. Unexpected ones are logged and answered with a generic entry: never
 * a stack trace (the original sent the traceback) and never Nest's `{"event":"exception"}`.
 */
@Catch()
@Injectable()
export class JacExceptionFilter implements WsExceptionFilter {
  private readonly log: Pino;

  constructor(
    private readonly registry: ClientRegistry,
    logger: GatehouseLogger,
  ) {
    this.log = logger.child({ protocol: JAC });
  }

  catch(exception: unknown, host: ArgumentsHost): void {
    const socket = host.switchToWs().getClient<WebSocket>();
    let reply: JacErrorReply;
    if (exception instanceof JacException) {
      reply = { error: exception.entries };
    } else {
      this.log.error({ err: exception, clientId: this.registry.connectionOf(socket)?.id }, 'jac handler failed');
      reply = { error: [{ loc: [], msg: JAC_MESSAGES.internal }] };
    }
    // jac is JSON text; the connection writes it as a text frame.
    this.registry.connectionOf(socket)?.send(encodeJac(reply));
  }
}
