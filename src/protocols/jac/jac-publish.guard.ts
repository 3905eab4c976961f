import { Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import type { WebSocket } from 'ws';
import { AppConfig } from '../../config/app-config.js';
import { JAC_MESSAGES, JacException } from './jac.errors.js';
import type { JacInbound } from './jac.codec.js';
import { isAuthenticated } from './jac-tokens.js';
import { JacService } from './jac.service.js';

/**
 * `JAC_PUBLISH_POLICY=authenticated` (the default): only authenticated sockets may send
 * `user`, `channel` and `client` events. The original let anyone push to anyone; `open`
 * restores that (docs/protocols/jac.md).
 */
@Injectable()
export class JacPublishGuard implements CanActivate {
  constructor(
    private readonly config: AppConfig,
    private readonly jac: JacService,
  ) {}

  canActivate(context: ExecutionContext): boolean {
    if (this.config.JAC_PUBLISH_POLICY === 'open') return true;
    const ws = context.switchToWs();
    const session = this.jac.session(ws.getClient<WebSocket>());
    if (session && isAuthenticated(session.identity)) return true;
    const message = ws.getData<JacInbound>();
    throw new JacException([{ loc: [message.type], msg: JAC_MESSAGES.publishRefused }]);
  }
}
