import {
  Injectable,
  ServiceUnavailableException,
  UnauthorizedException,
  type CanActivate,
  type ExecutionContext,
} from '@nestjs/common';
import type { Request, Response } from 'express';
import { Engine } from '../engine/engine.js';
import { GatehouseLogger } from '../logging/gatehouse-logger.js';
import { OccasionalWarning } from '../logging/occasional-warning.js';
import { AdminToken } from './admin-token.js';
import { secretsEqual } from './secrets.js';

/**
 * `Authorization: Bearer <ADMIN_TOKEN>` on every `/admin` route; anything else is 401.
 * A write (any method but GET) while Redis is configured and away is refused with 503
 * before it starts: a write that lands in the store but cannot be announced to the other
 * instances (a token revocation, a membership change) would leave them acting on stale state.
 */
@Injectable()
export class AdminGuard implements CanActivate {
  /** Which Redis link is down when writes are refused (at most once per 10 s). */
  private readonly refused: OccasionalWarning;

  constructor(
    private readonly token: AdminToken,
    private readonly engine: Engine,
    logger: GatehouseLogger,
  ) {
    this.refused = new OccasionalWarning(
      logger.pino.child({ context: 'Http' }),
      'admin write answered 503: redis unavailable',
    );
  }

  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<Request>();
    const header = request.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    if (!match?.[1] || !secretsEqual(match[1], this.token.value)) {
      // RFC 6750: a 401 names the scheme it wants.
      context.switchToHttp().getResponse<Response>().setHeader('WWW-Authenticate', 'Bearer');
      throw new UnauthorizedException({
        statusCode: 401,
        error: 'Unauthorized',
        message: 'A valid admin bearer token is required',
      });
    }
    if (request.method !== 'GET' && !this.engine.available) {
      this.refused.warn({ links: this.engine.redisLinks() });
      throw new ServiceUnavailableException({
        statusCode: 503,
        error: 'Service Unavailable',
        message: 'Redis is unavailable; try again shortly',
      });
    }
    return true;
  }
}
