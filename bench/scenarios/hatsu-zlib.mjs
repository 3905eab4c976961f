// Scenario 4: N hatsu sessions in one guild receiving guild dispatches, all on
// `encoding: zlib` or all on `json`: server CPU per delivered message, bytes on the wire per
// message, RSS per session while busy and, with `idle`, once every zlib session has been idle
// long enough to release its deflate context (HATSU_ZLIB_IDLE_MS).
import { existsSync } from 'node:fs';
import WebSocket from 'ws';
import { closeAll } from '../lib/clients.mjs';
import { cpuMs, rssBytes } from '../lib/proc.mjs';

const GUILD = '900000000000000001';

/** What the dispatched messages say, in turn. */
const LINES = [
  'hello from the benchmark, how is everyone doing today?',
  'the deploy went out at noon and nothing caught fire',
  'does anyone know where the meeting notes from Tuesday are',
  'lunch at the usual place? I can book a table for six',
  'reminder: the office is closed on Friday for the holiday',
  'pushed a fix for the login redirect, please pull and retest',
  'the build is green again, thanks for the quick review',
];

/** Where Debian and Ubuntu install jemalloc (`libjemalloc2`). */
const JEMALLOC = '/usr/lib/x86_64-linux-gnu/libjemalloc.so.2';

/**
 * The environment that runs the server on jemalloc, which hands freed pages back to the
 * system within about a second (glibc's malloc keeps them for its next allocations); null
 * where the library is not installed.
 */
export function jemallocEnv() {
  if (!existsSync(JEMALLOC)) return null;
  return { LD_PRELOAD: JEMALLOC, MALLOC_CONF: 'background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0' };
}

export async function prepareHatsu(server, { sessions, adminToken }) {
  const base = `http://127.0.0.1:${server.port}`;
  const headers = { Authorization: `Bearer ${adminToken}`, 'Content-Type': 'application/json' };
  const put = (path, body) => call(fetch(`${base}${path}`, { method: 'PUT', headers, body: JSON.stringify(body) }));
  const members = [];
  for (let i = 0; i < sessions; i++) {
    const user = String(800000000000000000n + BigInt(i));
    members.push(user);
    await put(`/admin/hatsu/users/${user}`, {
      username: `user${i}`,
      separator: '0001',
      flags: 0,
      verified: true,
      system: false,
    });
    await put(`/admin/hatsu/sessions/bench-session-${i}`, { user_id: user });
  }
  await put(`/admin/hatsu/guilds/${GUILD}`, {
    guild: { name: 'bench', owner: members[0] },
    channels: [{ _id: '900000000000000002', name: 'general', type: 0 }],
    members,
  });
}

/**
 * Opens `sessions` sessions on `encoding` and dispatches to their guild at `rate` for
 * `seconds`. `idle` ({ timeoutMs, settleMs }): afterwards, RSS again once every deflate
 * context has been released and `settleMs` more have passed (the baseline RSS is read after
 * `settleMs` too, so an allocator's delayed returns hit both alike). `fromIdle`: dispatching
 * starts only once the contexts the identifies took are released again.
 */
export async function hatsuDispatch(
  server,
  { sessions, encoding, rate, seconds, adminToken, idle = null, fromIdle = false },
) {
  const base = `http://127.0.0.1:${server.port}`;
  if (idle) await new Promise((r) => setTimeout(r, idle.settleMs));
  const rss0 = rssBytes(server.pid);
  let delivered = 0;
  let wireBytes = 0;
  const sockets = [];
  let next = 0;
  const connectOne = () =>
    new Promise((resolve, reject) => {
      const i = next++;
      const ws = new WebSocket(`ws://127.0.0.1:${server.port}/hatsu`, { perMessageDeflate: false });
      let seen = 0;
      ws.on('open', () => ws.send(JSON.stringify({ session_id: `bench-session-${i}`, encoding })));
      ws.on('message', (data) => {
        // HELLO, READY and one GUILD_INIT come first; everything after is a dispatch.
        if (++seen === 3) resolve(ws);
        else if (seen > 3) {
          delivered++;
          wireBytes += data.length;
        }
      });
      ws.on('error', reject);
      sockets.push(ws);
    });
  for (let batch = 0; batch < sessions; batch += 100) {
    await Promise.all(Array.from({ length: Math.min(100, sessions - batch) }, connectOne));
  }
  const headers = { Authorization: `Bearer ${adminToken}`, 'Content-Type': 'application/json' };
  // Each message differs from the one before (its id and text), as a chat's do.
  const body = (n) =>
    JSON.stringify({
      t: 'MESSAGE_CREATE',
      d: {
        _id: String(900000000000001000n + BigInt(n)),
        channel_id: '900000000000000002',
        content: `${LINES[n % LINES.length]} (${n})`,
      },
      to: { guild_id: GUILD },
    });
  if (fromIdle) await contextsReleased(base, 10_000);
  const released0 = (await zlibContexts(base)).released;
  const cpu0 = cpuMs(server.pid);
  const start = performance.now();
  let sent = 0;
  while (performance.now() - start < seconds * 1000) {
    const due = Math.floor(((performance.now() - start) / 1000) * rate);
    while (sent < due) {
      await call(fetch(`${base}/admin/hatsu/dispatch`, { method: 'POST', headers, body: body(sent) }));
      sent++;
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  const expected = sent * sessions;
  const deadline = Date.now() + 10_000;
  while (delivered < expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  const cpu = cpuMs(server.pid) - cpu0;
  const released = (await zlibContexts(base)).released - released0;
  // Read while every session is open and has carried traffic: its steady-state footprint.
  const rss1 = rssBytes(server.pid);
  let rssIdle = NaN;
  if (idle) {
    // Every session still open, none sent anything since: once no deflate context is held
    // (the sweep released them all), give the allocator `settleMs` to hand pages back.
    await contextsReleased(base, idle.timeoutMs);
    await new Promise((r) => setTimeout(r, idle.settleMs));
    rssIdle = rssBytes(server.pid);
  }
  await closeAll(sockets);
  return {
    cpuUsPerMsg: (cpu * 1000) / Math.max(1, delivered),
    rssPerSession: (rss1 - rss0) / sessions,
    rssPerIdleSession: (rssIdle - rss0) / sessions,
    rssReturnedPerSession: (rss1 - rssIdle) / sessions,
    wireBytesPerMsg: wireBytes / Math.max(1, delivered),
    releasesPerMsg: released / Math.max(1, delivered),
    loss: expected === 0 ? 0 : 1 - delivered / expected,
  };
}

/** hatsu's deflate contexts held now and released so far, from the server's `/metrics`. */
async function zlibContexts(base) {
  const text = await (await fetch(`${base}/metrics`)).text();
  const read = (name) => Number(new RegExp(`^${name}\\{protocol="hatsu"\\} (\\d+)`, 'm').exec(text)?.[1] ?? NaN);
  return { held: read('gatehouse_zlib_contexts'), released: read('gatehouse_zlib_contexts_released_total') };
}

/** Waits until no deflate context is held. */
async function contextsReleased(base, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { held } = await zlibContexts(base);
    if (held === 0) return;
    if (Date.now() > deadline) throw new Error(`zlib contexts still held after ${timeoutMs} ms: ${held}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function call(pending) {
  const res = await pending;
  if (!res.ok) throw new Error(`admin call failed: ${res.status} ${await res.text()}`);
}
