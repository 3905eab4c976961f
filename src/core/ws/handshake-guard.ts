import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Server, Socket } from 'node:net';
import { transport } from './upgrade-limits.js';

const TOO_MANY_TEXT = 'Too many connections from this address';
const TOO_MANY =
  'HTTP/1.1 429 Too Many Requests\r\n' +
  'Connection: close\r\n' +
  'Content-Type: text/plain; charset=utf-8\r\n' +
  `Content-Length: ${Buffer.byteLength(TOO_MANY_TEXT)}\r\n\r\n` +
  TOO_MANY_TEXT;

/**
 * Guards a listener's TCP connections from the moment it accepts them, before HTTP has read
 * a byte: a connection its address has no room for (`admit` says no) is answered `429` and
 * closed at once, and one that has not delivered a complete request (the headers of an
 * upgrade or of a plain request) within `timeoutMs` is destroyed. Node's own
 * `headersTimeout` (60 s, checked every 30 s) would let idle sockets hold descriptors far
 * longer, and stops applying to a socket once it has been handed over to an upgrade. A
 * keep-alive connection is timed again after each response, until its next request arrives.
 */
export class HandshakeGuard {
  /** Connections answered `429` on accept, and destroyed for not completing a request in time. */
  readonly closed = { perAddress: 0, handshakeTimeout: 0 };
  private readonly timers = new WeakMap<object, NodeJS.Timeout>();
  /** Requests whose response has not finished, per connection (pipelined requests overlap). */
  private readonly pending = new WeakMap<object, number>();
  private readonly responded: (this: ServerResponse) => void;
  private readonly ended: (this: Socket) => void;
  private readonly expire: (socket: Socket) => void;

  constructor(
    private readonly timeoutMs: number,
    private readonly admit: (socket: Socket) => boolean,
  ) {
    const { timers, pending } = this;
    const arm = (socket: Socket): void => this.arm(socket);
    this.responded = function (this: ServerResponse): void {
      const key = transport(this.req.socket);
      const left = (pending.get(key) ?? 1) - 1;
      pending.set(key, left);
      if (left <= 0) arm(key as Socket);
    };
    this.ended = function (this: Socket): void {
      clearTimeout(timers.get(this));
    };
    this.expire = (socket) => {
      this.closed.handshakeTimeout++;
      socket.destroy();
    };
  }

  watch(server: Server): void {
    server.on('connection', (socket: Socket) => {
      if (!this.admit(socket)) {
        this.closed.perAddress++;
        refuse(socket);
        return;
      }
      socket.once('close', this.ended);
      this.arm(socket);
    });
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      const key = this.received(req.socket);
      this.pending.set(key, (this.pending.get(key) ?? 0) + 1);
      res.once('close', this.responded);
    });
    server.on('upgrade', (req: IncomingMessage) => this.received(req.socket));
  }

  /** A complete request arrived on `socket`: it is no longer on the clock. */
  private received(socket: object): object {
    const key = transport(socket);
    clearTimeout(this.timers.get(key));
    this.timers.delete(key);
    return key;
  }

  private arm(socket: Socket): void {
    if (socket.destroyed) return;
    clearTimeout(this.timers.get(socket));
    const timer = setTimeout(this.expire, this.timeoutMs, socket);
    timer.unref();
    this.timers.set(socket, timer);
  }
}

/** Answers before the request is read; the socket goes as soon as the answer is written. */
function refuse(socket: Socket): void {
  socket.on('error', () => socket.destroy());
  socket.end(TOO_MANY, () => socket.destroy());
}
