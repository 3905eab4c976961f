import { randomBytes } from 'node:crypto';
import type { Logger as Pino } from 'pino';
import { EngineUnavailableError } from '../errors/engine-unavailable.error.js';
import type { RedisConnections } from '../engine/redis-connections.js';
import type { BusTopic, TargetKind } from './bus-topic.js';
import { RedisBusLog, type BusLogOptions } from './bus-log.js';
import { decodeBusMessage, encodeBusMessage, type DecodedBusMessage } from './bus-wire.js';
import { LogCursors } from './log-cursors.js';
import { EventBus, type BusMessage, type EventBusOptions, type Target } from './event-bus.js';

/** Channels per SUBSCRIBE when every subscription is issued again after a reconnect. */
const RESUBSCRIBE_BATCH = 1000;

/** How soon a failed resubscription is tried again while the subscriber stays connected. */
const RESUBSCRIBE_RETRY_MS = 250;

/**
 * Messages heard on several channels are recognised by publisher and sequence among this
 * many recent ones (each entry is dropped once its last expected copy came).
 */
const RECENT_COPIES = 10_000;

/** A message heard on several channels, while more of its copies are due. */
interface Copies {
  /** The connections its copies reached so far. */
  readonly seen: Set<object>;
  /** How many more copies this instance subscribes to. */
  left: number;
}

/** A frame as the bus received it: decoded, and its size on the wire. */
interface Heard {
  readonly decoded: DecodedBusMessage;
  readonly bytes: number;
}

export interface RedisEventBusOptions extends Omit<EventBusOptions, 'log'> {
  /** Keep every channel's messages in a log in Redis, so gaps are repaired; null: plain pub/sub. */
  busLog?: BusLogOptions | null;
}

/**
 * The Redis bus, routed by interest. A topic of `targets` routing has a channel per target
 * it can name (`bus:{<topic>:user:<id>}`, `...:channel:<id>}`, `...:client:<id>}`,
 * `...:all}`), and an instance subscribes to a channel exactly while it holds a connection
 * that the channel's messages reach: the registry tells it as its indexes change (`watch`).
 * A publish goes to the channel of each id it names, so an instance receives only what it
 * can deliver; one whose connections are elsewhere hears nothing of it. A `broadcast`
 * topic has one channel (`bus:{<topic>}`) that every instance using the topic subscribes
 * to. Subscription changes are batched per event-loop turn, so they follow joins and leaves,
 * never the number of messages. On a Cluster the same channels are sharded (`SSUBSCRIBE`,
 * `SPUBLISH`): each message stays on the shard that owns its channel's slot.
 *
 * A message naming several ids goes out once per id, on each id's channel. A receiver hands
 * each copy on with its own id only (and the connections earlier copies reached, which it
 * skips), so every id's messages keep their order even where its channel lives on another
 * shard than the others', and a connection named through two ids gets one copy.
 *
 * The publishing instance delivers to its own clients directly (so local delivery survives
 * a Redis outage) and ignores its own echo, which makes delivery exactly once per instance.
 *
 * With the log on (the default), each publish is appended to its channel's log and
 * published by one script, and carries its position: a receiver that sees a position jump,
 * or whose subscriptions come back after a drop, reads what it missed from the log and
 * delivers it in order before what it hears next (see `LogCursors`).
 */
export class RedisEventBus extends EventBus {
  readonly instanceId = `${process.pid}-${randomBytes(6).toString('hex')}`;
  private listening = false;
  /** Routed topics by the protocols they route to. */
  private readonly routedBy = new Map<string, BusTopic<unknown>[]>();
  /** What the registry watches: `protocol|kind|id`. */
  private readonly watched = new Set<string>();
  /** Every channel this instance wants, with how many watched keys (or broadcast topics) want it. */
  private readonly wanted = new Map<string, number>();
  private readonly toSubscribe = new Set<string>();
  private readonly toUnsubscribe = new Set<string>();
  private flushScheduled = false;
  /** Resolves when the batch of changes now being collected is in force. */
  private nextBatch: { promise: Promise<void>; resolve: () => void } | null = null;
  /** The batch being issued, until Redis has answered it. */
  private inFlight: Promise<void> | null = null;
  private sequence = 0;
  /** Publishes this instance has logged: what tells its frames apart in a log. */
  private logged = 0;
  private readonly copies = new Map<string, Copies>();
  private joinedBefore = false;
  private rejoinPending = false;
  private readonly busLog: RedisBusLog | null;
  private readonly cursors: LogCursors<Heard>;
  private repairedCount = 0;
  private unrepairedCount = 0;

