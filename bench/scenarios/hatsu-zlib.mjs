// Scenario 4: N hatsu sessions in one guild receiving guild dispatches, all on
// `encoding: zlib` or all on `json`: server CPU per delivered message and RSS per session.
import WebSocket from 'ws';
import { closeAll } from '../lib/clients.mjs';
import { cpuMs, rssBytes } from '../lib/proc.mjs';

const GUILD = '900000000000000001';

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

export async function hatsuDispatch(server, { sessions, encoding, rate, seconds, adminToken }) {
  const base = `http://127.0.0.1:${server.port}`;
  const rss0 = rssBytes(server.pid);
  let delivered = 0;
  const sockets = [];
  let next = 0;
  const connectOne = () =>
    new Promise((resolve, reject) => {
      const i = next++;
      const ws = new WebSocket(`ws://127.0.0.1:${server.port}/hatsu`, { perMessageDeflate: false });
      let seen = 0;
      ws.on('open', () => ws.send(JSON.stringify({ session_id: `bench-session-${i}`, encoding })));
      ws.on('message', () => {
        // HELLO, READY and one GUILD_INIT come first; everything after is a dispatch.
        if (++seen === 3) resolve(ws);
        else if (seen > 3) delivered++;
      });
      ws.on('error', reject);
      sockets.push(ws);
    });
  for (let batch = 0; batch < sessions; batch += 100) {
    await Promise.all(Array.from({ length: Math.min(100, sessions - batch) }, connectOne));
  }
  const headers = { Authorization: `Bearer ${adminToken}`, 'Content-Type': 'application/json' };
  const body = JSON.stringify({
    t: 'MESSAGE_CREATE',
    d: { _id: '900000000000000003', channel_id: '900000000000000002', content: 'hello from the benchmark, '.repeat(4) },
    to: { guild_id: GUILD },
  });
  const cpu0 = cpuMs(server.pid);
  const start = performance.now();
  let sent = 0;
  while (performance.now() - start < seconds * 1000) {
    const due = Math.floor(((performance.now() - start) / 1000) * rate);
    while (sent < due) {
      await call(fetch(`${base}/admin/hatsu/dispatch`, { method: 'POST', headers, body }));
      sent++;
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  const expected = sent * sessions;
  const deadline = Date.now() + 10_000;
  while (delivered < expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  const cpu = cpuMs(server.pid) - cpu0;
  // Read while every session is open and has carried traffic: its steady-state footprint.
  const rss1 = rssBytes(server.pid);
  await closeAll(sockets);
  return {
    cpuUsPerMsg: (cpu * 1000) / Math.max(1, delivered),
    rssPerSession: (rss1 - rss0) / sessions,
    loss: expected === 0 ? 0 : 1 - delivered / expected,
  };
}

async function call(pending) {
  const res = await pending;
  if (!res.ok) throw new Error(`admin call failed: ${res.status} ${await res.text()}`);
}
