// Scenario 3: a bot with a full history identifies with send_all on the v2 path: time
// from identify to done_prior, server CPU per replayed event, and a check that every
// stored event came back once and in order.
import WebSocket from 'ws';
import { now } from '../lib/clients.mjs';
import { cpuMs } from '../lib/proc.mjs';

const BOT = '811073947382579200';
const TOKEN = 'bench-fates-token';

export async function fatesReplay(server, { events, adminToken, rounds = 1, fill = true }) {
  const base = `http://127.0.0.1:${server.port}`;
  const headers = { Authorization: `Bearer ${adminToken}`, 'Content-Type': 'application/json' };
  if (fill) {
    await check(
      fetch(`${base}/admin/fates/bots/${BOT}/token`, {
        method: 'PUT',
        headers,
        body: JSON.stringify({ token: TOKEN }),
      }),
    );
    // About 200 bytes each once stored (with eid and ts).
    const ctx = { user: '563808552288780322', votes: 0, test: false, pad: 'x'.repeat(60) };
    for (let i = 0; i < events; i++) {
      const body = JSON.stringify({ m: { e: 0, seq: i }, ctx: { ...ctx, votes: i } });
      await check(fetch(`${base}/admin/fates/bots/${BOT}/events`, { method: 'POST', headers, body }));
    }
  }
  // One replay is a few milliseconds, shorter than the CPU clock's tick: the CPU figure
  // is taken over `rounds` replays, each on a new socket.
  const cpu0 = cpuMs(server.pid);
  const replays = [];
  for (let i = 0; i < rounds; i++) replays.push(await replayOnce(server.port));
  const cpu = cpuMs(server.pid) - cpu0;
  const replayed = replays.reduce((sum, r) => sum + r.received.length, 0);
  const times = replays.map((r) => r.ms).sort((a, b) => a - b);
  return {
    ms: times[Math.floor(times.length / 2)],
    cpuUsPerEvent: (cpu * 1000) / Math.max(1, replayed),
    inOrder: replays.every((r) => r.received.length === events && r.received.every((seq, i) => seq === i)),
  };
}

/** Identifies with send_all; resolves at done_prior with the replayed sequence numbers. */
function replayOnce(port) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/api/ws`, { perMessageDeflate: false });
  const received = [];
  let identifiedAt = 0;
  return new Promise((resolve, reject) => {
    ws.on('error', reject);
    ws.on('message', (data) => {
      const text = data.toString();
      if (text.startsWith('{"code":"identity"')) {
        identifiedAt = now();
        ws.send(JSON.stringify({ id: BOT, token: TOKEN, send_all: true }));
        return;
      }
      if (text.startsWith('{"code":"done_prior"')) {
        const ms = now() - identifiedAt;
        ws.terminate();
        resolve({ ms, received });
        return;
      }
      if (text.startsWith('{"code"')) return;
      for (const part of text.split('\x1f')) if (part) received.push(JSON.parse(part).m.seq);
    });
  });
}

async function check(pending) {
  const res = await pending;
  if (!res.ok) throw new Error(`admin call failed: ${res.status} ${await res.text()}`);
}
