import { constants, createDeflateRaw, deflateSync, inflateSync, type DeflateRaw } from 'node:zlib';

/**
 * The zlib stream's settings (docs/protocols/hatsu.md "zlib"): a 4 KiB window instead of
 * 32 KiB. With the zlib inside Node, whose hash table stays 64 KiB whatever `memLevel`
 * says, a stream that has carried traffic holds about 110 KiB instead of about 220 KiB
 * with the defaults (windowBits 15, memLevel 8). A client's inflate with the default
 * window (15) reads any smaller window.
 */
export const HATSU_DEFLATE = { windowBits: 12, memLevel: 5, chunkSize: 4096 } as const;

/**
 * The two bytes a zlib stream with these settings starts with (`48 89`: deflate, a 4 KiB
 * window, the default level). The stream is written by raw deflate contexts, one after the
 * other when a connection goes idle and comes back, so the header is put in front of the
 * connection's first frame by hand; a raw deflate's blocks are byte for byte the blocks a
 * zlib-wrapped one writes.
 */
export const ZLIB_HEADER: Buffer = deflateSync(Buffer.alloc(0), HATSU_DEFLATE).subarray(0, 2);

/** The four bytes every sync-flushed message ends with. */
export const SYNC_FLUSH_TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);

/**
 * Messages up to this size are compressed on the spot, on the main thread (a few
 * microseconds for a typical event); larger ones go to the threadpool, so a big dispatch to
 * many sessions cannot stall the event loop for long.
 */
export const SYNC_COMPRESS_MAX = 16 * 1024;

/** The native handle of a zlib stream, as Node's own synchronous zlib functions drive it. */
interface ZlibHandle {
  writeSync(
    flush: number,
    input: Buffer,
    inOffset: number,
    inLength: number,
    output: Buffer,
    outOffset: number,
    outLength: number,
  ): void;
}

interface ZlibInternals {
  _handle?: ZlibHandle | null;
  /** [output bytes left, input bytes left] after each write. */
  _writeState?: Uint32Array;
}

/** Where synchronous compression writes; copied out at once, so one serves every stream. */
const scratch = Buffer.allocUnsafe(64 * 1024);

/**
 * Compresses `data` on `deflate`'s own zlib state, synchronously, up to a sync flush. Node
 * has no public synchronous API for a stream that lives on, so this drives the stream's
 * native handle the way its one-shot `deflateSync` does. Returns null when the handle is not
 * the one this was written against (`syncAvailable` checks that once at start-up).
 */
function compressNow(deflate: DeflateRaw, data: Buffer): Buffer | null {
  const { _handle: handle, _writeState: state } = deflate as unknown as ZlibInternals;
  if (!handle || typeof handle.writeSync !== 'function' || !(state instanceof Uint32Array)) return null;
  const parts: Buffer[] = [];
  let offset = 0;
  let left = data.length;
  for (;;) {
    handle.writeSync(constants.Z_SYNC_FLUSH, data, offset, left, scratch, 0, scratch.length);
    // A failed write has destroyed the stream; its 'error' event reports it.
    if (deflate.destroyed) return null;
    const outLeft = state[0] as number;
    const inLeft = state[1] as number;
    const produced = scratch.length - outLeft;
    if (produced > 0) parts.push(Buffer.from(scratch.subarray(0, produced)));
    offset += left - inLeft;
    left = inLeft;
    // Room left in the output means the flush is complete.
    if (outLeft !== 0) break;
  }
  return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
}

/**
 * Whether this Node's zlib handles work as `compressNow` expects: checked once, by
 * compressing two messages and reading them back. If not, every message takes the
 * threadpool, which is slower but the same on the wire.
 */
export const syncAvailable: boolean = (() => {
  const probe = createDeflateRaw(HATSU_DEFLATE);
  try {
    const message = Buffer.from('{"t":"HELLO","d":null}');
    const first = compressNow(probe, message);
    const second = compressNow(probe, message);
    if (!first || !second || !first.subarray(-4).equals(SYNC_FLUSH_TAIL)) return false;
    const read = inflateSync(Buffer.concat([ZLIB_HEADER, first, second]), { finishFlush: constants.Z_SYNC_FLUSH });
    return read.equals(Buffer.concat([message, message]));
  } catch {
    return false;
  } finally {
    probe.close();
  }
})();

