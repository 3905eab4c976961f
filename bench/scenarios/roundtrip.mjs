// Scenario 5: request and response. N clients each send a frame and wait for the server's
// answer before sending the next (one in flight per client): a jac publish to the client's
// own channel and its echo (the relay and the Socket.IO peer do the same), a Felix heartbeat
// and its ACK, a hatsu HEARTBEAT and its ACK. Reports server CPU per round trip, round trips
// per second and the round trip's latency: what the inbound path costs, frame by frame.
import WebSocket from 'ws';
import { now, percentiles } from '../lib/clients.mjs';
import { driverOf } from '../lib/drivers.mjs';
import { cpuMs } from '../lib/proc.mjs';

/** Before anything is counted: the JIT and the sockets settle. */
const WARM_UP_MS = 1000;

/**
 * Runs `clients` request/response loops against `server` for `seconds`. `open(i, onReply)`
 * connects client `i` and resolves with `{ ask, close }`: `ask()` sends one request, and
 * `onReply()` must be called on its answer.
 */
async function measure(server, { clients, seconds }, open) {
  let counting = false;
  let stopping = false;
  let completed = 0;
  let inFlight = 0;
  const latencies = [];
  const sentAt = new Float64Array(clients);
  const handles = new Array(clients);
  const ask = (i) => {
    sentAt[i] = now();
    inFlight++;
    handles[i].ask();
  };
  const replied = (i) => {
    inFlight--;
    if (counting) {
      completed++;
      latencies.push(now() - sentAt[i]);
    }
    if (!stopping) ask(i);
  };
  for (let start = 0; start < clients; start += 100) {
    const batch = [];
    for (let i = start; i < Math.min(clients, start + 100); i++) {
      batch.push(open(i, () => replied(i)).then((handle) => (handles[i] = handle)));
    }
    await Promise.all(batch);
  }
  for (let i = 0; i < clients; i++) ask(i);
  await new Promise((r) => setTimeout(r, WARM_UP_MS));
  const cpu0 = cpuMs(server.pid);
  const t0 = now();
  counting = true;
  await new Promise((r) => setTimeout(r, seconds * 1000));
  stopping = true;
  const deadline = Date.now() + 5000;
  while (inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 1));
  const elapsed = (now() - t0) / 1000;
  const cpu = cpuMs(server.pid) - cpu0;
  await Promise.all(handles.map((handle) => handle?.close()));
  const { p50, p99 } = percentiles(latencies);
  return {
    roundTrips: completed,
    rate: completed / elapsed,
    cpuUsPerRoundTrip: (cpu * 1000) / Math.max(1, completed),
    p50,
    p99,
    lost: inFlight,
  };
}

/** A publish to the client's own channel, answered by its echo (jac, the relay, Socket.IO). */
export function echo(server, options) {
  const driver = driverOf(server);
  return measure(server, options, async (i, onReply) => {
    const channel = [`rt-${i}`];
    const socket = await driver.open(server, channel[0], onReply);
    return { ask: () => driver.publish(socket, channel, { n: i }), close: () => driver.closeAll([socket]) };
  });
}

/** Opens a socket to `url` with `headers`, resolving once it is open. */
function connect(url, headers) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers, perMessageDeflate: false });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

function closed(ws) {
  return new Promise((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) return resolve();
    ws.once('close', resolve);
    ws.terminate();
  });
}

/** Felix: `{"code":20001}` answered by the `10001` Heartbeat ACK. `token`: a registered Felix token. */
export function felixHeartbeat(server, { token, ...options }) {
  return measure(server, options, async (_i, onReply) => {
    const ws = await connect(`ws://127.0.0.1:${server.port}/felix`, { Authorization: token });
    ws.on('message', (data) => {
      if (data.includes('"code":10001')) onReply();
    });
    return { ask: () => ws.send('{"code":20001}'), close: () => closed(ws) };
  });
}

/** hatsu: `HEARTBEAT` answered by `ACK`, on identified sessions `bench-session-<i>` (see prepareHatsu). */
export function hatsuHeartbeat(server, options) {
  return measure(server, options, async (i, onReply) => {
    const ws = await connect(`ws://127.0.0.1:${server.port}/hatsu`);
    await new Promise((resolve, reject) => {
      ws.on('message', function identified(data) {
        const { t } = JSON.parse(data);
        if (t !== 'READY') return;
        ws.off('message', identified);
        resolve();
      });
      ws.once('close', (code) => reject(new Error(`hatsu closed ${code} before READY`)));
      ws.send(JSON.stringify({ session_id: `bench-session-${i}`, encoding: 'json', presences: false }));
    });
    // Whatever else the session is sent (its guilds' state) comes before the first ACK.
    ws.on('message', (data) => {
      if (data.includes('"t":"ACK"')) onReply();
    });
    return { ask: () => ws.send('{"t":"HEARTBEAT","s":1}'), close: () => closed(ws) };
  });
}
