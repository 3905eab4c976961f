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
}

export function encodeBusMessage(origin: string, message: BusMessage): Buffer {
  const header: Header = { o: origin, t: message.topic, k: message.target.kind };
  if (message.target.kind !== 'all') header.i = message.target.ids;
  const head = Buffer.from(JSON.stringify(header));
  const prefix = Buffer.allocUnsafe(4);
  prefix.writeUInt32BE(head.length, 0);
  return Buffer.concat([prefix, head, message.payload]);
}

export function decodeBusMessage(frame: Buffer): { origin: string; message: BusMessage } | null {
  if (frame.length < 4) return null;
  const headLength = frame.readUInt32BE(0);
  if (frame.length < 4 + headLength) return null;
  let header: Header;
  try {
    header = JSON.parse(frame.subarray(4, 4 + headLength).toString('utf8')) as Header;
  } catch {
    return null;
  }
  const payload = frame.subarray(4 + headLength);
  const target: Target = header.k === 'all' ? { kind: 'all' } : { kind: header.k, ids: header.i ?? [] };
  return { origin: header.o, message: { topic: header.t, target, payload } };
}
