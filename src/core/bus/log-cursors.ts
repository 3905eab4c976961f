import type { LogRead } from './bus-log.js';

/** A frame with its place in its channel's log. */
export interface LoggedFrame<F> {
  readonly epoch: string;
  readonly position: number;
  /** Which publish it is (publisher and its count), when the publisher says. */
  readonly publish?: string | null;
  readonly frame: F;
}

export interface LogCursorsOptions<F> {
  /** Reads `channel`'s log from `position` on (in log `epoch`; the whole log when it is another). */
  read(channel: string, epoch: string, position: number): Promise<LogRead>;
  /** Decodes a frame read back from the log, or null when it is not one. */
  decode(frame: Buffer): LoggedFrame<F> | null;
  /** Hands a frame on, in its channel's order, once. */
  deliver(channel: string, frame: F): void;
  /** Frames known to be missing from `channel` and gone from the log too (too old, or trimmed). */
  unrepaired(channel: string, missed: number): void;
  /** Frames recovered from the log. */
  repaired(count: number): void;
  /** A read failed (Redis away): what was queued goes on, the gap counted as not repaired. */
  readFailed(channel: string, err: unknown): void;
  /** The log holds other publishes than this instance applied from `position` on (a failover to a replica that missed writes). */
  rewritten?(channel: string, position: number): void;
  /** Frames held per channel while its log is read; beyond it the log is read again. */
  readonly maxQueued: number;
  /** A read that has not answered by then counts as failed, so a channel is never held up for good. */
  readonly readTimeoutMs?: number;
}

interface Cursor<F> {
  epoch: string;
  position: number;
  /** The publishes applied at the last `REMEMBERED` positions. */
  readonly applied: Map<number, string>;
  /** While the log is being read: live frames wait here, in arrival order. */
  queue: LoggedFrame<F>[] | null;
  /** More live frames came while reading than the queue holds. */
  overflowed: boolean;
}

/** Reads of one channel's log in one repair, at most (the log is read on while frames keep coming). */
const MAX_READS = 16;

/** How long a read of the log may take before the repair goes on without it. */
const DEFAULT_READ_TIMEOUT_MS = 5000;

/** Positions per channel whose publishes are remembered, to recognise a rewritten log. */
const REMEMBERED = 64;

/** Channels whose logs are read at once after a reconnect. */
const CATCH_UP_CONCURRENCY = 32;

/**
 * Where this instance stands in each channel's log, and the repair of what it missed.
 *
 * Every logged frame carries its log's epoch and its position, which count up by one per
 * frame. A frame one past the last applied is applied; one at or before it is a duplicate
 * (a frame read back from the log and then heard live as well) and is dropped; one further
 * on reveals a gap: the frames between are read from the log and applied first, and frames
 * heard meanwhile wait behind them. A frame of another epoch begins a new log (Redis lost
 * the old one, or it expired while the channel was quiet): it is applied from its first
 * position. After a reconnect, `catchUp` reads every known channel's log from where it stood.
 * Each channel's frames are thus applied once each, in their log's order.
 */
export class LogCursors<F> {
  private readonly cursors = new Map<string, Cursor<F>>();

  constructor(private readonly options: LogCursorsOptions<F>) {}

  /** How many channels have a known position. */
  get size(): number {
    return this.cursors.size;
  }

  /** A frame heard live on `channel`. */
  heard(channel: string, logged: LoggedFrame<F>): void {
    const cursor = this.cursors.get(channel);
    if (!cursor) {
      // The first frame since subscribing: where this instance starts in the log.
      const applied = new Map<number, string>();
      if (logged.publish) applied.set(logged.position, logged.publish);
      this.cursors.set(channel, {
        epoch: logged.epoch,
        position: logged.position,
        applied,
        queue: null,
        overflowed: false,
      });
      this.options.deliver(channel, logged.frame);
      return;
    }
    if (cursor.queue) {
      if (cursor.queue.length < this.options.maxQueued) cursor.queue.push(logged);
      else cursor.overflowed = true;
      return;
    }
    this.rewindIfRewritten(channel, cursor, logged);
    if (this.isNext(cursor, logged) || this.isStale(cursor, logged)) {
      this.apply(channel, cursor, logged);
      return;
    }
    cursor.queue = [logged];
    this.repair(channel, cursor).catch((err: unknown) => this.options.readFailed(channel, err));
  }

  /** This instance no longer subscribes to `channel`: its position no longer means anything. */
  forget(channel: string): void {
    this.cursors.delete(channel);
  }

  /** Reads every known channel's log from where this instance stood (after its subscriptions came back). */
  async catchUp(): Promise<void> {
    const pending = [...this.cursors].filter(([, cursor]) => cursor.queue === null);
    const next = async (): Promise<void> => {
      for (let item = pending.pop(); item; item = pending.pop()) {
        const [channel, cursor] = item;
        if (cursor.queue !== null || this.cursors.get(channel) !== cursor) continue;
        cursor.queue = [];
        await this.repair(channel, cursor).catch((err: unknown) => this.options.readFailed(channel, err));
      }
    };
    await Promise.all(Array.from({ length: Math.min(CATCH_UP_CONCURRENCY, pending.length) }, next));
  }

