import type { Logger as Pino } from 'pino';
import { epochMs, LatencyHistogram } from '../metrics/latency-histogram.js';
import type { BusTopic, TargetKind } from './bus-topic.js';

export type { BusTopic, TargetKind } from './bus-topic.js';

/**
 * Who a bus message is for. Ids are protocol-scoped: the protocol that owns the
 * message's topic resolves them against its own clients.
 */
export type Target = ListedTarget<'user'> | ListedTarget<'channel'> | ListedTarget<'client'> | { readonly kind: 'all' };

export interface ListedTarget<K extends 'user' | 'channel' | 'client'> {
  readonly kind: K;
  readonly ids: readonly string[];
  /**
   * Set on one copy of a message that reached this instance as several (the Redis bus sends
   * a message naming several ids once per id, each on that id's channel): the connections
   * the earlier copies reached. Resolving the target skips them and adds the ones it
   * returns, so a connection named through two ids still gets the message once.
   */
  readonly seen?: Set<object>;
}

/** A message as it travels between instances: its topic's name, its target and its encoded bytes. */
export interface BusMessage {
  readonly topic: string;
  readonly target: Target;
  /** The topic's encoding of the message; for most topics the frame itself, so no instance re-serialises it. */
  readonly payload: Buffer;
}

/**
 * A subscriber. A message published with several ids may come from another instance as
 * several calls, one per id this instance has connections for, each with that part of the
 * target and the `seen` set that keeps a connection from getting it twice: each part then
 * keeps the order of its own id's messages.
 */
export type BusHandler<T> = (value: T, target: Target) => void;

/**
 * One of the copies of a message published with several ids: the part of the target it
 * stands for (with its `seen` set), and whether it is the first copy heard, which alone is
 * shown to the taps (with the whole target).
 */
export interface MessageCopy {
  readonly target: Target;
  readonly first: boolean;
}

/** Sees every message this instance delivers: `local` when it was published here. */
export type BusTap = (message: BusMessage, local: boolean) => void;

/** One topic on this instance: its definition, its subscribers and what went through it, for the metrics. */
export class TopicEntry {
  readonly handlers = new Set<BusHandler<unknown>>();
  published = 0;
  received = 0;
  receivedBytes = 0;
  /** From the publish (on whichever instance) to the end of this instance's writes. */
  readonly latency = new LatencyHistogram();

  constructor(
    readonly topic: string,
    readonly definition: BusTopic<unknown> | null,
  ) {}
}

export interface EventBusOptions {
  /** Receives the errors subscribers throw; without it they are dropped. */
  log?: Pino;
  /** Times every message from its publish to the end of its local delivery (the metrics' latency histogram). */
  timing?: boolean;
}

/** Where a message whose topic nobody here knows is counted. */
const OTHER_TOPIC = 'other';

/**
 * The event bus: a publish is delivered to this instance's subscribers at once and
 * to every other instance exactly once. Two drivers: memory (one process) and Redis.
 */
export abstract class EventBus {
  private readonly topics = new Map<string, TopicEntry>();
  private readonly other = new TopicEntry(OTHER_TOPIC, null);
  private readonly taps = new Set<BusTap>();
  private readonly handlerLog: Pino | undefined;
  protected readonly timing: boolean;
  private rejoinCount = 0;

  /** This process's id in the cluster. */
  abstract readonly instanceId: string;

  protected constructor(options: EventBusOptions = {}) {
    this.handlerLog = options.log;
    this.timing = options.timing === true;
  }

  /**
   * Delivers `value` locally (synchronously, before returning) and then to other instances.
   * Rejects with `EngineUnavailableError` when other instances could not be told; local
   * delivery has happened regardless.
   */
  publish<T>(topic: BusTopic<T>, target: Target, value: T): Promise<void> {
    const sentAt = this.timing ? epochMs() : 0;
    const entry = this.entry(topic);
    entry.published++;
    const message: BusMessage = { topic: topic.name, target, payload: topic.encode(value) };
    this.deliver(entry, value, message, sentAt, true);
    return this.send(message, sentAt, topic);
  }

  /** Tells the other instances (`sentAt`: when it was published, or 0 when not timed). */
  protected abstract send(message: BusMessage, sentAt: number, topic: BusTopic<unknown>): Promise<void>;

  private readonly rejoinListeners = new Set<() => void>();

  /**
   * Runs `listener` each time this instance hears the other instances again after a
   * gap (a Redis reconnect). Messages published during the gap are lost, as pub/sub
   * loses them, so a protocol re-checks here what a missed message could have changed:
   * revoked tokens and sessions above all. Never runs on the memory bus.
   */
  onRejoin(listener: () => void): () => void {
    this.rejoinListeners.add(listener);
    return () => this.rejoinListeners.delete(listener);
  }

