// The fuzz suites' shared machinery: a raw `ws` client that reports messages and the close
// in order, frame sending (fragments, pings), the reply collector that checks every server
// message against a protocol's expectations (with the transport's own closes and the probe
// behind a frame), the output scanner (stack traces, secrets), each lane's session and the
// heap measurement.
import { isUtf8 } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import WebSocket, { type RawData } from 'ws';
import { collectGarbage } from '../helpers/gc.js';
import { toBuffer } from '../helpers/ws-client.js';
import { describeFrame, fragmentsOf, type FuzzFrame } from './generate.js';

/** How long any expected reply or close may take before the frame counts as a hang. */
export const REPLY_TIMEOUT_MS = 5000;

export type WsEvent =
  { kind: 'message'; data: Buffer; binary: boolean } | { kind: 'close'; code: number; reason: string };

/** A real `ws` client that queues messages and the close in arrival order. */
export class FuzzSocket {
  private readonly queue: WsEvent[] = [];
  private waiter: ((event: WsEvent) => void) | null = null;
  private closeEvent: WsEvent | null = null;
  private readonly pongWaiters = new Map<string, () => void>();

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: RawData, isBinary: boolean) =>
      this.push({ kind: 'message', data: toBuffer(data), binary: isBinary }),
    );
    ws.on('close', (code: number, reason: Buffer) => {
      this.closeEvent = { kind: 'close', code, reason: reason.toString('utf8') };
      this.push(this.closeEvent);
      for (const resolve of this.pongWaiters.values()) resolve();
    });
    ws.on('pong', (payload: Buffer) => {
      const key = payload.toString('hex');
      this.pongWaiters.get(key)?.();
      this.pongWaiters.delete(key);
    });
    ws.on('error', () => undefined);
  }

  static open(url: string, headers: Record<string, string> = {}): Promise<FuzzSocket> {
    const ws = new WebSocket(url, { headers, perMessageDeflate: false });
    const socket = new FuzzSocket(ws);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(socket));
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused with HTTP ${res.statusCode}`)));
      ws.once('error', reject);
    });
  }

  get isOpen(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  get closed(): boolean {
    return this.closeEvent !== null;
  }

  /** The next message, or the close (again and again once closed), or null after `timeoutMs`. */
  next(timeoutMs = REPLY_TIMEOUT_MS): Promise<WsEvent | null> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    if (this.closeEvent) return Promise.resolve(this.closeEvent);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        resolve(null);
      }, timeoutMs);
      this.waiter = (event) => {
        clearTimeout(timer);
        this.waiter = null;
        resolve(event);
      };
    });
  }

  /** Everything already received and not yet read, without waiting (the close last, if any). */
  drain(): WsEvent[] {
    const events = this.queue.splice(0, this.queue.length);
    if (this.closeEvent && !events.includes(this.closeEvent)) events.push(this.closeEvent);
    return events;
  }

  /** Sends a frame as the generator described it: fragments, interleaved pings, a ping flood. */
  sendFrame(frame: FuzzFrame): void {
    if (!this.isOpen) return;
    if (!frame.pingOnly) {
      const parts = fragmentsOf(frame);
      parts.forEach((part, i) => {
        if (!this.isOpen) return;
        if (i > 0 && frame.pingsBetween) this.ws.ping();
        this.ws.send(part, { binary: frame.binary, fin: i === parts.length - 1, compress: false });
      });
    }
    for (let i = 0; i < frame.pings && this.isOpen; i++) this.ws.ping(Buffer.from([i & 0xff]));
  }

  send(data: string | Buffer, binary = false): void {
    if (this.isOpen) this.ws.send(data, { binary });
  }

  /** A ping with a unique payload; true when its pong came back (the socket read everything before it). */
  pingPong(timeoutMs = REPLY_TIMEOUT_MS): Promise<boolean> {
    if (!this.isOpen) return Promise.resolve(false);
    const payload = randomBytes(8);
    const key = payload.toString('hex');
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pongWaiters.delete(key);
        resolve(false);
      }, timeoutMs);
      this.pongWaiters.set(key, () => {
        clearTimeout(timer);
        resolve(this.isOpen);
      });
      this.ws.ping(payload);
    });
  }

  /** Closes from our side and waits for the close to complete (bounded). */
  async close(): Promise<void> {
    if (this.closeEvent) return;
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(1000);
    const timer = setTimeout(() => this.ws.terminate(), 2000);
    while (!this.closeEvent) {
      const event = await this.next(3000);
      if (event === null) break;
    }
    clearTimeout(timer);
  }

  private push(event: WsEvent): void {
    if (this.waiter) this.waiter(event);
    else this.queue.push(event);
  }
}

// ---- expectations -----------------------------------------------------------------------------

/** A decoded server message. */
export interface Message {
  text: string;
  /** JSON.parse(text), or undefined when it is not JSON. */
  json: unknown;
  binary: boolean;
}

/** One reply the frame must produce. `match` returns true when `message` is it. */
export interface Matcher {
  readonly name: string;
  match(message: Message): boolean;
  /** The message is the client's own content coming back (checked exactly by `match`): not scanned. */
  readonly echo?: boolean;
  /** The part of the message the server wrote, for the stack-trace and secret scan (default: all of it). */
  scanView?(message: Message): string;
}

export interface Expectation {
  /** Replies that must all arrive, in any order. */
  replies: Matcher[];
  /** When set, the server must close with one of these codes after the replies. */
  close?: readonly number[];
  /** Close reason required with the close, when the protocol documents one. */
  reason?: string;
  /**
   * Closes that are also acceptable at any point (a ping flood past ws's pong-flood guard is
   * dropped without a close frame: 1006).
   */
  mayDrop?: readonly number[];
}

/**
 * ws's pong-flood guard (`maxPendingAutoPongs`, default 60): a socket with more pings than
 * this waiting for their automatic pong is terminated. Documented in each protocol's doc.
 */
export const MAX_PENDING_AUTO_PONGS = 60;

/** Pings a frame puts in flight at once: the flood after it and those between its fragments. */
export function pingBurst(frame: FuzzFrame): number {
  return frame.pings + (frame.pingsBetween ? frame.fragments - 1 : 0);
}

/** True when the frame's pings may have tripped the guard: its socket is not reused (ws may still drop it). */
export function floodedSocket(frame: FuzzFrame): boolean {
  return pingBurst(frame) > MAX_PENDING_AUTO_PONGS;
}

/** The expectation, widened by the pong-flood drop when the frame's pings pass the guard. */
export function withPingFlood(frame: FuzzFrame, expected: Expectation): Expectation {
  return pingBurst(frame) > MAX_PENDING_AUTO_PONGS ? { ...expected, mayDrop: [1006] } : expected;
}

/**
 * Unless the frame is to be closed on, `probe` goes right behind it and `reply` must answer
 * it: once it has, the socket read the frame, and nothing unexpected came before it.
 */
export function probeAfter(socket: FuzzSocket, expected: Expectation, probe: string, reply: Matcher): Expectation {
  if (expected.close) return expected;
  socket.send(probe);
  return { ...expected, replies: [...expected.replies, reply] };
}

/**
 * What the transport does before any protocol sees a frame: past the protocol's frame limit
 * 1009, text that is not UTF-8 1007; null when the frame gets through.
 */
export function transportClose(frame: FuzzFrame, limit: number): Expectation | null {
  if (frame.data.length > limit) return { replies: [], close: [1009] };
  if (!frame.binary && !isUtf8(frame.data)) return { replies: [], close: [1007] };
  return null;
}

/** A message the protocol may send at any moment (Fates flamepaw `ping` controls). */
export type Ignorable = (message: Message) => boolean;

export type Decoder = (event: Extract<WsEvent, { kind: 'message' }>) => Promise<Message>;

export const decodeText: Decoder = (event) => {
  const text = event.data.toString('utf8');
  return Promise.resolve({ text, json: parseOrUndefined(text), binary: event.binary });
};

/** A JSON object: not null, not an array. */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function parseOrUndefined(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

export interface Outcome {
  /** `none`, `reply:<names>`, `close:<code>` */
  kind: string;
  failure?: string;
  closed: boolean;
}

/**
 * Reads the socket until every expected reply arrived (and, when a close is expected, the
 * close): an unexpected message, a close that is not allowed, or silence past the timeout
 * is a failure. Every message is scanned for stack traces and secrets.
 */
export async function collect(
  socket: FuzzSocket,
  expected: Expectation,
  scanner: Scanner,
  { decode = decodeText, ignorable }: { decode?: Decoder; ignorable?: Ignorable } = {},
): Promise<Outcome> {
  const pending = [...expected.replies];
  const seen: string[] = [];
  for (;;) {
    if (pending.length === 0 && !expected.close) {
      return { kind: seen.length > 0 ? `reply:${seen.join('+')}` : 'none', closed: false };
    }
    const event = await socket.next();
    if (event === null) {
      const waiting =
        pending.length > 0
          ? `replies ${pending.map((m) => m.name).join(', ')}`
          : `a close (${expected.close?.join('/')})`;
      return {
        kind: 'hang',
        failure: `no answer within ${REPLY_TIMEOUT_MS} ms; waiting for ${waiting}`,
        closed: false,
      };
    }
    if (event.kind === 'close') {
      const reasonProblem = scanner.scanClose(event.reason);
      if (reasonProblem) return { kind: `close:${event.code}`, failure: reasonProblem, closed: true };
      const closeKind = seen.length > 0 ? `close:${event.code}(${seen.join('+')})` : `close:${event.code}`;
      if (expected.mayDrop?.includes(event.code)) return { kind: closeKind, closed: true };
      if (!expected.close) {
        return {
          kind: `close:${event.code}`,
          failure: `closed ${event.code} ${JSON.stringify(event.reason)}; expected ${pending.length > 0 ? pending.map((m) => m.name).join(', ') : 'the socket to stay open'}`,
          closed: true,
        };
      }
      if (!expected.close.includes(event.code)) {
        return {
          kind: `close:${event.code}`,
          failure: `closed ${event.code} ${JSON.stringify(event.reason)}; expected ${expected.close.join('/')}`,
          closed: true,
        };
      }
      if (pending.length > 0) {
        return {
          kind: `close:${event.code}`,
          failure: `closed ${event.code} before ${pending.map((m) => m.name).join(', ')}`,
          closed: true,
        };
      }
      if (expected.reason !== undefined && event.reason !== expected.reason) {
        return {
          kind: `close:${event.code}`,
          failure: `close reason ${JSON.stringify(event.reason)}; expected ${JSON.stringify(expected.reason)}`,
          closed: true,
        };
      }
      return { kind: closeKind, closed: true };
    }
    const message = await decode(event);
    const i = pending.findIndex((m) => m.match(message));
    if (i < 0) {
      if (ignorable?.(message)) {
        const problem = scanner.scan(message.text);
        if (problem) return { kind: 'unexpected', failure: problem, closed: false };
        continue;
      }
      const wanted =
        pending.map((m) => m.name).join(', ') ||
        (expected.close ? `only a close (${expected.close.join('/')})` : 'nothing');
      return {
        kind: 'unexpected',
        failure: `unexpected message ${truncate(message.text)}; expected ${wanted}`,
        closed: false,
      };
    }
    const matcher = pending.splice(i, 1)[0] as Matcher;
    if (!matcher.echo) {
      const problem = scanner.scan(matcher.scanView ? matcher.scanView(message) : message.text);
      if (problem) return { kind: 'unexpected', failure: problem, closed: false };
    }
    if (!matcher.name.startsWith('probe')) seen.push(matcher.name);
  }
}

/**
 * Structural equality without recursion, so values nested 100 000 deep compare instead of
 * overflowing the stack (node's isDeepStrictEqual recurses). JSON values only.
 */
export function jsonEqual(a: unknown, b: unknown): boolean {
  const stack: [unknown, unknown][] = [[a, b]];
  while (stack.length > 0) {
    const [x, y] = stack.pop() as [unknown, unknown];
    if (x === y) continue;
    if (typeof x !== 'object' || typeof y !== 'object' || x === null || y === null) {
      if (Number.isNaN(x) && Number.isNaN(y)) continue;
      return false;
    }
    if (Array.isArray(x) !== Array.isArray(y)) return false;
    if (Array.isArray(x) && Array.isArray(y)) {
      if (x.length !== y.length) return false;
      for (let i = 0; i < x.length; i++) stack.push([x[i], y[i]]);
      continue;
    }
    const xo = x as Record<string, unknown>;
    const yo = y as Record<string, unknown>;
    const keys = Object.keys(xo);
    if (keys.length !== Object.keys(yo).length) return false;
    for (const key of keys) {
      if (!Object.hasOwn(yo, key)) return false;
      stack.push([xo[key], yo[key]]);
    }
  }
  return true;
}

/** How deep a JSON value nests (a scalar is 0), without recursion. */
export function jsonDepth(value: unknown): number {
  let max = 0;
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop() as [unknown, number];
    if (typeof v !== 'object' || v === null) continue;
    const level = depth + 1;
    if (level > max) max = level;
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, level]);
  }
  return max;
}

/**
 * For frames the protocol answers with nothing: a ping goes after the frame, and once its
 * pong is back (the socket read the frame and everything before it) nothing but ignorable
 * messages may have arrived, and the socket must be open, unless a close is expected.
 */
export async function expectQuiet(
  socket: FuzzSocket,
  expected: Expectation,
  scanner: Scanner,
  ignorable?: Ignorable,
): Promise<Outcome> {
  if (expected.close || expected.replies.length > 0) return collect(socket, expected, scanner, { ignorable });
  const answered = await socket.pingPong();
  for (const event of socket.drain()) {
    if (event.kind === 'close') {
      const reasonProblem = scanner.scanClose(event.reason);
      if (reasonProblem) return { kind: `close:${event.code}`, failure: reasonProblem, closed: true };
      if (expected.mayDrop?.includes(event.code)) return { kind: `close:${event.code}`, closed: true };
      return {
        kind: `close:${event.code}`,
        failure: `closed ${event.code} ${JSON.stringify(event.reason)}; expected the socket to stay open`,
        closed: true,
      };
    }
    const message = await decodeText(event);
    const problem = scanner.scan(message.text);
    if (problem) return { kind: 'unexpected', failure: problem, closed: false };
    if (!ignorable?.(message)) {
      return {
        kind: 'unexpected',
        failure: `unexpected message ${truncate(message.text)}; expected nothing`,
        closed: false,
      };
    }
  }
  if (!answered) return { kind: 'hang', failure: `no pong within ${REPLY_TIMEOUT_MS} ms`, closed: false };
  return { kind: 'none', closed: false };
}

export function truncate(text: string, max = 300): string {
  const shown = JSON.stringify(text.length > max ? text.slice(0, max) : text);
  return text.length > max ? `${shown}…(+${text.length - max} chars)` : shown;
}

// ---- output scan ------------------------------------------------------------------------------

const STACK_PATTERNS: readonly RegExp[] = [
  /\n\s+at /,
  /\.ts:/,
  /\.js:/,
  /\b(?:Range|Type|Syntax|Reference)Error\b/,
  /Maximum call stack/,
];

/** Checks everything the server wrote for stack traces and for any secret the test used. */
export class Scanner {
  private readonly secrets = new Set<string>();
  scanned = 0;

  addSecret(secret: string): void {
    this.secrets.add(secret);
  }

  /** A problem description, or null when the text is clean. */
  scan(text: string): string | null {
    this.scanned++;
    for (const pattern of STACK_PATTERNS) {
      if (pattern.test(text)) return `server output looks like a stack trace (${pattern}): ${truncate(text)}`;
    }
    for (const secret of this.secrets) {
      if (text.includes(secret)) return `server output contains a secret used by the test: ${truncate(text)}`;
    }
    return null;
  }

  scanClose(reason: string): string | null {
    return reason === '' ? null : this.scan(reason);
  }
}

// ---- bookkeeping ------------------------------------------------------------------------------

export class FuzzStats {
  readonly outcomes = new Map<string, number>();
  readonly failures: string[] = [];
  frames = 0;
  connections = 0;
  readonly startedAt = Date.now();
  finishedAt = 0;

  constructor(
    readonly protocol: string,
    readonly seed: number,
  ) {}

  /** Milliseconds spent per frame kind (send to classified outcome, reconnects included). */
  readonly timeByKind = new Map<string, number>();

  record(frame: FuzzFrame, outcome: Outcome, ms = 0): void {
    this.timeByKind.set(frame.kind, (this.timeByKind.get(frame.kind) ?? 0) + ms);
    this.frames++;
    // FUZZ_TRACE=1 prints every frame and its outcome (FUZZ_TRACE=<lane> one lane's), to replay a failure.
    const trace = process.env.FUZZ_TRACE;
    if (trace !== undefined && trace !== '' && (trace === '1' || trace === `lane${frame.lane}`)) {
      console.log(
        `${describeFrame(this.seed, frame, 120)} => ${outcome.kind} ${outcome.failure ?? ''} (${ms.toFixed(1)} ms)`,
      );
    }
    const key = outcome.failure ? `FAILED ${outcome.kind}` : outcome.kind;
    this.outcomes.set(key, (this.outcomes.get(key) ?? 0) + 1);
    if (outcome.failure) this.fail(`${describeFrame(this.seed, frame)}\n    → ${outcome.failure}`);
  }

  fail(text: string): void {
    this.failures.push(text);
  }

  report(): string {
    const ms = (this.finishedAt || Date.now()) - this.startedAt;
    const rows = [...this.outcomes.entries()].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`);
    return (
      `[fuzz] ${this.protocol}: seed=${this.seed} (0x${this.seed.toString(16)}) frames=${this.frames} ` +
      `connections=${this.connections} failures=${this.failures.length} in ${(ms / 1000).toFixed(1)} s\n` +
      `[fuzz] ${this.protocol} outcomes: ${rows.join(', ')}\n` +
      `[fuzz] ${this.protocol} time by frame kind (ms, all lanes): ${[...this.timeByKind.entries()]
        .sort((a, b) => b[1] - a[1])
        .map(([k, t]) => `${k} ${Math.round(t)}`)
        .join(', ')}`
    );
  }

  /** The assertion message: the first failures, each with seed, frame and what went wrong. */
  failureReport(max = Number(process.env.FUZZ_SHOW ?? 12)): string {
    const shown = this.failures.slice(0, max).map((f) => `  - ${f}`);
    const more = this.failures.length > max ? `\n  ... and ${this.failures.length - max} more` : '';
    const groups = new Map<string, number>();
    for (const f of this.failures) {
      const kind = /kind=(\S+)/.exec(f)?.[1] ?? '?';
      const why = (f.split('→ ')[1] ?? '').replace(/\d+/g, 'N').slice(0, 90);
      groups.set(`${kind}: ${why}`, (groups.get(`${kind}: ${why}`) ?? 0) + 1);
    }
    const summary = [...groups.entries()].map(([k, n]) => `  ${n} × ${k}`).join('\n');
    return `${this.failures.length} fuzz failure(s) on ${this.protocol}:\n${shown.join('\n')}${more}\nby kind:\n${summary}`;
  }
}

