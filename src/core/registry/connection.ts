import type { WebSocket } from 'ws';
import { UNCOUNTED, type ProtocolStats } from '../metrics/protocol-stats.js';
import { writePrepared, type PreparedFrame } from '../ws/prepared-frame.js';

export type ClientId = string & { readonly __brand: 'ClientId' };

export interface CloseSpec {
  readonly code: number;
  readonly reason: string;
}

/** How a connection looks in `GET /admin/connections`, wherever it is connected. */
export interface ClientInfo {
  id: string;
  protocol: string;
  user: string | null;
  channels: string[];
  instance: string;
  since: string;
}

/** The close a protocol without one of its own sends for `DELETE /admin/connections/:id`. */
export const NORMAL_CLOSE: CloseSpec = { code: 1000, reason: 'Closed by server' };

/** The close a client that does not read gets, unless its protocol names another. */
export const SLOW_CONSUMER_CLOSE: CloseSpec = { code: 1013, reason: 'Send buffer limit exceeded' };

/** How long a slow consumer may take to read up to its close frame before its socket is destroyed. */
export const SLOW_CONSUMER_GRACE_MS = 1000;

/**
 * Cuts off a client that does not read: the close frame waits behind the bytes it is not
 * reading, so one that does not catch up within the grace period loses the socket without it.
 */
export function closeSlowConsumer(socket: WebSocket, close: CloseSpec): void {
  if (socket.readyState === 0 || socket.readyState === 1) socket.close(close.code, close.reason);
  setTimeout(() => socket.terminate(), SLOW_CONSUMER_GRACE_MS).unref();
}

export interface ConnectionOptions {
  id: ClientId;
  protocol: string;
  socket: WebSocket;
  /** The client's address (behind a trusted proxy, the one it forwarded), for logs and the admin view. */
  ip?: string | null;
  user?: string | null;
  /** The protocol's ordinary close, used by `DELETE /admin/connections/:id`; `NORMAL_CLOSE` by default. */
  normalClose?: CloseSpec;
  /** The close a slow consumer gets when its send buffer passes the limit; `SLOW_CONSUMER_CLOSE` by default. */
  slowConsumerClose?: CloseSpec;
  /** `WS_SEND_BUFFER_LIMIT`. */
  sendBufferLimit: number;
}

const TEXT = { binary: false } as const;
const BINARY = { binary: true } as const;

/**
 * One connected client of any protocol: its socket, identity (user), channel
 * memberships and credential. Only `ClientRegistry` changes user, channels and
 * credential, so its indexes stay true.
 */
export class Connection {
  readonly id: ClientId;
  readonly protocol: string;
  readonly socket: WebSocket;
  readonly ip: string | null;
  readonly since = Date.now();
  readonly normalClose: CloseSpec;
  private readonly slowConsumerClose: CloseSpec;
  private readonly sendBufferLimit: number;
  /** @internal maintained by ClientRegistry */
  _user: string | null;
  /** @internal maintained by ClientRegistry */
  readonly _channels = new Set<string>();
  /** @internal maintained by ClientRegistry */
  _credential: string | null = null;
  /** @internal maintained by ClientRegistry */
  _credentialVersion: string | null = null;
  /** @internal the protocol's state for this socket, kept by its SessionTable */
  _session: unknown = undefined;
  /** @internal the protocol's counters, attached by ClientRegistry when it adds the connection */
  _stats: ProtocolStats = UNCOUNTED;
  private cutOff = false;
  /** Frames written while held (`hold`), and their bytes. */
  private held: (Buffer | PreparedFrame)[] | null = null;
  private heldBytes = 0;
  private heldBinary: boolean[] = [];

  constructor(options: ConnectionOptions) {
    this.id = options.id;
    this.protocol = options.protocol;
    this.socket = options.socket;
    this.ip = options.ip ?? null;
    this._user = options.user ?? null;
    this.normalClose = options.normalClose ?? NORMAL_CLOSE;
    this.slowConsumerClose = options.slowConsumerClose ?? SLOW_CONSUMER_CLOSE;
    this.sendBufferLimit = options.sendBufferLimit;
  }

