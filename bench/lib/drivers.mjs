// How the load generator speaks to each kind of server, so one scenario drives them all:
// `ws` for Gatehouse's jac gateway and the plain relay (the same wire format), `sio` for the
// Socket.IO peer through socket.io-client (websocket transport only). A driver opens a
// subscriber on a channel, publishes `data` to channels, and reads the send timestamp back.
import { io } from 'socket.io-client';
import { closeAll as closeWs, open as openWs } from './clients.mjs';

export const WS = {
  name: 'ws',
  open(server, channel, onMessage) {
    const query = channel === null ? '' : `?channel_id=${encodeURIComponent(channel)}`;
    return openWs(`ws://127.0.0.1:${server.port}/websocket${query}`, undefined, onMessage);
  },
  /** jac's publish frame. */
  publish(socket, channels, data) {
    socket.send(JSON.stringify({ type: 'channel', channel_ids: channels, data }));
  },
  /** The timestamp of a received frame (a Buffer of jac's `data`). */
  stamp(message) {
    return JSON.parse(message).t;
  },
  closeAll: closeWs,
};

export const SIO = {
  name: 'sio',
  /** Resolves once the server has put the socket in its room and greeted it. */
  open(server, channel, onMessage) {
    return new Promise((resolve, reject) => {
      const socket = io(`http://127.0.0.1:${server.port}`, {
        transports: ['websocket'],
        query: channel === null ? {} : { channel_id: channel },
        forceNew: true,
        reconnection: false,
        perMessageDeflate: false,
        timeout: 30_000,
      });
      socket.once('greeting', () => resolve(socket));
      socket.once('connect_error', reject);
      if (onMessage) socket.on('message', onMessage);
    });
  },
  /** The same publish as an event: the peer emits `data` to each channel's room. */
  publish(socket, channels, data) {
    socket.emit('channel', { channel_ids: channels, data });
  },
  stamp(message) {
    return message.t;
  },
  async closeAll(sockets) {
    for (const socket of sockets) socket?.disconnect();
  },
};

export const DRIVERS = { ws: WS, sio: SIO };

/** The driver for a server started by `startServer` (Socket.IO peers say so; the rest speak ws). */
export function driverOf(server) {
  return DRIVERS[server.driver ?? 'ws'];
}

/** Opens `count` subscribers, `concurrency` at a time; `place(i)` is the server, `channel(i)` the channel. */
export async function openMany(driver, count, { place, channel, onMessage, concurrency = 200 }) {
  const sockets = new Array(count);
  let next = 0;
  async function worker() {
    while (next < count) {
      const i = next++;
      sockets[i] = await driver.open(place(i), channel(i), onMessage ? (data) => onMessage(i, data) : undefined);
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return sockets;
}
