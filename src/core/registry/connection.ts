import type { WebSocket } from 'ws';
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

export interface ConnectionOptions {
  id: ClientId;
  protocol: string;
  socket: WebSocket;
  user?: string | null;
  /** The protocol's ordinary close, used by `DELETE /admin/connections/:id`. */
  normalClose: CloseSpec;
  /** The close a slow consumer gets when its send buffer passes the limit. */
  slowConsumerClose: CloseSpec;
  /** `WS_SEND_BUFFER_LIMIT`. */
  sendBufferLimit: number;
}

const SLOW_CONSUMER_GRACE_MS = 1000;
const TEXT = { binary: false } as const;
const BINARY = { binary: true } as const;

/**
 * One connected client of any protocol: its socket, identity (user) and channel
 * memberships. Only `ClientRegistry` changes user and channels, so its indexes
 * stay true.
 */
export class Connection {
  readonly id: ClientId;
  readonly protocol: string;
  readonly socket: WebSocket;
  readonly since = Date.now();
  readonly normalClose: CloseSpec;
  private readonly slowConsumerClose: CloseSpec;
  private readonly sendBufferLimit: number;
  /** @internal maintained by ClientRegistry */
  _user: string | null;
  /** @internal maintained by ClientRegistry */
  readonly _channels = new Set<string>();
  private cutOff = false;

  constructor(options: ConnectionOptions) {
    this.id = options.id;
    this.protocol = options.protocol;
    this.socket = options.socket;
    this._user = options.user ?? null;
    this.normalClose = options.normalClose;
    this.slowConsumerClose = options.slowConsumerClose;
    this.sendBufferLimit = options.sendBufferLimit;
  }

  get user(): string | null {
    return this._user;
  }

  get channels(): ReadonlySet<string> {
    return this._channels;
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
    if (this.socket.bufferedAmount > this.sendBufferLimit) {
      this.dropSlowConsumer();
      return false;
    }
    this.socket.send(data, binary ? BINARY : TEXT);
    return true;
  }

  /** `send` for a message many sockets get: the frame is built once, not per recipient. */
  sendPrepared(prepared: PreparedFrame): boolean {
    if (!this.isOpen) return false;
    if (this.socket.bufferedAmount > this.sendBufferLimit) {
      this.dropSlowConsumer();
      return false;
    }
    writePrepared(this.socket, prepared);
    return true;
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

  private dropSlowConsumer(): void {
    this.cutOff = true;
    this.socket.close(this.slowConsumerClose.code, this.slowConsumerClose.reason);
    // The close frame waits behind bytes the client is not reading; a client that does
    // not catch up within the grace period loses the socket without it.
    const socket = this.socket;
    setTimeout(() => socket.terminate(), SLOW_CONSUMER_GRACE_MS).unref();
  }
}
