import { Injectable, type CallHandler, type ExecutionContext, type NestInterceptor } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request, Response } from 'express';
import { createHash } from 'node:crypto';
import type { Logger as Pino } from 'pino';
import type { Observable } from 'rxjs';
import { isJsonObject } from '../json.js';
import { GatehouseLogger } from './gatehouse-logger.js';
import { routeOf } from './http-log.js';

export const SECRET_PARAMS = 'gatehouse:secretParams';

/** A body's field names in an audit line, at most this many. */
const MAX_FIELDS = 20;

const READS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * One `admin write` line per admin request that changed something (any method but GET,
 * answered below 400): the route, its path ids and the names of the body's fields, never a
 * value from the body (a token, a document) and never a secret path parameter, which is
 * named by a fingerprint instead (`sha256:<12 hex>`) so lines about one session still match.
 */
@Injectable()
export class AdminAudit implements NestInterceptor {
  private readonly log: Pino;

  constructor(
    private readonly reflector: Reflector,
    logger: GatehouseLogger,
  ) {
    this.log = logger.child({ context: 'AdminAudit' });
  }

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const http = context.switchToHttp();
    const req = http.getRequest<Request>();
    if (context.getType() === 'http' && !READS.has(req.method)) {
      const secret = this.reflector.getAllAndOverride<readonly string[] | undefined>(SECRET_PARAMS, [
        context.getHandler(),
        context.getClass(),
      ]);
      const res = http.getResponse<Response>();
      res.once('finish', () => {
        if (res.statusCode >= 400) return;
        this.log.info(
          {
            method: req.method,
            route: routeOf(req),
            params: params(req.params, secret ?? []),
            fields: fields(req.body),
            status: res.statusCode,
          },
          'admin write',
        );
      });
    }
    return next.handle();
  }
}

function params(values: Record<string, string | string[]>, secret: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, raw] of Object.entries(values)) {
    const value = Array.isArray(raw) ? raw.join('/') : raw;
    out[name] = secret.includes(name) ? fingerprint(value) : value;
  }
  return out;
}

function fingerprint(value: string): string {
  return `sha256:${createHash('sha256').update(value, 'utf8').digest('hex').slice(0, 12)}`;
}

function fields(body: unknown): string[] {
  if (!isJsonObject(body)) return [];
  const names = Object.keys(body);
  if (names.length <= MAX_FIELDS) return names;
  return [...names.slice(0, MAX_FIELDS), `+${names.length - MAX_FIELDS} more`];
}