  constructor(
    private readonly redis: RedisConnections,
    private readonly log: Pino,
    { busLog = null, ...options }: RedisEventBusOptions = {},
  ) {
    super({ ...options, log });
    this.busLog = busLog ? new RedisBusLog(redis, busLog) : null;
    const logReader = this.busLog;
    this.cursors = new LogCursors<Heard>({
      // Frames are logged only while the log is on; a reader is there whenever one comes.
      read: (channel, epoch, position) =>
        logReader ? logReader.read(channel, epoch, position) : Promise.resolve(null),
      decode: (frame) => {
        const decoded = decodeBusMessage(frame);
        return decoded?.logged ? { ...decoded.logged, frame: { decoded, bytes: frame.length } } : null;
      },
      deliver: (channel, heard) => this.handle(channel, heard),
      repaired: (count) => {
        this.repairedCount += count;
      },
      unrepaired: (channel, missed) => {
        this.unrepairedCount++;
        this.log.warn({ channel, missed }, 'bus gap not repaired: the missed messages are no longer in the log');
      },
      readFailed: (channel, err) => this.log.warn({ channel, err: String(err) }, 'bus log read failed'),
      rewritten: (channel, position) =>
        this.log.warn({ channel, position }, 'bus log rewritten from this position on (a failover lost writes)'),
      maxQueued: busLog?.maxLength ?? 10_000,
    });
    redis.onMessage((channel, frame) => this.receive(channel, frame));
  }

  /** Messages recovered from the log after a gap. */
  get repaired(): number {
    return this.repairedCount;
  }

  /** Gaps whose messages were no longer in the log (or could not be read). */
  get unrepaired(): number {
    return this.unrepairedCount;
  }

  start(): void {
    // Subscriptions do not survive their connection; until they are issued again this
    // instance would miss the other instances' messages, so it is not ready.
    this.redis.onSubscriberLost(() => {
      this.listening = false;
    });
    this.redis.onReady('subscriber', () => void this.resubscribe());
    // The two connections come back independently, and the re-checks a rejoin triggers read
    // the store through the command connection: a rejoin waits for it, or they would fail
    // and nothing would run them again.
    this.redis.onReady('command', () => this.flushRejoin());
  }

  /** True while the subscriptions are in force, i.e. other instances' messages arrive. */
  get isListening(): boolean {
    return this.listening;
  }

