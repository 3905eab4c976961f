import { constants, createDeflate, inflateSync, type Deflate } from 'node:zlib';

/**
 * The zlib stream's settings (docs/protocols/hatsu.md "zlib"): a 4 KiB window instead of
 * 32 KiB. With the zlib inside Node, whose hash table stays 64 KiB whatever `memLevel`
 * says, a stream that has carried traffic holds about 110 KiB instead of about 220 KiB
 * with the defaults (windowBits 15, memLevel 8). A client's inflate with the default
 * window (15) reads any smaller window.
 */
export const HATSU_DEFLATE = { windowBits: 12, memLevel: 5, chunkSize: 4096 } as const;

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
function compressNow(deflate: Deflate, data: Buffer): Buffer | null {
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
  const probe = createDeflate(HATSU_DEFLATE);
  try {
    const message = Buffer.from('{"t":"HELLO","d":null}');
    const first = compressNow(probe, message);
    const second = compressNow(probe, message);
    if (!first || !second || !first.subarray(-4).equals(SYNC_FLUSH_TAIL)) return false;
    const read = inflateSync(Buffer.concat([first, second]), { finishFlush: constants.Z_SYNC_FLUSH });
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

/**
 * One deflate stream (zlib format) for the whole life of a connection, Discord
 * zlib-stream style: each message is written and flushed with Z_SYNC_FLUSH, and the
 * output of exactly that flush is the message's frame, so a client that keeps one
 * inflate context decodes every frame as it arrives.
 *
 * A message up to `SYNC_COMPRESS_MAX` bytes arriving while nothing is queued is compressed
 * at once and its callback runs before `compress` returns: no threadpool round trip, and
 * the stream's memory is touched on the main thread only. Anything else goes to the
 * threadpool and calls back later, so messages are compressed one at a time, in the order
 * they were queued: a message's callback always runs before the next one's (the same
 * discipline as `ws`'s permessage-deflate), whichever way each one was compressed.
 */
export class HatsuDeflate {
  private readonly deflate: Deflate;
  private readonly queue: (Job | Barrier)[] = [];
  private chunks: Buffer[] = [];
  private busy = false;
  private closed = false;
  /** Bytes queued and not yet compressed, counted against the send-buffer limit. */
  pendingBytes = 0;

  /** `sync: false` sends every message through the threadpool (what a Node without the handle API gets). */
  constructor(
    onError: (err: Error) => void,
    private readonly sync = syncAvailable,
  ) {
    this.deflate = createDeflate(HATSU_DEFLATE);
    this.deflate.on('data', (chunk: Buffer) => this.chunks.push(chunk));
    this.deflate.on('error', (err) => {
      this.close();
      onError(err);
    });
  }

  /** Queues one message; `done` gets its compressed frame (ending 00 00 ff ff). */
  compress(data: Buffer, done: (compressed: Buffer) => void): void {
    if (this.closed) return;
    if (this.sync && !this.busy && data.length <= SYNC_COMPRESS_MAX) {
      const compressed = compressNow(this.deflate, data);
      if (compressed) done(compressed);
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

  /** Drops what is still queued; waiting `afterQueued` callbacks run now (the stream is over). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const waiting = this.queue.filter((job): job is Barrier => 'barrier' in job);
    this.queue.length = 0;
    this.chunks = [];
    this.pendingBytes = 0;
    this.deflate.close();
    for (const job of waiting) job.barrier();
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
    this.deflate.write(job.data);
    // zlib pushes a flush's output ('data') before it calls the flush back.
    this.deflate.flush(constants.Z_SYNC_FLUSH, () => {
      if (this.closed) return;
      const compressed = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks);
      this.chunks = [];
      this.pendingBytes -= job.data.length;
      job.done(compressed);
      this.next();
    });
  }
}