interface Job {
  data: Buffer;
  done: (compressed: Buffer) => void;
}

/** Runs once every message queued before it has been handed to its callback. */
interface Barrier {
  barrier: () => void;
}

/** The shortest sweep interval, whatever `idleMs` asks for. */
const MIN_SWEEP_MS = 5;

/**
 * Every zlib connection's deflate context on this process, and the one interval that
 * releases those left idle (docs/protocols/hatsu.md "Idle connections"). A message only
 * copies the current tick into its stream (no timer per message or per connection); the
 * sweep runs every quarter of `idleMs` (at least 5 ms) while any context is held, and
 * releases each context unused for at least `idleMs`, so one is released between `idleMs`
 * and `idleMs` plus a sweep interval after its last message. `idleMs` 0: never released.
 */
export class ZlibContexts {
  /** Advanced by every sweep; a stream records it each time it is used. */
  tick = 0;
  /** Contexts released since start-up. */
  released = 0;
  private readonly held = new Set<HatsuDeflate>();
  private readonly listeners = new Set<() => void>();
  private readonly intervalMs: number;
  /** Whole sweep intervals a context must stay unused: `tick - usedAt` above it releases. */
  private readonly idleTicks: number;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(readonly idleMs: number) {
    this.intervalMs = Math.max(MIN_SWEEP_MS, Math.ceil(idleMs / 4));
    this.idleTicks = Math.ceil(idleMs / this.intervalMs);
  }

  /** Deflate contexts holding their state now. */
  get active(): number {
    return this.held.size;
  }

