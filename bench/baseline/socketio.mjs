// The peer users would pick instead: a Socket.IO 4 server doing the relay's job the way its
// documentation does it. A client joins the room named by its `channel_id` query (or a
// room of its own), is greeted, and an event `channel` {channel_ids, data} is emitted to
// those rooms as `message` (`io.to(rooms).emit`, one encoding for every recipient).
// Websocket transport only, no compression. With REDIS_URL it runs on
// @socket.io/redis-adapter, so that several instances share their rooms through Redis.
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { createAdapter } from '@socket.io/redis-adapter';
import { Redis } from 'ioredis';
import { Server } from 'socket.io';

const port = Number(process.env.PORT ?? 8098);
const server = createServer((req, res) => res.writeHead(req.url === '/health/ready' ? 200 : 404).end());
const io = new Server(server, {
  transports: ['websocket'],
  serveClient: false,
  perMessageDeflate: false,
  maxHttpBufferSize: 1 << 20,
});

if (process.env.REDIS_URL) {
  const pub = new Redis(process.env.REDIS_URL);
  const sub = pub.duplicate();
  io.adapter(createAdapter(pub, sub));
}

io.on('connection', (socket) => {
  const requested = socket.handshake.query.channel_id;
  const channel = typeof requested === 'string' ? requested : randomBytes(16).toString('hex');
  socket.join(channel);
  socket.emit('greeting', { channel_id: channel });
  socket.on('channel', (message) => {
    if (!message || !Array.isArray(message.channel_ids)) return;
    io.to(message.channel_ids).emit('message', message.data);
  });
});

server.listen(port, '127.0.0.1', () => process.stdout.write(`socket.io listening on ${port}\n`));
process.on('SIGTERM', () => process.exit(0));
