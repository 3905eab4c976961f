import type { BusMessage } from '../../core/bus/event-bus.js';

/** How much of a payload the feed shows. */
export const PAYLOAD_PREVIEW_BYTES = 200;

/** How many target ids the feed shows; a publish may name thousands. */
export const TARGET_PREVIEW_IDS = 20;

/** One published bus message as the admin page's feed shows it. */
export interface FeedEvent {
  /** Counts every message this instance delivered since start-up, so gaps show where events were dropped. */
  seq: number;
  /** ISO time at which this instance delivered it. */
  at: string;
  topic: string;
  target: { kind: string; ids?: string[]; count?: number };
  /** Payload size in bytes. */
  size: number;
  /** The first bytes: as text when they are text, else as hex. */
  preview: string;
  encoding: 'text' | 'hex';
  truncated: boolean;
  /** Published on this instance, or received from another one. */
  local: boolean;
}

/**
 * Housekeeping the feed leaves out: revocations and remote closes (`control`, `control.*`)
 * and the admin page's own instance summaries (`admin.*`), which would otherwise fill it
 * every second.
 */
export function isHousekeeping(topic: string): boolean {
  return topic === 'control' || topic.startsWith('control.') || topic.startsWith('admin.');
}

export function feedEvent(message: BusMessage, local: boolean, seq: number, now = new Date()): FeedEvent {
  const { payload, target } = message;
  const head = payload.subarray(0, PAYLOAD_PREVIEW_BYTES);
  const text = isText(head);
  return {
    seq,
    at: now.toISOString(),
    topic: message.topic,
    target:
      target.kind === 'all'
        ? { kind: 'all' }
        : { kind: target.kind, ids: target.ids.slice(0, TARGET_PREVIEW_IDS), count: target.ids.length },
    size: payload.length,
    // A cut in the middle of a UTF-8 sequence shows as one replacement character.
    preview: text ? head.toString('utf8') : head.toString('hex'),
    encoding: text ? 'text' : 'hex',
    truncated: payload.length > head.length,
    local,
  };
}

/** No control characters but tab, newline and carriage return: JSON frames, plain text. */
function isText(bytes: Buffer): boolean {
  for (const byte of bytes) {
    if (byte < 0x20 && byte !== 0x09 && byte !== 0x0a && byte !== 0x0d) return false;
    if (byte === 0x7f) return false;
  }
  return true;
}
