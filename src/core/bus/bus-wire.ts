import { encodeJson, isJsonObject } from '../json.js';
import type { BusMessage, Target } from './event-bus.js';

/**
 * The bus's Redis wire format: `[u32 header length][header JSON][payload bytes]`.
 * The payload travels as raw bytes, so a receiving instance writes it to its sockets
 * without parsing or re-serialising it.
 */
interface Header {
  o: string;
  t: string;
  k: Target['kind'];
  i?: readonly string[];
  /** When it was published (epoch ms, fractional), for the delivery-latency histogram; absent when not timed. */
  s?: number;
  /**
   * A message sent to several channels (one per id of its target) carries the publisher's
   * sequence number, so an instance that hears it on two of them delivers it once.
   */
  q?: number;
  /**
   * Written by the Redis bus's log as it publishes (never by `encodeBusMessage`): the log's
   * epoch (when it began, ms) and the frame's position in it.
   */
  e?: number;
  p?: number;
  /**
   * The publisher's count of its logged publishes: with the origin, which publish a position
   * holds, so an instance can tell a log rewritten by a failover from a repeat.
   */
  u?: number;
}

const KINDS: ReadonlySet<string> = new Set<Target['kind']>(['user', 'channel', 'client', 'all']);

export function encodeBusMessage(origin: string, message: BusMessage, sentAt = 0, sequence = 0, publish = 0): Buffer {
  const header: Header = { o: origin, t: message.topic, k: message.target.kind };
  if (message.target.kind !== 'all') header.i = message.target.ids;
  if (sentAt > 0) header.s = sentAt;
  if (sequence > 0) header.q = sequence;
  if (publish > 0) header.u = publish;
  const head = encodeJson(header);
  const prefix = Buffer.allocUnsafe(4);
  prefix.writeUInt32BE(head.length, 0);
  return Buffer.concat([prefix, head, message.payload]);
}

export interface DecodedBusMessage {
  origin: string;
  message: BusMessage;
  /** When it was published (epoch ms), or 0 when the publisher did not time it. */
  sentAt: number;
  /** The publisher's sequence number for a message sent to several channels, else 0. */
  sequence: number;
  /** Its place in its channel's log, when it went through one. */
  logged: { epoch: string; position: number; publish: string | null } | null;
}

/** The frame's origin and message, or null when the frame is not one `encodeBusMessage` wrote. */
export function decodeBusMessage(frame: Buffer): DecodedBusMessage | null {
  if (frame.length < 4) return null;
  const headLength = frame.readUInt32BE(0);
  if (frame.length < 4 + headLength) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(frame.subarray(4, 4 + headLength).toString('utf8'));
  } catch {
    return null;
  }
  const header = asHeader(parsed);
  if (!header) return null;
  const payload = frame.subarray(4 + headLength);
  const target: Target = header.k === 'all' ? { kind: 'all' } : { kind: header.k, ids: header.i ?? [] };
  return {
    origin: header.o,
    message: { topic: header.t, target, payload },
    sentAt: header.s ?? 0,
    sequence: header.q ?? 0,
    logged:
      header.e !== undefined && header.p !== undefined
        ? {
            epoch: String(header.e),
            position: header.p,
            publish: header.u === undefined ? null : `${header.o}:${header.u}`,
          }
        : null,
  };
}

// A frame from another build, or garbage on the channel, must not reach a subscriber
// as a message with a missing origin or an unknown target kind.
function asHeader(value: unknown): Header | null {
  if (!isJsonObject(value)) return null;
  const { o, t, k, i, s, q, e, p, u } = value;
  if (typeof o !== 'string' || typeof t !== 'string' || !isKind(k)) return null;
  const sentAt = typeof s === 'number' && Number.isFinite(s) && s > 0 ? { s } : {};
  const sequence = isCount(q) ? { q } : {};
  const logged = isCount(e) && isCount(p) ? { e, p, ...(isCount(u) ? { u } : {}) } : {};
  if (k === 'all') return { o, t, k, ...sentAt, ...sequence, ...logged };
  if (!Array.isArray(i) || !i.every((id): id is string => typeof id === 'string')) return null;
  return { o, t, k, i, ...sentAt, ...sequence, ...logged };
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value > 0;
}

function isKind(value: unknown): value is Target['kind'] {
  return typeof value === 'string' && KINDS.has(value);
}
