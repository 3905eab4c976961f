import { request as httpRequest, type IncomingMessage, type ClientRequest } from 'node:http';
import { ADMIN_TOKEN, type TestApp } from './app.js';

/** One server-sent event, its data parsed as JSON. */
export interface StreamEvent {
  event: string;
  data: unknown;
}

/** `GET /admin/stream` was answered with an error status instead of a stream. */
export class StreamRefused extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
    readonly headers: IncomingMessage['headers'],
  ) {
    super(`GET /admin/stream answered ${status}: ${body}`);
  }
}

interface Waiter {
  match: (event: StreamEvent) => boolean;
  resolve: (event: StreamEvent) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/**
 * A reader of `GET /admin/stream` over plain HTTP, as any SSE client with a bearer header
 * would read it. It keeps every event, so a spec can await "the next `publish`" instead of
 * sleeping, and it can stop reading (`pause`) to play a reader that falls behind.
 */
export class AdminStream {
  private buffer = '';
  private readonly events: StreamEvent[] = [];
  private waiters: Waiter[] = [];
  private ended = false;
  /** Heartbeat comments seen. */
  comments = 0;
  /** Resolves when the server ends the stream or the connection drops. */
  readonly closed: Promise<void>;

  private constructor(
    private readonly req: ClientRequest,
    private readonly res: IncomingMessage,
  ) {
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => this.feed(chunk));
    this.closed = new Promise((resolve) => {
      const done = (): void => {
        this.ended = true;
        for (const waiter of this.waiters.splice(0)) {
          clearTimeout(waiter.timer);
          waiter.reject(new Error('the stream ended while waiting for an event'));
        }
        resolve();
      };
      res.once('end', done);
      res.once('close', done);
      res.once('error', done);
    });
  }

  /** Opens the stream; rejects with `StreamRefused` when the server answers with an error status. */
  static open(app: Pick<TestApp, 'http'>, token: string | null = ADMIN_TOKEN): Promise<AdminStream> {
    const url = new URL('/admin/stream', app.http);
    return new Promise((resolve, reject) => {
      const req = httpRequest(url, {
        headers: { Accept: 'text/event-stream', ...(token === null ? {} : { Authorization: `Bearer ${token}` }) },
      });
      req.once('error', reject);
      req.once('response', (res) => {
        if (res.statusCode !== 200) {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (body += chunk));
          res.once('end', () => reject(new StreamRefused(res.statusCode ?? 0, body, res.headers)));
          return;
        }
        resolve(new AdminStream(req, res));
      });
      req.end();
    });
  }

  get headers(): IncomingMessage['headers'] {
    return this.res.headers;
  }

  /** Every event received so far (read or not). */
  get received(): readonly StreamEvent[] {
    return this.events;
  }

  /** The first event received from now or already queued and not yet taken that matches. */
  next(event: string | ((e: StreamEvent) => boolean), timeoutMs = 5000): Promise<StreamEvent> {
    const match = typeof event === 'string' ? (e: StreamEvent) => e.event === event : event;
    const at = this.events.findIndex((e, i) => i >= this.taken && match(e));
    if (at >= 0) {
      this.taken = at + 1;
      return Promise.resolve(this.events[at] as StreamEvent);
    }
    if (this.ended) return Promise.reject(new Error('the stream has ended'));
    this.taken = this.events.length;
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        match,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters = this.waiters.filter((w) => w !== waiter);
          reject(new Error(`no matching event within ${timeoutMs} ms`));
        }, timeoutMs),
      };
      this.waiters.push(waiter);
    });
  }

  /** Where `next` looks from: events before it were taken or passed over. */
  private taken = 0;

  /** Stops reading: the server's writes pile up in the socket, then in its own buffer. */
  pause(): void {
    this.res.pause();
  }

  resume(): void {
    this.res.resume();
  }

  close(): Promise<void> {
    this.req.destroy();
    return this.closed;
  }

  private feed(chunk: string): void {
    this.buffer += chunk;
    let end: number;
    while ((end = this.buffer.indexOf('\n\n')) >= 0) {
      const block = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 2);
      this.parse(block);
    }
  }

  private parse(block: string): void {
    let event = 'message';
    let data = '';
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) {
        this.comments++;
        continue;
      }
      if (line.startsWith('event: ')) event = line.slice('event: '.length);
      else if (line.startsWith('data: ')) data += line.slice('data: '.length);
    }
    if (data === '') return;
    const parsed: StreamEvent = { event, data: JSON.parse(data) as unknown };
    this.events.push(parsed);
    const waiter = this.waiters.find((w) => w.match(parsed));
    if (waiter) {
      this.waiters = this.waiters.filter((w) => w !== waiter);
      clearTimeout(waiter.timer);
      this.taken = this.events.length;
      waiter.resolve(parsed);
    }
  }
}
