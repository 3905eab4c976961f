import { constants, createDeflate, type Deflate } from 'node:zlib';

/**
 * The zlib stream's memory bound (docs/protocols/hatsu.md "zlib"). zlib's deflate
 * state is (1 << (windowBits + 2)) + (1 << (memLevel + 9)) bytes: 16 KiB + 16 KiB
 * here, plus Node's 4 KiB output buffer, about 40 KiB per zlib connection instead of
 * the ~270 KiB of zlib's defaults (windowBits 15, memLevel 8). A client's inflate with
 * the default window (15) reads any smaller window.
 */
export const HATSU_DEFLATE = { windowBits: 12, memLevel: 5, chunkSize: 4096 } as const;

/** The four bytes every sync-flushed message ends with. */
export const SYNC_FLUSH_TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);

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
 * Deflate runs off the main thread and calls back later, so messages are compressed
 * one at a time, in the order they were queued: a message's callback always runs
 * before the next one's (the same discipline as `ws`'s permessage-deflate).
 */
export class HatsuDeflate {
  private readonly deflate: Deflate;
  private readonly queue: (Job | Barrier)[] = [];
  private chunks: Buffer[] = [];
  private busy = false;
  private closed = false;
  /** Bytes queued and not yet compressed, counted against the send-buffer limit. */
  pendingBytes = 0;

  constructor(onError: (err: Error) => void) {
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
