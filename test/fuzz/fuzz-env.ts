// What every fuzz suite shares: the app's configuration and secrets, the suite around a
// protocol's frames (start-up, the frame test's bookkeeping, the after-fuzz checks: the
// process is up, healthy clients are served, every fuzz socket is gone, the heap came back)
// and the printed counts. Each protocol's spec brings only its frame model and oracle.
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { ADMIN_TOKEN, JWT_SECRET, startApp, type TestApp } from '../helpers/app.js';
import { admin, call } from '../helpers/http.js';
import { signJwt } from '../helpers/jac-client.js';
import { waitFor } from '../helpers/wait.js';
import { fuzzFrameCount, fuzzSeed } from './generate.js';
import { FuzzSocket, FuzzStats, HEAP_GROWTH_LIMIT, heapUsedAfterGc, mb, runLanes, Scanner } from './harness.js';

/**
 * The app under fuzz: short timeouts, the failed-authentication throttle off (every fuzz
 * client comes from 127.0.0.1 and most fail on purpose), and a frame limit small enough
 * that frames at and just past it are cheap to send thousands of times.
 */
export const FUZZ_ENV: Record<string, string> = {
  AUTH_FAILURE_LIMIT: '0',
  WS_MAX_PAYLOAD: String(64 * 1024),
  // jac and hatsu have limits of their own; here every protocol but Fates takes WS_MAX_PAYLOAD.
  JAC_MAX_PAYLOAD: String(64 * 1024),
  HATSU_MAX_PAYLOAD: String(64 * 1024),
  // Thousands of frames per connection: what each gets is fuzzed, not the inbound budget.
  WS_INBOUND_FRAMES_PER_SEC: '0',
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
function fuzzTimeout(frames: number): number {
  return Math.max(180_000, frames * 60);
}

/** Every secret the test holds is never to appear in anything the server sends. */
function addCommonSecrets(scanner: Scanner): void {
  scanner.addSecret(ADMIN_TOKEN);
  scanner.addSecret(JWT_SECRET);
}

/** A jac token signed as the gateway signs them (HS256, `root_id`), fixed so runs are reproducible. */
export function signJacToken(rootId: string): string {
  return signJwt({ root_id: rootId, iat: 1_700_000_000, exp: 4_102_444_800 });
}

/** `/health/live` answers 200: the process survived. */
async function assertLive(app: TestApp): Promise<void> {
  const live = await call(app, 'GET', '/health/live');
  assert.equal(live.status, 200, live.text);
}

/** `GET /admin/connections` total reaches 0 once every client has closed (bounded poll). */
async function assertNoConnectionsLeft(app: TestApp): Promise<void> {
  await waitFor(
    async () => {
      const answer = await admin(app, 'GET', '/admin/connections');
      return (answer.json as { total?: number } | undefined)?.total === 0;
    },
    { timeoutMs: 10_000, intervalMs: 50, what: 'GET /admin/connections total to return to 0' },
  );
}

/** The heap after a full collection is within the bound of where it was before the fuzz. */
function assertHeapReturned(protocol: string, before: number): string {
  const after = heapUsedAfterGc();
  const line = `[fuzz] ${protocol} heap after gc: before ${mb(before)}, after ${mb(after)} (growth ${mb(after - before)}, bound ${mb(HEAP_GROWTH_LIMIT)})`;
  assert.ok(after - before < HEAP_GROWTH_LIMIT, line);
  return line;
}

// ---- the suite ----------------------------------------------------------------------------

export interface FuzzSuite {
  readonly seed: number;
  /** FUZZ_FRAMES: frames per protocol. */
  readonly count: number;
  readonly scanner: Scanner;
  readonly stats: FuzzStats;
  /** The app under fuzz, started by the suite's `before`. */
  readonly app: TestApp;
  /** Opens a fuzz socket on `path` of the app, counted in the stats. */
  open(path: string, headers?: Record<string, string>): Promise<FuzzSocket>;
  /**
   * The frame test: `frame(lane, index)` for every frame index on `lanes` lanes, then
   * `finish` (the lanes' sockets closed). Every frame must be counted and none failed; from
   * 1000 frames on, some frame must have ended as each of `reached`, a sanity check on the
   * generator (not the server): an outcome equal to it or, with `byPrefix`, starting with it
   * (a close after replies is `close:4004(invalid_payload)`).
   */
  itAnswersEveryFrame(options: {
    lanes: number;
    frame: (lane: number, index: number) => Promise<void>;
    finish: () => Promise<void>;
    reached: readonly string[];
    byPrefix?: boolean;
  }): void;
  /**
   * The after-fuzz test: the process is up, `served` (the protocol's own healthy clients,
   * served as usual and closed again) passes, no fuzz socket is left and the heap came back
   * near where it was; the heap and the scan count are printed with the counts.
   */
  itRecovers(served: string, check: (app: TestApp) => Promise<void>): void;
}

/**
 * Registers, inside a protocol's `describe`, the hooks every fuzz suite has: `before` prints
 * the seed and frame count, starts the app on FUZZ_ENV (and `env`), adds the secrets every
 * suite holds, runs `prepare` (fixtures and their secrets) and takes the heap baseline;
 * `after` prints the counts and notes and closes the app.
 */
export function fuzzSuite(
  protocol: string,
  {
    env = {},
    prepare,
  }: { env?: Record<string, string>; prepare?: (app: TestApp, scanner: Scanner) => void | Promise<void> } = {},
): FuzzSuite {
  const seed = fuzzSeed();
  const count = fuzzFrameCount();
  const scanner = new Scanner();
  const stats = new FuzzStats(protocol, seed);
  const notes: string[] = [];
  let started: TestApp | undefined;
  let heapBefore = 0;
  const app = (): TestApp => {
    assert.ok(started, 'the fuzz app starts in before()');
    return started;
  };

  before(async () => {
    console.log(`[fuzz] ${protocol}: FUZZ_SEED=${seed} FUZZ_FRAMES=${count}`);
    started = await startApp({ ...FUZZ_ENV, ...env });
    addCommonSecrets(scanner);
    await prepare?.(started, scanner);
    heapBefore = heapUsedAfterGc();
  });

  after(async () => {
    stats.finishedAt ||= Date.now();
    console.log(stats.report());
    for (const note of notes) console.log(note);
    await started?.close();
  });

  return {
    seed,
    count,
    scanner,
    stats,
    get app() {
      return app();
    },
    async open(path, headers = {}) {
      const socket = await FuzzSocket.open(app().ws(path), headers);
      stats.connections++;
      return socket;
    },
    itAnswersEveryFrame({ lanes, frame, finish, reached, byPrefix = false }) {
      it(
        `answers every generated frame only as docs/protocols/${protocol}.md documents`,
        { timeout: fuzzTimeout(count) },
        async () => {
          await runLanes(lanes, count, frame);
          stats.finishedAt = Date.now();
          await finish();
          assert.equal(stats.frames, count);
          assert.equal(stats.failures.length, 0, stats.failureReport());
          for (const kind of reached) {
            if (count < 1000) continue;
            const seen = byPrefix
              ? [...stats.outcomes.keys()].some((k) => k.startsWith(kind))
              : (stats.outcomes.get(kind) ?? 0) > 0;
            assert.ok(seen, `no frame ended as ${kind}`);
          }
        },
      );
    },
    itRecovers(served, check) {
      it(`afterwards: the process is up, ${served}, no fuzz socket is left, the heap came back`, async () => {
        await assertLive(app());
        await check(app());
        await assertNoConnectionsLeft(app());
        notes.push(assertHeapReturned(protocol, heapBefore));
        notes.push(`[fuzz] ${protocol}: ${scanner.scanned} server messages scanned for stack traces and secrets`);
      });
    },
  };
}
