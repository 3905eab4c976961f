import { encodeJson } from '../json.js';

/**
 * One stream of the bus: its name on the wire and how its messages are written and read.
 * Every publisher and subscriber goes through a topic, so a message from another build or
 * garbage on the channel is refused by `parse` in one place instead of by each subscriber.
 * Topics are defined once, by the module that owns them (`<protocol>.codes.ts`, or the core).
 */
export interface BusTopic<T> {
  readonly name: string;
  encode(value: T): Buffer;
  /** The message, or null when the bytes are not one of this topic's messages. */
  parse(payload: Buffer): T | null;
}

const byteTopics = new Map<string, BusTopic<Buffer>>();

/**
 * A topic whose messages are opaque bytes, handed on exactly as published: for most topics
 * the frame the protocol's sockets get, encoded once by the publisher. One definition per
 * name, whoever asks for it.
 */
export function bytesTopic(name: string): BusTopic<Buffer> {
  let topic = byteTopics.get(name);
  if (!topic) {
    topic = { name, encode: (value) => value, parse: (payload) => payload };
    byteTopics.set(name, topic);
  }
  return topic;
}

/**
 * A topic of JSON messages: `check` turns what `JSON.parse` read into the message, or null
 * when it is not one.
 */
export function jsonTopic<T>(name: string, check: (value: unknown) => T | null): BusTopic<T> {
  return {
    name,
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
export function signalTopic(name: string): BusTopic<true> {
  return {
    name,
    encode: () => Buffer.alloc(0),
    parse: (payload) => (payload.length === 0 ? true : null),
  };
}
