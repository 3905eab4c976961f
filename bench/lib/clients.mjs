// The load generator's side: as little work per message as possible. Subscribers only
// count frames; one sampled subscriber parses the send timestamp for latency.
import WebSocket from 'ws';

/** Opens `count` sockets, `concurrency` handshakes at a time. */
export async function openMany(count, makeUrl, { concurrency = 200, headers, onMessage } = {}) {
  const sockets = new Array(count);
  let next = 0;
  async function worker() {
    while (next < count) {
      const i = next++;
      sockets[i] = await open(makeUrl(i), headers, onMessage ? (data) => onMessage(i, data) : undefined);
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return sockets;
}

/** Opens one socket and resolves after its first message (every server greets first). */
export function open(url, headers, onMessage) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers, perMessageDeflate: false });
    let greeted = false;
    ws.on('message', (data) => {
      if (!greeted) {
        greeted = true;
        resolve(ws);
        return;
      }
      onMessage?.(data);
    });
    ws.once('error', reject);
  });
}

export function closeAll(sockets) {
  return Promise.all(
    sockets.map(
      (ws) =>
        new Promise((resolve) => {
          if (!ws || ws.readyState === WebSocket.CLOSED) return resolve();
          ws.once('close', resolve);
          ws.terminate();
        }),
    ),
  );
}

/** p50/p99 of a list of numbers. */
export function percentiles(values) {
  if (values.length === 0) return { p50: NaN, p99: NaN };
  const sorted = Float64Array.from(values).sort();
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return { p50: at(0.5), p99: at(0.99) };
}

export const now = () => Number(process.hrtime.bigint()) / 1e6;
