import { Injectable, ServiceUnavailableException, type OnModuleDestroy } from '@nestjs/common';
import type { Request, Response } from 'express';
import { EventBus } from '../../core/bus/event-bus.js';
import { feedEvent, isHousekeeping } from './feed-event.js';
import { InstanceDirectory, SUMMARY_INTERVAL_MS, type InstanceView } from './instance-directory.js';
import { LiveStream, type LiveStreamLimits } from './live-stream.js';

/** Streams open at once on one instance; past it `GET /admin/stream` is `503`. */
export const MAX_STREAMS = 16;

export const STREAM_LIMITS: LiveStreamLimits = { bufferLimit: 64 * 1024, stallMs: 30_000 };

/** An SSE comment this often keeps idle proxies from closing the stream. */
export const HEARTBEAT_MS = 15_000;

/** What the `connections` event carries: the counts of every live instance. */
export interface ConnectionCounts {
  total: number;
  by_protocol: Record<string, number>;
  by_instance: Record<string, number>;
  /** Opens and closes so far, summed over the instances: it moves whenever anyone arrives or leaves. */
  changes: number;
}

/**
 * The admin page's live streams. Each gets, as server-sent events: `hello` once; `instances`
 * every second; `connections` when the counts change or anyone connects or leaves; `publish`
 * for every bus message this
 * instance delivers (housekeeping topics left out); `dropped` after events were skipped for
 * a reader that fell behind; `shutdown` as the last event when the instance stops. The bus
 * tap and the timer exist only while a stream is open.
 */
@Injectable()
export class LiveStreams implements OnModuleDestroy {
  private readonly streams = new Set<LiveStream>();
  private seq = 0;
  private droppedCount = 0;
  private closing = false;
  private untap: (() => void) | null = null;
  private unwatch: (() => void) | null = null;
  private ticker: NodeJS.Timeout | null = null;
  private heartbeat: NodeJS.Timeout | null = null;

  constructor(
    private readonly bus: EventBus,
    private readonly directory: InstanceDirectory,
  ) {}

  /** Streams open now. */
  get open(): number {
    return this.streams.size;
  }

  /** Feed events dropped for readers that fell behind, since start-up. */
  get dropped(): number {
    return this.droppedCount;
  }

  /** Takes over the response as an event stream, or refuses with `503` (full, or shutting down). */
  attach(req: Request, res: Response): void {
    if (this.closing) throw unavailable('The gateway is shutting down');
    if (this.streams.size >= MAX_STREAMS) {
      throw unavailable(`Too many admin streams are open (at most ${MAX_STREAMS}); close one and retry`);
    }
    res.status(200);
    res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
    res.setHeader('Cache-Control', 'no-store');
    // nginx buffers proxied responses unless told not to, which would hold the events back.
    res.setHeader('X-Accel-Buffering', 'no');
    res.flushHeaders();
    req.socket.setNoDelay(true);
    const stream = new LiveStream(res, STREAM_LIMITS);
    this.streams.add(stream);
    res.on('close', () => this.detach(stream));
    if (this.streams.size === 1) this.start();
    const instances = this.directory.list();
    stream.snapshot('hello', {
      instance: instances[0]?.id,
      engine: instances[0]?.engine,
      version: instances[0]?.version,
      interval_ms: SUMMARY_INTERVAL_MS,
    });
    stream.snapshot('instances', { instances });
    this.sendCounts(stream, counts(instances));
  }

  onModuleDestroy(): void {
    // Before the HTTP server closes: an open stream would otherwise hold it open until the
    // adapter cuts every connection at the end of the shutdown.
    this.closing = true;
    for (const stream of [...this.streams]) {
      stream.end('shutdown', { reason: 'The gateway is shutting down' });
      this.detach(stream);
    }
  }

  private start(): void {
    this.unwatch = this.directory.watch();
    this.untap = this.bus.tap((message, local) => {
      if (isHousekeeping(message.topic)) return;
      const event = feedEvent(message, local, ++this.seq);
      for (const stream of this.streams) if (!stream.feed('publish', event)) this.droppedCount++;
    });
    this.ticker = setInterval(() => this.tick(), SUMMARY_INTERVAL_MS);
    this.heartbeat = setInterval(() => {
      for (const stream of this.streams) stream.heartbeat();
    }, HEARTBEAT_MS);
    this.ticker.unref();
    this.heartbeat.unref();
  }

  private stop(): void {
    this.untap?.();
    this.unwatch?.();
    if (this.ticker) clearInterval(this.ticker);
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.untap = this.unwatch = this.ticker = this.heartbeat = null;
  }

  private detach(stream: LiveStream): void {
    if (!this.streams.delete(stream)) return;
    if (this.streams.size === 0) this.stop();
  }

  private tick(): void {
    const instances = this.directory.list();
    const summary = counts(instances);
    for (const stream of [...this.streams]) {
      if (stream.stalled()) {
        stream.end();
        this.detach(stream);
        continue;
      }
      stream.snapshot('instances', { instances });
      this.sendCounts(stream, summary);
    }
  }

  /** The counts, when they differ from what this stream was last sent (a backed-up stream catches up later). */
  private sendCounts(stream: LiveStream, summary: ConnectionCounts): void {
    const key = JSON.stringify(summary);
    if (key !== stream.countsSent && stream.snapshot('connections', summary)) stream.countsSent = key;
  }
}

function counts(instances: InstanceView[]): ConnectionCounts {
  const result: ConnectionCounts = { total: 0, by_protocol: {}, by_instance: {}, changes: 0 };
  for (const { id, connections } of instances) {
    result.total += connections.total;
    result.changes += connections.opened + connections.closed;
    result.by_instance[id] = connections.total;
    for (const [protocol, n] of Object.entries(connections.by_protocol)) {
      result.by_protocol[protocol] = (result.by_protocol[protocol] ?? 0) + n;
    }
  }
  return result;
}

function unavailable(message: string): ServiceUnavailableException {
  return new ServiceUnavailableException({ statusCode: 503, error: 'Service Unavailable', message });
}
