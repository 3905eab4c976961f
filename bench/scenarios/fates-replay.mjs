// Scenario 3: a bot with a full history identifies with send_all on the v2 path: time
// from identify to done_prior, server CPU per replayed event, and a check that every
// stored event came back once and in order.
import WebSocket from 'ws';
import { now } from '../lib/clients.mjs';
import { cpuMs } from '../lib/proc.mjs';

const BOT = '811073947382579200';
const TOKEN = 'bench-fates-token';

export async function fatesReplay(server, { events, adminToken }) {
  const base = `http://127.0.0.1:${server.port}`;
  const headers = { Authorization: `Bearer ${adminToken}`, 'Content-Type': 'application/json' };
  await check(
    fetch(`${base}/admin/fates/bots/${BOT}/token`, { method: 'PUT', headers, body: JSON.stringify({ token: TOKEN }) }),
  );
  // About 200 bytes each once stored (with eid and ts).
  const ctx = { user: '563808552288780322', votes: 0, test: false, pad: 'x'.repeat(60) };
  for (let i = 0; i < events; i++) {
    const body = JSON.stringify({ m: { e: 0, seq: i }, ctx: { ...ctx, votes: i } });
    await check(fetch(`${base}/admin/fates/bots/${BOT}/events`, { method: 'POST', headers, body }));
  }
  const ws = new WebSocket(`ws://127.0.0.1:${server.port}/api/ws`, { perMessageDeflate: false });
  const received = [];
  let identifiedAt = 0;
  let doneAt = 0;
  let cpu0 = 0;
  await new Promise((resolve, reject) => {
    ws.on('error', reject);
    ws.on('message', (data) => {
      const text = data.toString();
      if (text.startsWith('{"code":"identity"')) {
        cpu0 = cpuMs(server.pid);
        identifiedAt = now();
        ws.send(JSON.stringify({ id: BOT, token: TOKEN, send_all: true }));
        return;
      }
      if (text.startsWith('{"code":"done_prior"')) {
        doneAt = now();
        resolve();
        return;
      }
      if (text.startsWith('{"code"')) return;
      for (const part of text.split('\x1f')) if (part) received.push(JSON.parse(part).m.seq);
    });
  });
  const cpu = cpuMs(server.pid) - cpu0;
  ws.terminate();
  const inOrder = received.length === events && received.every((seq, i) => seq === i);
  return {
    ms: doneAt - identifiedAt,
    cpuUsPerEvent: (cpu * 1000) / Math.max(1, received.length),
    inOrder,
    received: received.length,
  };
}

async function check(pending) {
  const res = await pending;
  if (!res.ok) throw new Error(`admin call failed: ${res.status} ${await res.text()}`);
}
