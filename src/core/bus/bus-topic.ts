import { encodeJson } from '../json.js';

/**
 * One stream of the bus: its name on the wire and how its messages are written and read.
 * Every publisher and subscriber goes through a topic, so a message from another build or
 * garbage on the channel is refused by `parse` in one place instead of by each subscriber.
 * Topics are defined once, by the module that owns them (`<protocol>.codes.ts`, or the core).
 */
export interface BusTopic<T> {
  readonly name: string;
  /** Which instances a message must reach (the Redis bus sends it to those only). */
  readonly routing: TopicRouting;
  encode(value: T): Buffer;
  /** The message, or null when the bytes are not one of this topic's messages. */
  parse(payload: Buffer): T | null;
}

export type TargetKind = 'user' | 'channel' | 'client' | 'all';

/**
 * `broadcast`: every instance that subscribes to the topic gets every message (cluster
 * housekeeping: revocations, membership changes). `targets`: a message reaches only the
 * instances holding a connection of one of `protocols` that its target names (a user,
 * channel or client id in that protocol's registry, or any connection of it for `all`);
 * `kinds` are the target kinds the topic's publishers use.
 */
export type TopicRouting =
  | { readonly kind: 'broadcast' }
  | { readonly kind: 'targets'; readonly protocols: readonly string[]; readonly kinds: readonly TargetKind[] };

export const BROADCAST: TopicRouting = { kind: 'broadcast' };

/** `targets` routing: to the instances with connections of `protocols` that the target names. */
export function routedTo(protocols: string | readonly string[], kinds: readonly TargetKind[]): TopicRouting {
  return { kind: 'targets', protocols: typeof protocols === 'string' ? [protocols] : protocols, kinds };
}

const byteTopics = new Map<string, BusTopic<Buffer>>();

/**
 * A topic whose messages are opaque bytes, handed on exactly as published: for most topics
 * the frame the protocol's sockets get, encoded once by the publisher. One definition per
 * name, whoever asks for it (a second one with other routing is a bug, refused at once).
 */
export function bytesTopic(name: string, routing: TopicRouting = BROADCAST): BusTopic<Buffer> {
  let topic = byteTopics.get(name);
  if (!topic) {
    topic = { name, routing, encode: (value) => value, parse: (payload) => payload };
    byteTopics.set(name, topic);
  } else if (JSON.stringify(topic.routing) !== JSON.stringify(routing)) {
    throw new Error(`bus topic ${name} is defined twice, with different routing`);
  }
  return topic;
}

/**
 * A topic of JSON messages: `check` turns what `JSON.parse` read into the message, or null
 * when it is not one.
 */
export function jsonTopic<T>(
  name: string,
  check: (value: unknown) => T | null,
  routing: TopicRouting = BROADCAST,
): BusTopic<T> {
  return {
    name,
    routing,
    encode: (value) => encodeJson(value),
    parse: (payload) => {
      let value: unknown;
      try {
        value = JSON.parse(payload.toString('utf8'));
      } catch {
        return null;
      }
      return check(value);
    },
  };
}

/** A topic whose messages carry nothing but their target (a command such as "close these clients"). */
export function signalTopic(name: string, routing: TopicRouting = BROADCAST): BusTopic<true> {
  return {
    name,
    routing,
    encode: () => Buffer.alloc(0),
    parse: (payload) => (payload.length === 0 ? true : null),
  };
}
