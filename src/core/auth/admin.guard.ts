import { Injectable, UnauthorizedException, type CanActivate, type ExecutionContext } from '@nestjs/common';
import type { Request } from 'express';
import { AdminToken } from './admin-token.js';
import { secretsEqual } from './secrets.js';

/** `Authorization: Bearer <ADMIN_TOKEN>` on every `/admin` route; anything else is 401. */
@Injectable()
export class AdminGuard implements CanActivate {
  constructor(private readonly token: AdminToken) {}

  canActivate(context: ExecutionContext): boolean {
    const header = context.switchToHttp().getRequest<Request>().headers.authorization;
    const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    if (!match?.[1] || !secretsEqual(match[1], this.token.value)) {
      throw new UnauthorizedException('A valid admin bearer token is required');
    }
    return true;
  }
}
