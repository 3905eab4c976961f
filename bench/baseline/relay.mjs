// The yardstick: the smallest honest channel relay on plain `ws`. A client joins a
// channel with `?channel_id=`; a text frame `{"type":"channel","channel_ids":[...],"data":{...}}`
// is parsed, its data serialised once, and written to every subscriber of those channels.
// It speaks enough of jac's wire format that the same load generator drives both.
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { WebSocketServer } from 'ws';

const port = Number(process.env.PORT ?? 8099);
const channels = new Map();
const server = createServer((req, res) => res.writeHead(req.url === '/health/ready' ? 200 : 404).end());
const wss = new WebSocketServer({ server, path: '/websocket', maxPayload: 1 << 20 });

wss.on('connection', (ws, req) => {
  const channel = new URL(req.url, 'http://x').searchParams.get('channel_id') ?? randomBytes(16).toString('hex');
  let set = channels.get(channel);
  if (!set) channels.set(channel, (set = new Set()));
  set.add(ws);
  ws.send(JSON.stringify({ type: 'connection', data: { channel_id: channel } }));
  ws.on('message', (raw) => {
    let message;
    try {
      message = JSON.parse(raw.toString());
    } catch {
      return;
    }
    if (message?.type !== 'channel' || !Array.isArray(message.channel_ids)) return;
    const bytes = Buffer.from(JSON.stringify(message.data));
    for (const id of message.channel_ids)
      for (const peer of channels.get(id) ?? []) peer.send(bytes, { binary: false });
  });
  ws.on('close', () => {
    set.delete(ws);
    if (set.size === 0) channels.delete(channel);
  });
});

server.listen(port, '127.0.0.1', () => process.stdout.write(`relay listening on ${port}\n`));
process.on('SIGTERM', () => process.exit(0));