  /** Calls `listener` whenever contexts are given up: after a sweep that released some, and when a stream holding one closes. */
  onDrop(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Stops the sweep for good (at shutdown); contexts held now stay held until their streams close. */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** @internal A stream took a context. */
  hold(stream: HatsuDeflate): void {
    this.held.add(stream);
    if (this.timer || this.stopped || this.idleMs === 0) return;
    this.timer = setInterval(() => this.sweep(), this.intervalMs);
    this.timer.unref();
  }

  /** @internal A stream gave its context up; `closing`: for good, not in a sweep (which tells its listeners once). */
  drop(stream: HatsuDeflate, closing: boolean): void {
    if (!this.held.delete(stream)) return;
    if (this.held.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
    if (closing) this.dropped();
  }

  private sweep(): void {
    this.tick++;
    let released = 0;
    for (const stream of this.held) {
      if (this.tick - stream.usedAt > this.idleTicks && stream.release()) released++;
    }
    if (released === 0) return;
    this.released += released;
    this.dropped();
  }

  private dropped(): void {
    for (const listener of this.listeners) listener();
  }
}

/**
 * One zlib stream for the whole life of a connection, Discord zlib-stream style: each
 * message is written and flushed with Z_SYNC_FLUSH, and the output of exactly that flush is
 * the message's frame, so a client that keeps one inflate context decodes every frame as it
 * arrives.
 *
 * The stream outlives its deflate context. After a sync flush the output ends on a byte
 * boundary after an empty stored block, so any deflate block may follow; a connection idle
 * for `ZlibContexts.idleMs` drops its context (its window, hash table and buffers, about
 * 100 KiB) and its next message starts a fresh raw deflate context with the same settings.
 * The new context's back-references only reach into what it compressed itself, which the
 * client's inflate holds anyway; the zlib header went out with the first frame, and the
 * adler32 trailer, the only thing that covers the whole stream, is never sent (the stream
 * never ends), so the client cannot tell. What a release costs is the history: the first
 * message after it compresses as if it were the first.
 *
 * A message up to `SYNC_COMPRESS_MAX` bytes arriving while nothing is queued is compressed
 * at once and its callback runs before `compress` returns: no threadpool round trip, and
 * the stream's memory is touched on the main thread only. Anything else goes to the
 * threadpool and calls back later, so messages are compressed one at a time, in the order
 * they were queued: a message's callback always runs before the next one's (the same
 * discipline as `ws`'s permessage-deflate), whichever way each one was compressed. A
 * context is only released while nothing is queued.
 */
export class HatsuDeflate {
  private deflate: DeflateRaw | null = null;
  private readonly queue: (Job | Barrier)[] = [];
  private chunks: Buffer[] = [];
  private busy = false;
  private closed = false;
  /** Whether the zlib header has gone out (with the first frame). */
  private started = false;
  /** Bytes queued and not yet compressed, counted against the send-buffer limit. */
  pendingBytes = 0;
  /** The `ZlibContexts` tick of the last use, read by its sweep. */
  usedAt = 0;

  /** `sync: false` sends every message through the threadpool (what a Node without the handle API gets). */
  constructor(
    private readonly onError: (err: Error) => void,
    private readonly contexts: ZlibContexts,
    private readonly sync = syncAvailable,
  ) {}

  /** Whether the stream holds a deflate context now (it has none before its first message and while idle). */
  get holding(): boolean {
    return this.deflate !== null;
  }

  /** Queues one message; `done` gets its compressed frame (ending 00 00 ff ff). */
  compress(data: Buffer, done: (compressed: Buffer) => void): void {
    if (this.closed) return;
    this.usedAt = this.contexts.tick;
    if (this.sync && !this.busy && data.length <= SYNC_COMPRESS_MAX) {
      const compressed = compressNow(this.context(), data);
      if (compressed) done(this.frame(compressed));
      return;
    }
    this.queue.push({ data, done });
    this.pendingBytes += data.length;
    if (!this.busy) this.next();
  }

  /**
   * Calls `done` once every message queued so far has been compressed and handed to its
   * callback (at once when nothing is queued, or the stream is closed). A close frame sent
   * from here cannot overtake the messages before it.
   */
  afterQueued(done: () => void): void {
    if (this.closed || (!this.busy && this.queue.length === 0)) {
      done();
      return;
    }
    this.queue.push({ barrier: done });
  }

  /**
   * Gives the deflate context up, unless a message is being compressed; the next message
   * takes a fresh one. Returns whether it did.
   */
  release(): boolean {
    if (this.busy || !this.deflate) return false;
    this.deflate.close();
    this.deflate = null;
    this.chunks = [];
    this.contexts.drop(this, false);
    return true;
  }

  /** Drops what is still queued; waiting `afterQueued` callbacks run now (the stream is over). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const waiting = this.queue.filter((job): job is Barrier => 'barrier' in job);
    this.queue.length = 0;
    this.chunks = [];
    this.pendingBytes = 0;
    this.deflate?.close();
    this.deflate = null;
    this.contexts.drop(this, true);
    for (const job of waiting) job.barrier();
  }

  /** The stream's deflate context, a fresh one if it has none. */
  private context(): DeflateRaw {
    if (this.deflate) return this.deflate;
    const deflate = createDeflateRaw(HATSU_DEFLATE);
    deflate.on('data', (chunk: Buffer) => this.chunks.push(chunk));
    deflate.on('error', (err) => {
      this.close();
      this.onError(err);
    });
    this.deflate = deflate;
    this.contexts.hold(this);
    return deflate;
  }

  /** A message's compressed bytes as the frame sent: the stream's first one carries the zlib header. */
  private frame(compressed: Buffer): Buffer {
    if (this.started) return compressed;
    this.started = true;
    return Buffer.concat([ZLIB_HEADER, compressed]);
  }

  private next(): void {
    let job = this.queue.shift();
    while (job && 'barrier' in job && !this.closed) {
      job.barrier();
      job = this.queue.shift();
    }
    if (!job || 'barrier' in job || this.closed) {
      this.busy = false;
      return;
    }
    this.busy = true;
    const deflate = this.context();
    deflate.write(job.data);
    // zlib pushes a flush's output ('data') before it calls the flush back.
    deflate.flush(constants.Z_SYNC_FLUSH, () => {
      if (this.closed) return;
      const compressed = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks);
      this.chunks = [];
      this.pendingBytes -= job.data.length;
      this.usedAt = this.contexts.tick;
      job.done(this.frame(compressed));
      this.next();
    });
  }
}
