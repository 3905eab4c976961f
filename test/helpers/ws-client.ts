import { once } from 'node:events';
import WebSocket, { type ClientOptions, type RawData } from 'ws';

const DEFAULT_TIMEOUT_MS = 3000;

export interface Received {
  data: Buffer;
  isBinary: boolean;
}

export interface Closed {
  code: number;
  reason: string;
}

export interface WsTestClientOptions extends ClientOptions {
  /** How long `next`, `nextRaw` and `waitClose` wait when the call names no time (3 s). */
  timeoutMs?: number;
  /** When set, `close` terminates the socket if the close handshake has not finished by then. */
  closeTimeoutMs?: number;
}

interface Waiter {
  resolve: (message: Received) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/**
 * A real `ws` client that queues everything it receives, so a spec can await "the
 * next message" or "the close" instead of sleeping. After `stream` it keeps nothing:
 * every message goes to the callback, so thousands of clients (or a firehose) cost the
 * test process no memory.
 */
export class WsTestClient {
  private readonly inbox: Received[] = [];
  private waiters: Waiter[] = [];
  private sink: ((data: Buffer, isBinary: boolean) => void) | null = null;
  private info: Closed | null = null;
  /** Messages received so far, queued, read or streamed. */
  received = 0;
  /** Resolves with the close, whichever side started it (1006 when the socket just dropped). */
  readonly closed: Promise<Closed>;

  private constructor(
    readonly socket: WebSocket,
    private readonly timeoutMs: number,
    private readonly closeTimeoutMs: number | undefined,
  ) {
    socket.on('message', (data: RawData, isBinary: boolean) => {
      const message = { data: toBuffer(data), isBinary };
      this.received++;
      if (this.sink) {
        this.sink(message.data, isBinary);
        return;
      }
      const waiter = this.waiters.shift();
      if (waiter) {
        clearTimeout(waiter.timer);
        waiter.resolve(message);
      } else {
        this.inbox.push(message);
      }
    });
    this.closed = new Promise((resolve) => {
      socket.on('close', (code: number, reason: Buffer) => {
        this.info = { code, reason: reason.toString() };
        for (const waiter of this.waiters.splice(0)) {
          clearTimeout(waiter.timer);
          waiter.reject(closedWhileWaiting(this.info));
        }
        resolve(this.info);
      });
    });
    socket.on('error', () => undefined);
  }

  /** Opens a socket; rejects with `UpgradeRejected` when the server answers the upgrade with a status. */
  static connect(url: string, options: WsTestClientOptions = {}): Promise<WsTestClient> {
    const { timeoutMs = DEFAULT_TIMEOUT_MS, closeTimeoutMs, ...wsOptions } = options;
    const socket = new WebSocket(url, wsOptions);
    const client = new WsTestClient(socket, timeoutMs, closeTimeoutMs);
    return new Promise((resolve, reject) => {
      socket.once('open', () => resolve(client));
      socket.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk.toString()));
        res.on('end', () => reject(new UpgradeRejected(res.statusCode ?? 0, body)));
        res.on('error', () => reject(new UpgradeRejected(res.statusCode ?? 0, body)));
      });
      socket.once('error', (err) => reject(err));
    });
  }

  /** The next message as it came. */
  nextRaw(timeoutMs = this.timeoutMs): Promise<Received> {
    const queued = this.inbox.shift();
    if (queued) return Promise.resolve(queued);
    if (this.info) return Promise.reject(closedWhileWaiting(this.info));
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters = this.waiters.filter((w) => w !== waiter);
          reject(new Error(`no message within ${timeoutMs} ms`));
        }, timeoutMs),
      };
      this.waiters.push(waiter);
    });
  }

  /** The next text message, JSON-parsed. */
  async next<T = unknown>(timeoutMs = this.timeoutMs): Promise<T> {
    const message = await this.nextRaw(timeoutMs);
    if (message.isBinary) throw new Error('expected a text message, got binary');
    return JSON.parse(message.data.toString('utf8')) as T;
  }

  /** From now on every message (the queued ones first) goes to `sink`; nothing is kept. */
  stream(sink: (data: Buffer, isBinary: boolean) => void): void {
    this.sink = sink;
    for (const message of this.inbox.splice(0)) sink(message.data, message.isBinary);
  }

  /** Messages already received and not yet read. */
  get pending(): number {
    return this.inbox.length;
  }

  get isOpen(): boolean {
    return this.socket.readyState === WebSocket.OPEN;
  }

  /** The close, once there was one. */
  get closeInfo(): Closed | null {
    return this.info;
  }

  send(message: unknown): void {
    this.socket.send(typeof message === 'string' || Buffer.isBuffer(message) ? message : JSON.stringify(message));
  }

  /** Resolves with the close the server sent (or 1006 when the socket just dropped). */
  async waitClose(timeoutMs = this.timeoutMs): Promise<Closed> {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        this.closed,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no close within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Closes from this side and waits for the close to finish (terminating after `closeTimeoutMs`, when set). */
  async close(): Promise<void> {
    if (this.socket.readyState === WebSocket.CLOSED) return;
    this.socket.close();
    if (this.closeTimeoutMs === undefined) {
      await this.closed;
      return;
    }
    try {
      await this.waitClose(this.closeTimeoutMs);
    } catch {
      this.socket.terminate();
      await this.closed;
    }
  }

  terminate(): void {
    this.socket.terminate();
  }
}

export class UpgradeRejected extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
  ) {
    super(`upgrade rejected with HTTP ${status}`);
  }
}

/** What `connectBounded` connects with. */
const BOUNDED: WsTestClientOptions = {
  perMessageDeflate: false,
  handshakeTimeout: 10_000,
  timeoutMs: 5000,
  closeTimeoutMs: 2000,
};

/**
 * A client bounded everywhere, for suites that open hundreds of clients against a server
 * under stress: no compression, a handshake that never completes fails the test instead of
 * stalling it, 5 s waits, and a close that terminates after 2 s. Rejects with
 * `UpgradeRejected` when the upgrade is answered with a status.
 */
export function connectBounded(url: string, options: WsTestClientOptions = {}): Promise<WsTestClient> {
  return WsTestClient.connect(url, { ...BOUNDED, ...options });
}

/** Resolves with the HTTP status the server refused the upgrade with; fails if it opened. */
export async function expectUpgradeRejected(url: string, options: ClientOptions = {}): Promise<UpgradeRejected> {
  try {
    const client = await WsTestClient.connect(url, options);
    await client.close();
  } catch (err) {
    if (err instanceof UpgradeRejected) return err;
    throw err;
  }
  throw new Error(`upgrade to ${url} was accepted`);
}

function closedWhileWaiting({ code, reason }: Closed): Error {
  return new Error(`socket closed (${code}${reason === '' ? '' : ` ${reason}`}) while waiting for a message`);
}

export function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

export { once };