  protected rejoined(): void {
    this.rejoinCount++;
    for (const listener of this.rejoinListeners) {
      try {
        listener();
      } catch (err) {
        this.handlerLog?.error({ err }, 'rejoin listener failed');
      }
    }
  }

  /** Runs `handler` for every message of `topic`, from this instance or any other. */
  subscribe<T>(topic: BusTopic<T>, handler: BusHandler<T>): () => void {
    const { handlers } = this.entry(topic);
    const untyped = handler as BusHandler<unknown>;
    handlers.add(untyped);
    return () => handlers.delete(untyped);
  }

  /**
   * This instance now has a connection of `protocol` that a message aimed at `kind`/`id`
   * reaches (for `all`, any connection of the protocol; `id` is then empty). The registry
   * says so as its indexes change, once per transition; the Redis bus subscribes to what
   * the routed topics publish there, and stops when `unwatch` says it is gone.
   */
  watch(_protocol: string, _kind: TargetKind, _id: string): void {}

  unwatch(_protocol: string, _kind: TargetKind, _id: string): void {}

  /**
   * Resolves once every `watch` made so far is in force: a message published anywhere from
   * then on reaches this instance. A protocol waits for it before it tells a client it is
   * ready (jac's connection event, Fates' `ready`, hatsu's READY, a Felix ACK). Null when
   * nothing is on its way (always so on the memory bus), so the caller can go on at once.
   */
  settled(): Promise<void> | null {
    return null;
  }

  /** Runs once per topic, the first time this instance publishes or subscribes to it. */
  protected topicAdded(_topic: BusTopic<unknown>): void {}

  /** Every topic this instance subscribed to or published on, with its counters. */
  topicStats(): Iterable<TopicEntry> {
    return [...this.topics.values(), this.other];
  }

  /** How many times this instance heard the others again after a gap. */
  get rejoins(): number {
    return this.rejoinCount;
  }

  /**
   * A message from another instance, `bytes` long on the wire, published at `sentAt`
   * (0: not timed). Topics nobody here knows are counted together, so another build's
   * traffic cannot grow the metrics' label set; bytes its topic cannot read are dropped.
   */
  protected received(message: BusMessage, bytes: number, sentAt: number, copy?: MessageCopy): void {
    const entry = this.topics.get(message.topic) ?? this.other;
    entry.received++;
    entry.receivedBytes += bytes;
    const tapped = copy === undefined || copy.first;
    if (!entry.definition) {
      if (tapped && this.taps.size > 0) this.runTaps(message, false);
      return;
    }
    const value = entry.definition.parse(message.payload);
    if (value === null) {
      this.handlerLog?.warn({ topic: message.topic }, 'dropped a malformed bus message');
      return;
    }
    this.deliver(entry, value, message, sentAt, false, copy?.target, tapped);
  }

  /**
   * Runs `tap` for every message of every topic this instance delivers, published here or
   * received from another instance, after its subscribers (the admin page's live feed). A
   * tap that throws is logged and skipped.
   */
  tap(tap: BusTap): () => void {
    this.taps.add(tap);
    return () => this.taps.delete(tap);
  }

  /**
   * Hands a message to this instance's subscribers of its topic. A subscriber that
   * throws is logged and skipped: it must not keep the message from the others, from
   * other instances (a publish dispatches before it sends), or crash the Redis reader.
   */
  private deliver(
    entry: TopicEntry,
    value: unknown,
    message: BusMessage,
    sentAt: number,
    local: boolean,
    target = message.target,
    tapped = true,
  ): void {
    for (const handler of entry.handlers) {
      try {
        handler(value, target);
      } catch (err) {
        this.handlerLog?.error({ err, topic: message.topic }, 'bus subscriber failed');
      }
    }
    if (sentAt > 0 && entry.handlers.size > 0) entry.latency.observe((epochMs() - sentAt) / 1000);
    if (tapped && this.taps.size > 0) this.runTaps(message, local);
  }

  private runTaps(message: BusMessage, local: boolean): void {
    for (const tap of this.taps) {
      try {
        tap(message, local);
      } catch (err) {
        this.handlerLog?.error({ err, topic: message.topic }, 'bus tap failed');
      }
    }
  }

  /** The topic's entry; a second, different definition under one name is a bug, refused at once. */
  private entry(topic: BusTopic<unknown>): TopicEntry {
    let entry = this.topics.get(topic.name);
    if (!entry) {
      entry = new TopicEntry(topic.name, topic);
      this.topics.set(topic.name, entry);
      this.topicAdded(topic);
    } else if (entry.definition !== topic) {
      throw new Error(`bus topic ${topic.name} is defined twice`);
    }
    return entry;
  }
}
