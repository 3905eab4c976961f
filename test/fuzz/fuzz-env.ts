// What every fuzz suite shares: the app's configuration, secrets, and the after-fuzz checks
// (the process is up, every fuzz socket is gone, the heap came back).
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { ADMIN_TOKEN, JWT_SECRET, type TestApp } from '../helpers/app.js';
import { request } from '../helpers/jac-client.js';
import { waitFor } from '../helpers/wait.js';
import { HEAP_GROWTH_LIMIT, heapUsedAfterGc, mb, type Scanner } from './harness.js';

/**
 * The app under fuzz: short timeouts, the failed-authentication throttle off (every fuzz
 * client comes from 127.0.0.1 and most fail on purpose), and a frame limit small enough
 * that frames at and just past it are cheap to send thousands of times.
 */
export const FUZZ_ENV: Record<string, string> = {
  AUTH_FAILURE_LIMIT: '0',
  WS_MAX_PAYLOAD: String(64 * 1024),
  SHUTDOWN_GRACE_MS: '500',
  // Heartbeats run during the fuzz (pings every few seconds, answered by the client library).
  JAC_PING_INTERVAL_MS: '1500',
  JAC_PING_TIMEOUT_MS: '10000',
  HATSU_PING_INTERVAL_MS: '1500',
  HATSU_PING_TIMEOUT_MS: '10000',
  HATSU_IDENTIFY_TIMEOUT_MS: '10000',
  FELIX_PING_INTERVAL_MS: '5000',
  FATES_PING_INTERVAL_MS: '1500',
  FATES_PONG_TIMEOUT_MS: '10000',
  FATES_RATE_LIMIT: '1000000',
};

export const FUZZ_MAX_PAYLOAD = 64 * 1024;

/** The fuzz test's own time limit, scaled to FUZZ_FRAMES (the runner's default is 3 minutes). */
export function fuzzTimeout(frames: number): number {
  return Math.max(180_000, frames * 60);
}

/** Every secret the test holds is never to appear in anything the server sends. */
export function addCommonSecrets(scanner: Scanner): void {
  scanner.addSecret(ADMIN_TOKEN);
  scanner.addSecret(JWT_SECRET);
}

/** A jac token signed as the gateway signs them (HS256, `root_id`), fixed so runs are reproducible. */
export function signJacToken(rootId: string): string {
  const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64url');
  const header = b64(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const payload = b64(JSON.stringify({ root_id: rootId, iat: 1_700_000_000, exp: 4_102_444_800 }));
  const signature = createHmac('sha256', JWT_SECRET).update(`${header}.${payload}`).digest('base64url');
  return `${header}.${payload}.${signature}`;
}

/** `/health/live` answers 200: the process survived. */
export async function assertLive(app: TestApp): Promise<void> {
  const live = await request(app, 'GET', '/health/live');
  assert.equal(live.status, 200, live.text);
}

/** `GET /admin/connections` total reaches 0 once every client has closed (bounded poll). */
export async function assertNoConnectionsLeft(app: TestApp): Promise<void> {
  const headers = { Authorization: `Bearer ${ADMIN_TOKEN}` };
  await waitFor(
    async () => {
      const answer = await request(app, 'GET', '/admin/connections', { headers });
      return (answer.json as { total?: number } | undefined)?.total === 0;
    },
    { timeoutMs: 10_000, intervalMs: 50, what: 'GET /admin/connections total to return to 0' },
  );
}

/** The heap after a full collection is within the bound of where it was before the fuzz. */
export function assertHeapReturned(protocol: string, before: number): string {
  const after = heapUsedAfterGc();
  const line = `[fuzz] ${protocol} heap after gc: before ${mb(before)}, after ${mb(after)} (growth ${mb(after - before)}, bound ${mb(HEAP_GROWTH_LIMIT)})`;
  assert.ok(after - before < HEAP_GROWTH_LIMIT, line);
  return line;
}
