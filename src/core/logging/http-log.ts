import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger as Pino } from 'pino';
import { pinoHttp } from 'pino-http';
import type { ProxyTrust } from '../http/proxy-trust.js';
import type { Metrics } from '../metrics/metrics.js';

/** Probes and scrapes come every few seconds from machines; their lines are debug detail. */
const PROBES = /^\/(?:health\/(?:live|ready)|metrics)\/?$/;

/** Paths of requests that matched no route are logged, but never longer than this. */
const MAX_PATH = 200;

/**
 * The route pattern the request matched (`/admin/hatsu/sessions/:sessionId`), never the path
 * itself, which can hold a credential; null when nothing matched.
 */
export function routeOf(req: IncomingMessage): string | null {
  const route = (req as Partial<Request>).route as { path?: unknown } | undefined;
  const base = (req as Partial<Request>).baseUrl ?? '';
  return typeof route?.path === 'string' ? `${base}${route.path}` : null;
}

function pathOf(req: IncomingMessage): string {
  const path = (req.url ?? '/').split('?')[0] ?? '/';
  return path.length > MAX_PATH ? `${path.slice(0, MAX_PATH)}…` : path;
}

/**
 * One JSON line per HTTP request, when its answer is sent: method, route, status, time and
 * client address, nothing else (no headers, so no Authorization; no query string; no bodies).
 * Admin requests are counted in the metrics here too.
 */
export function httpLog(logger: Pino, trust: ProxyTrust, metrics: Metrics): RequestHandler[] {
  const describe = (req: IncomingMessage, res: ServerResponse, responseTime: number): Record<string, unknown> => {
    const route = routeOf(req);
    return {
      method: req.method,
      route,
      ...(route === null ? { path: pathOf(req) } : {}),
      status: res.statusCode,
      ms: responseTime,
      ip: trust.clientIp(req),
    };
  };
  const log = pinoHttp({
    logger,
    quietReqLogger: true,
    quietResLogger: true,
    customLogLevel: (req, res, err) => {
      if (err || res.statusCode >= 500) return 'error';
      return PROBES.test(pathOf(req)) ? 'debug' : 'info';
    },
    customSuccessMessage: () => 'http request',
    customErrorMessage: () => 'http request failed',
    customSuccessObject: (req, res, value: { responseTime: number }) => describe(req, res, value.responseTime),
    customErrorObject: (req, res, _err, value: { responseTime: number }) => describe(req, res, value.responseTime),
  });
  const count = (req: Request, res: Response, next: NextFunction): void => {
    if (req.path.startsWith('/admin/') || req.path === '/admin') {
      res.once('finish', () => metrics.adminRequest(req.method, routeOf(req) ?? 'unmatched', res.statusCode));
    }
    next();
  };
  return [log, count];
}