  private async readWithin(channel: string, cursor: Cursor<F>): Promise<LogRead> {
    let timer: NodeJS.Timeout | undefined;
    const timeoutMs = this.options.readTimeoutMs ?? DEFAULT_READ_TIMEOUT_MS;
    try {
      return await Promise.race([
        this.options.read(channel, cursor.epoch, cursor.position + 1),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer in ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  private isNext(cursor: Cursor<F>, logged: LoggedFrame<F>): boolean {
    return logged.epoch === cursor.epoch ? logged.position === cursor.position + 1 : logged.position === 1;
  }

  /** Already applied: at or before the cursor in the same log. */
  private isStale(cursor: Cursor<F>, logged: LoggedFrame<F>): boolean {
    return logged.epoch === cursor.epoch && logged.position <= cursor.position;
  }

  /**
   * A position already applied that now holds another publish: the log was rewritten (a
   * replica that missed the last writes took over, and the positions were handed out again).
   * The cursor goes back to just before it, so what the log holds now is applied.
   */
  private rewindIfRewritten(channel: string, cursor: Cursor<F>, logged: LoggedFrame<F>): void {
    if (logged.epoch !== cursor.epoch || logged.position > cursor.position || !logged.publish) return;
    const applied = cursor.applied.get(logged.position);
    if (applied === undefined || applied === logged.publish) return;
    cursor.position = logged.position - 1;
    for (const position of [...cursor.applied.keys()]) if (position >= logged.position) cursor.applied.delete(position);
    this.options.rewritten?.(channel, logged.position);
  }

  /** Applies a frame in order: drops it when stale, counts what is missing before it. */
  private apply(channel: string, cursor: Cursor<F>, logged: LoggedFrame<F>): void {
    this.rewindIfRewritten(channel, cursor, logged);
    if (this.isStale(cursor, logged)) return;
    if (!this.isNext(cursor, logged)) {
      const missed = logged.epoch === cursor.epoch ? logged.position - cursor.position - 1 : logged.position - 1;
      this.options.unrepaired(channel, missed);
    }
    if (logged.epoch !== cursor.epoch) cursor.applied.clear();
    cursor.epoch = logged.epoch;
    cursor.position = logged.position;
    if (logged.publish) {
      cursor.applied.set(logged.position, logged.publish);
      if (cursor.applied.size > REMEMBERED) cursor.applied.delete(cursor.applied.keys().next().value as number);
    }
    this.options.deliver(channel, logged.frame);
  }

  /**
   * Reads the log past the cursor, applies it, then what was heard meanwhile. Whatever
   * happens, the channel is not left holding its frames.
   */
  private async repair(channel: string, cursor: Cursor<F>): Promise<void> {
    try {
      await this.readAndApply(channel, cursor);
    } finally {
      const queue = cursor.queue;
      cursor.queue = null;
      if (queue && this.cursors.get(channel) === cursor)
        for (const logged of queue) this.apply(channel, cursor, logged);
    }
  }

  private async readAndApply(channel: string, cursor: Cursor<F>): Promise<void> {
    for (let round = 1; ; round++) {
      cursor.overflowed = false;
      let read: LogRead;
      try {
        read = await this.readWithin(channel, cursor);
      } catch (err) {
        this.options.readFailed(channel, err);
        read = null;
      }
      // Forgotten meanwhile (unsubscribed): nothing of it is wanted any more.
      if (this.cursors.get(channel) !== cursor) return;
      const queue = cursor.queue ?? [];
      const heardLive = new Set(queue.map((logged) => `${logged.epoch}-${logged.position}`));
      let recovered = 0;
      let applied = 0;
      for (const frame of read?.frames ?? []) {
        const logged = this.options.decode(frame);
        if (!logged) continue;
        this.rewindIfRewritten(channel, cursor, logged);
        if (this.isStale(cursor, logged)) continue;
        this.apply(channel, cursor, logged);
        applied++;
        if (!heardLive.has(`${logged.epoch}-${logged.position}`)) recovered++;
      }
      if (recovered > 0) this.options.repaired(recovered);
      // A read stops at its count limit, and frames keep coming (each is in the log as well
      // as heard): read on from where it ended until a read brings nothing new. When some
      // frames heard could not be held, the log has them too.
      if (read !== null && round < MAX_READS && (applied > 0 || cursor.overflowed)) {
        if (cursor.overflowed) cursor.queue = [];
        continue;
      }
      cursor.queue = null;
      for (const logged of queue) this.apply(channel, cursor, logged);
      return;
    }
  }
}
