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

/**
 * A real `ws` client that queues everything it receives, so a spec can await "the
 * next message" or "the close" instead of sleeping.
 */
export class WsTestClient {
  private readonly inbox: Received[] = [];
  private waiters: ((message: Received) => void)[] = [];
  private readonly closed: Promise<Closed>;
  private closeInfo: Closed | null = null;

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data: RawData, isBinary: boolean) => {
      const message = { data: toBuffer(data), isBinary };
      const waiter = this.waiters.shift();
      if (waiter) waiter(message);
      else this.inbox.push(message);
    });
    this.closed = new Promise((resolve) => {
      socket.on('close', (code: number, reason: Buffer) => {
        this.closeInfo = { code, reason: reason.toString() };
        resolve(this.closeInfo);
      });
    });
    socket.on('error', () => undefined);
  }

  /** Opens a socket; rejects with `UpgradeRejected` when the server answers the upgrade with a status. */
  static connect(url: string, options: ClientOptions = {}): Promise<WsTestClient> {
    const socket = new WebSocket(url, options);
    const client = new WsTestClient(socket);
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
  nextRaw(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<Received> {
    const queued = this.inbox.shift();
    if (queued) return Promise.resolve(queued);
    if (this.closeInfo)
      return Promise.reject(new Error(`socket closed (${this.closeInfo.code}) while waiting for a message`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`no message within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter = (message: Received): void => {
        clearTimeout(timer);
        resolve(message);
      };
      this.waiters.push(waiter);
      void this.closed.then((info) => {
        if (!this.waiters.includes(waiter)) return;
        this.waiters = this.waiters.filter((w) => w !== waiter);
        clearTimeout(timer);
        reject(new Error(`socket closed (${info.code}) while waiting for a message`));
      });
    });
  }

  /** The next text message, JSON-parsed. */
  async next<T = unknown>(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<T> {
    const message = await this.nextRaw(timeoutMs);
    if (message.isBinary) throw new Error('expected a text message, got binary');
    return JSON.parse(message.data.toString('utf8')) as T;
  }

  /** Messages already received and not yet read. */
  get pending(): number {
    return this.inbox.length;
  }

  send(message: unknown): void {
    this.socket.send(typeof message === 'string' || Buffer.isBuffer(message) ? message : JSON.stringify(message));
  }

  /** Resolves with the close the server sent (or 1006 when the socket just dropped). */
  async waitClose(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<Closed> {
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

  async close(): Promise<void> {
    if (this.socket.readyState === WebSocket.CLOSED) return;
    this.socket.close();
    await this.closed;
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

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

export { once };
