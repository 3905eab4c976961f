import type { IncomingMessage } from 'node:http';
import { secretsEqual } from '../auth/secrets.js';

/**
 * Whether a scrape may read the metrics: always without `METRICS_TOKEN`, else only with
 * `Authorization: Bearer <METRICS_TOKEN>` (what Prometheus' `authorization` setting sends).
 */
export function scrapeAllowed(req: IncomingMessage, token: string | undefined): boolean {
  if (token === undefined) return true;
  const header = req.headers.authorization;
  const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  return match?.[1] !== undefined && secretsEqual(match[1], token);
}