/** Each lane's open session (its socket and whatever goes with it), ended with `close`. */
export class LaneSessions<T> {
  private readonly open = new Map<number, T>();

  constructor(private readonly close: (session: T) => Promise<void>) {}

  get(lane: number): T | undefined {
    return this.open.get(lane);
  }

  set(lane: number, session: T): void {
    this.open.set(lane, session);
  }

  /**
   * Terminates the lane's socket and lets go of its session, so the lane starts over:
   * whatever is still in flight belongs to the failed frame (or the ping flood may yet have
   * the socket dropped).
   */
  abandon(lane: number, socket: FuzzSocket): void {
    socket.ws.terminate();
    this.open.delete(lane);
  }

  /** Closes the lane's session, if it has one. */
  async drop(lane: number): Promise<void> {
    const session = this.open.get(lane);
    this.open.delete(lane);
    if (session !== undefined) await this.close(session);
  }

  /** Closes every lane's session: the end of a run. */
  async dropAll(): Promise<void> {
    await Promise.all([...this.open.keys()].map((lane) => this.drop(lane)));
  }
}

/** Runs `lanes` workers over frames 0..count-1, frame i on lane i % lanes, each lane in index order. */
export async function runLanes(
  lanes: number,
  count: number,
  work: (lane: number, index: number) => Promise<void>,
): Promise<void> {
  await Promise.all(
    Array.from({ length: lanes }, async (_, lane) => {
      for (let index = lane; index < count; index += lanes) await work(lane, index);
    }),
  );
}

// ---- memory -----------------------------------------------------------------------------------

export function heapUsedAfterGc(): number {
  collectGarbage(3);
  return process.memoryUsage().heapUsed;
}

/** The generous bound on heap growth across a fuzz run: the heap must come back near where it started. */
export const HEAP_GROWTH_LIMIT = 50 * 1024 * 1024;

export function mb(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}