  /** Resolves once the bus listens, or after `timeoutMs` whether it does or not. */
  listeningWithin(timeoutMs: number): Promise<void> {
    if (this.listening) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, timeoutMs);
      const waiters = this.listenWaiters;
      function done(): void {
        clearTimeout(timer);
        waiters.delete(done);
        resolve();
      }
      waiters.add(done);
    });
  }

  private readonly listenWaiters = new Set<() => void>();

  /** How many channels this instance subscribes to now. */
  get channelCount(): number {
    return this.wanted.size;
  }

  override watch(protocol: string, kind: TargetKind, id: string): void {
    const key = watchKey(protocol, kind, id);
    if (this.watched.has(key)) return;
    this.watched.add(key);
    for (const topic of this.routedBy.get(protocol) ?? []) {
      if (routes(topic, kind)) this.want(this.channelOf(topic.name, kind, id));
    }
  }

  override unwatch(protocol: string, kind: TargetKind, id: string): void {
    const key = watchKey(protocol, kind, id);
    if (!this.watched.delete(key)) return;
    for (const topic of this.routedBy.get(protocol) ?? []) {
      if (routes(topic, kind)) this.unwant(this.channelOf(topic.name, kind, id));
    }
  }

  override settled(): Promise<void> | null {
    return this.nextBatch?.promise ?? this.inFlight;
  }

  protected override topicAdded(topic: BusTopic<unknown>): void {
    const { routing } = topic;
    if (routing.kind === 'broadcast') {
      this.want(this.redis.key(`bus:{${topic.name}}`));
      return;
    }
    for (const protocol of routing.protocols) {
      const list = this.routedBy.get(protocol) ?? [];
      list.push(topic);
      this.routedBy.set(protocol, list);
    }
    // Interest that came before the topic (a protocol defined later) counts too.
    for (const key of this.watched) {
      const [protocol, kind, id] = splitWatchKey(key);
      if (routing.protocols.includes(protocol) && routes(topic, kind)) {
        this.want(this.channelOf(topic.name, kind, id));
      }
    }
  }

  protected async send(message: BusMessage, sentAt: number, topic: BusTopic<unknown>): Promise<void> {
    const channels = this.channelsFor(topic, message.target);
    if (channels.length === 0) return;
    // Heard on several channels, one message must be recognised as one.
    const sequence = channels.length > 1 ? ++this.sequence : 0;
    const frame = encodeBusMessage(this.instanceId, message, sentAt, sequence, this.busLog ? ++this.logged : 0);
    const busLog = this.busLog;
    try {
      await Promise.all(
        channels.map((channel) => (busLog ? busLog.append(channel, frame) : this.redis.publish(channel, frame))),
      );
    } catch (err) {
      throw new EngineUnavailableError('publish', err);
    }
  }

  private channelsFor(topic: BusTopic<unknown>, target: Target): string[] {
    if (topic.routing.kind === 'broadcast') return [this.redis.key(`bus:{${topic.name}}`)];
    if (target.kind === 'all') return [this.channelOf(topic.name, 'all', '')];
    return [...new Set(target.ids)].map((id) => this.channelOf(topic.name, target.kind, id));
  }

  /** One channel per routed topic and target; the braces make it the channel's own hash slot. */
  private channelOf(topic: string, kind: TargetKind, id: string): string {
    return kind === 'all' ? this.redis.key(`bus:{${topic}:all}`) : this.redis.key(`bus:{${topic}:${kind}:${id}}`);
  }

  private want(channel: string): void {
    const count = (this.wanted.get(channel) ?? 0) + 1;
    this.wanted.set(channel, count);
    if (count > 1) return;
    if (!this.toUnsubscribe.delete(channel)) this.toSubscribe.add(channel);
    this.scheduleFlush();
  }

  private unwant(channel: string): void {
    const count = (this.wanted.get(channel) ?? 0) - 1;
    if (count > 0) {
      this.wanted.set(channel, count);
      return;
    }
    this.wanted.delete(channel);
    this.cursors.forget(channel);
    if (!this.toSubscribe.delete(channel)) this.toUnsubscribe.add(channel);
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (!this.nextBatch) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.nextBatch = { promise, resolve };
    }
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => this.flush());
  }

  /**
   * Issues the turn's changes. While the subscriber is away nothing is sent: the resubscribe
   * on its return issues every wanted channel, and the batch counts as done (its channels
   * are wanted, and in force as soon as Redis is back).
   */
  private flush(): void {
    this.flushScheduled = false;
    const batch = this.nextBatch;
    this.nextBatch = null;
    const subscribe = [...this.toSubscribe];
    const unsubscribe = [...this.toUnsubscribe];
    this.toSubscribe.clear();
    this.toUnsubscribe.clear();
    const done = this.redis.subscribed
      ? Promise.allSettled([this.redis.subscribe(subscribe), this.redis.unsubscribe(unsubscribe)]).then((results) => {
          for (const result of results) {
            if (result.status === 'rejected') {
              this.log.warn({ err: String(result.reason) }, 'bus subscription change failed; retried on reconnect');
            }
          }
        })
      : Promise.resolve();
    this.inFlight = done;
    void done.then(() => {
      if (this.inFlight === done) this.inFlight = null;
      batch?.resolve();
    });
  }

  /** Every wanted channel again, after the subscriber (re)connected; then the instance listens. */
  private async resubscribe(): Promise<void> {
    const channels = [...this.wanted.keys()];
    try {
      for (let i = 0; i < channels.length; i += RESUBSCRIBE_BATCH) {
        await this.redis.subscribe(channels.slice(i, i + RESUBSCRIBE_BATCH));
      }
    } catch (err) {
      // Still connected: try again shortly (a cluster still finding its slots); else the
      // next reconnect does.
      this.log.warn({ err: String(err) }, 'bus subscribe failed; retried');
      if (this.redis.subscribed) setTimeout(() => void this.resubscribe(), RESUBSCRIBE_RETRY_MS).unref();
      return;
    }
    this.listening = true;
    for (const waiter of [...this.listenWaiters]) waiter();
    if (this.joinedBefore) this.rejoinPending = true;
    this.joinedBefore = true;
    this.flushRejoin();
  }

  /**
   * After a gap, once commands go through again: what the logs hold since this instance's
   * positions is delivered, and the protocols re-check what a lost message could have
   * changed (nothing is lost while the log holds it, but a gap can be older than the log).
   */
  private flushRejoin(): void {
    if (!this.rejoinPending || !this.redis.commandUp) return;
    this.rejoinPending = false;
    void this.cursors.catchUp();
    this.rejoined();
  }

  private receive(channel: string, frame: Buffer): void {
    const decoded = decodeBusMessage(frame);
    if (!decoded) {
      this.log.warn('dropped a malformed bus frame');
      return;
    }
    const heard = { decoded, bytes: frame.length };
    // Own frames too: they hold their places in the log.
    if (decoded.logged) this.cursors.heard(channel, { ...decoded.logged, frame: heard });
    else this.handle(channel, heard);
  }

  /** A frame in its channel's order: delivered unless it is this instance's own echo. */
  private handle(channel: string, { decoded, bytes }: Heard): void {
    if (decoded.origin === this.instanceId) return;
    const sentAt = this.timing ? decoded.sentAt : 0;
    const { message } = decoded;
    if (decoded.sequence === 0 || message.target.kind === 'all') {
      this.received(message, bytes, sentAt);
      return;
    }
    const id = this.idOf(channel, message.topic, message.target.kind);
    if (id === null || !message.target.ids.includes(id)) {
      this.log.warn({ topic: message.topic }, 'dropped a bus copy heard on a channel it does not name');
      return;
    }
    const key = `${decoded.origin}:${decoded.sequence}`;
    let copies = this.copies.get(key);
    const first = copies === undefined;
    if (!copies) {
      copies = { seen: new Set(), left: this.expectedCopies(message.topic, message.target.kind, message.target.ids) };
      this.copies.set(key, copies);
      if (this.copies.size > RECENT_COPIES) {
        const oldest = this.copies.keys().next().value;
        if (oldest !== undefined) this.copies.delete(oldest);
      }
    }
    if (--copies.left <= 0) this.copies.delete(key);
    const target = { kind: message.target.kind, ids: [id], seen: copies.seen };
    this.received(message, bytes, sentAt, { target, first });
  }

  /** The id a copy stands for, from the channel it came on. */
  private idOf(channel: string, topic: string, kind: TargetKind): string | null {
    const head = this.redis.key(`bus:{${topic}:${kind}:`);
    return channel.startsWith(head) && channel.endsWith('}') ? channel.slice(head.length, -1) : null;
  }

  /** How many copies of a message naming `ids` this instance hears: one per id it subscribes to. */
  private expectedCopies(topic: string, kind: TargetKind, ids: readonly string[]): number {
    let count = 0;
    for (const id of new Set(ids)) if (this.wanted.has(this.channelOf(topic, kind, id))) count++;
    return count;
  }
}

function watchKey(protocol: string, kind: TargetKind, id: string): string {
  return `${protocol}\u0000${kind}\u0000${id}`;
}

function splitWatchKey(key: string): [string, TargetKind, string] {
  const [protocol, kind, ...rest] = key.split('\u0000');
  return [protocol as string, kind as TargetKind, rest.join('\u0000')];
}

function routes(topic: BusTopic<unknown>, kind: TargetKind): boolean {
  return topic.routing.kind === 'targets' && topic.routing.kinds.includes(kind);
}