  get user(): string | null {
    return this._user;
  }

  get channels(): ReadonlySet<string> {
    return this._channels;
  }

  /** What the client authenticated with (a token id, a session key), for `ClientRegistry.revoke`; never listed. */
  get credential(): string | null {
    return this._credential;
  }

  /** Which version of `credential` it holds (a token's digest), when its protocol tells them apart. */
  get credentialVersion(): string | null {
    return this._credentialVersion;
  }

  get isOpen(): boolean {
    return this.socket.readyState === 1 && !this.cutOff;
  }

  /**
   * Writes one message. A client whose unsent bytes pass the send-buffer limit is cut
   * off instead of queueing more, so one slow reader cannot hold memory or slow the
   * others. Returns false when nothing was written.
   */
  send(data: Buffer | string, binary = false): boolean {
    if (!this.isOpen) return false;
    if (this.held) return this.keep(typeof data === 'string' ? Buffer.from(data) : data, binary);
    if (this.socket.bufferedAmount > this.sendBufferLimit) {
      this.dropSlowConsumer();
      return false;
    }
    this.socket.send(data, binary ? BINARY : TEXT);
    const stats = this._stats;
    stats.deliveredFrames++;
    stats.deliveredBytes += typeof data === 'string' ? Buffer.byteLength(data) : data.length;
    return true;
  }

  /** `send` for a message many sockets get: the frame is built once, not per recipient. */
  sendPrepared(prepared: PreparedFrame): boolean {
    if (!this.isOpen) return false;
    if (this.held) return this.keep(prepared, prepared.binary);
    if (this.socket.bufferedAmount > this.sendBufferLimit) {
      this.dropSlowConsumer();
      return false;
    }
    writePrepared(this.socket, prepared);
    const stats = this._stats;
    stats.deliveredFrames++;
    stats.deliveredBytes += prepared.payload.length;
    return true;
  }

  /**
   * Keeps what is written from now on, in order, until `release`: for a protocol whose first
   * frame must come first (jac's connection event) while its connection is already indexed,
   * so a fan-out could reach it. Held bytes count toward the send-buffer limit.
   */
  hold(): void {
    this.held ??= [];
  }

  /** Writes `first`, then everything held, and stops holding. */
  release(first?: Buffer | string): void {
    const held = this.held;
    const binary = this.heldBinary;
    this.held = null;
    this.heldBinary = [];
    this.heldBytes = 0;
    if (first !== undefined) this.send(first);
    held?.forEach((frame, i) => {
      if (Buffer.isBuffer(frame)) this.send(frame, binary[i]);
      else this.sendPrepared(frame);
    });
  }

  close(spec: CloseSpec = this.normalClose): void {
    if (this.socket.readyState === 0 || this.socket.readyState === 1) {
      this.socket.close(spec.code, spec.reason);
    }
  }

  info(instance: string): ClientInfo {
    return {
      id: this.id,
      protocol: this.protocol,
      user: this._user,
      channels: [...this._channels],
      instance,
      since: new Date(this.since).toISOString(),
    };
  }

  private keep(frame: Buffer | PreparedFrame, binary: boolean): boolean {
    const held = this.held as (Buffer | PreparedFrame)[];
    const bytes = Buffer.isBuffer(frame) ? frame.length : frame.payload.length;
    if (this.heldBytes + bytes > this.sendBufferLimit) {
      this.dropSlowConsumer();
      return false;
    }
    held.push(frame);
    this.heldBinary.push(binary);
    this.heldBytes += bytes;
    return true;
  }

  /** Cuts the client off with its protocol's slow-consumer close; nothing more is written to it. */
  dropSlowConsumer(): void {
    if (!this.cutOff) this._stats.slowConsumers++;
    this.cutOff = true;
    closeSlowConsumer(this.socket, this.slowConsumerClose);
  }
}
