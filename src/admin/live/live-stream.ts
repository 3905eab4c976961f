import type { Response } from 'express';

export interface LiveStreamLimits {
  /**
   * Bytes this stream may have queued unsent before events are skipped for it. Feed events
   * are dropped and counted; snapshots are skipped (the next one replaces them anyway).
   */
  bufferLimit: number;
  /** A reader that stays over `bufferLimit` this long has stopped reading: its stream is cut. */
  stallMs: number;
}

/**
 * One `GET /admin/stream` response: server-sent events written to it, with a bound on what
 * it may queue. A reader that does not keep up loses feed events (and is told how many in a
 * `dropped` event once it catches up) instead of making the server buffer them.
 */
export class LiveStream {
  private dropped = 0;
  private overSince: number | null = null;
  private ended = false;
  /** The `connections` counts last written, so they are sent again only when they change. */
  countsSent = '';

  constructor(
    private readonly res: Response,
    private readonly limits: LiveStreamLimits,
  ) {}

  get isOpen(): boolean {
    return !this.ended && !this.res.writableEnded && !this.res.destroyed;
  }

  /** An event the reader can do without: dropped (and counted) while the stream is backed up. False when dropped. */
  feed(event: string, data: unknown): boolean {
    if (!this.isOpen) return true;
    if (!this.writable()) {
      this.dropped++;
      return false;
    }
    this.write(event, data);
    return true;
  }

  /** A snapshot (instances, connections): skipped while backed up, since the next one supersedes it. */
  snapshot(event: string, data: unknown): boolean {
    if (!this.writable()) return false;
    this.write(event, data);
    return true;
  }

  /** An SSE comment line: keeps proxies and the reader from timing the stream out. */
  heartbeat(): void {
    if (this.isOpen && this.res.writableLength <= this.limits.bufferLimit) this.res.write(': heartbeat\n\n');
  }

  /** Whether the reader has been backed up for longer than `stallMs`. */
  stalled(now = Date.now()): boolean {
    return this.overSince !== null && now - this.overSince > this.limits.stallMs;
  }

  /** Ends the stream with a last event; a reader that has stopped reading loses the socket instead. */
  end(event?: string, data?: unknown): void {
    if (!this.isOpen) return;
    if (event !== undefined && this.res.writableLength <= this.limits.bufferLimit) this.write(event, data ?? {});
    this.ended = true;
    if (this.overSince !== null) this.res.destroy();
    else this.res.end();
  }

  private writable(): boolean {
    if (!this.isOpen) return false;
    if (this.res.writableLength > this.limits.bufferLimit) {
      this.overSince ??= Date.now();
      return false;
    }
    this.overSince = null;
    if (this.dropped > 0) {
      const count = this.dropped;
      this.dropped = 0;
      this.write('dropped', { count });
    }
    return true;
  }

  private write(event: string, data: unknown): void {
    // JSON.stringify never emits a raw newline, so the data is always one `data:` line.
    this.res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }
}
