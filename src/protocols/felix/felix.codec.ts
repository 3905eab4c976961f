import { SNOWFLAKE } from '../../core/http/snowflake.pipe.js';
import { encodeJson, isJsonObject } from '../../core/json.js';
import type { RoutedMessage, WsCodec } from '../../core/ws/ws-protocol.js';

/** Client → server codes (the Felix document's "Requesting / sending data"). */
export const CLIENT_CODE = { heartbeat: 20001, listenersUpdate: 20002 } as const;

/** Server → client codes and the `name` each carries (the original sent `name`; the document omits it). */
export const SERVER_CODE = { heartbeatAck: 10001, gdbUpdate: 10002, udbUpdate: 10003 } as const;

/** The most ids a 20002 may list per kind; a longer list is ignored like any bad shape (docs/protocols/felix.md). */
export const MAX_LISTENED_IDS = 1000;

/**
 * Largest inbound frame: a 20002 at its bounds (2 × 1000 twenty-digit ids) is under 50 KiB,
 * so 64 KiB leaves room without letting a client park a megabyte per frame.
 */
export const FELIX_MAX_PAYLOAD = 64 * 1024;

/** Why a frame was ignored. The document says such frames "will not be processed", so nothing is answered. */
export type IgnoredReason =
  | 'binary-frame'
  | 'invalid-json'
  | 'not-an-object'
  | 'no-code'
  | 'unknown-code'
  | 'bad-listeners'
  | 'too-many-listeners';

export const IGNORED_REASONS: readonly IgnoredReason[] = [
  'binary-frame',
  'invalid-json',
  'not-an-object',
  'no-code',
  'unknown-code',
  'bad-listeners',
  'too-many-listeners',
];

/** A client frame, decoded. */
export type FelixInbound =
  | { kind: 'heartbeat' }
  | { kind: 'listeners'; users: string[]; guilds: string[] }
  | { kind: 'ignored'; reason: IgnoredReason };

/** The routed event name of each inbound kind (what the gateway's `@SubscribeMessage` handlers bind to). */
export const FELIX_EVENT = {
  heartbeat: 'heartbeat',
  listeners: 'listeners',
  ignored: 'ignored',
} as const satisfies Record<FelixInbound['kind'], string>;

export interface HeartbeatAckData {
  receivedAt: number;
  shards: Record<string, unknown>[];
  guildsCount: number;
  memoryUsage: number;
  uptime: number;
}

export type FelixServerMessage =
  | { code: typeof SERVER_CODE.heartbeatAck; name: 'Heartbeat ACK'; data: HeartbeatAckData }
  | { code: typeof SERVER_CODE.gdbUpdate; name: 'GDB Update'; data: { guildID: string; guildData: unknown } }
  | { code: typeof SERVER_CODE.udbUpdate; name: 'UDB Update'; data: { userID: string; userData: unknown } };

/** A listen list: an array of at most `MAX_LISTENED_IDS` snowflake strings, deduplicated. */
function idList(value: unknown): string[] | IgnoredReason {
  if (!Array.isArray(value)) return 'bad-listeners';
  if (value.length > MAX_LISTENED_IDS) return 'too-many-listeners';
  for (const id of value) if (typeof id !== 'string' || !SNOWFLAKE.test(id)) return 'bad-listeners';
  return [...new Set(value as string[])];
}

/** Validates one parsed client message, as the original's `switch` on a numeric `code` did. */
export function validateFelixMessage(body: unknown): FelixInbound {
  if (!isJsonObject(body)) return { kind: 'ignored', reason: 'not-an-object' };
  const code = body['code'];
  // The original skipped any falsy code (`if (!msg.code) return`), 0 included.
  if (code === undefined || code === null || code === 0 || code === false || code === '') {
    return { kind: 'ignored', reason: 'no-code' };
  }
  // Strict equality in the original's switch: "20001" (a string) is an unknown code.
  switch (code) {
    case CLIENT_CODE.heartbeat:
      return { kind: 'heartbeat' };
    case CLIENT_CODE.listenersUpdate: {
      const data = body['data'];
      if (!isJsonObject(data)) return { kind: 'ignored', reason: 'bad-listeners' };
      const users = idList(data['users']);
      if (typeof users === 'string') return { kind: 'ignored', reason: users };
      const guilds = idList(data['guilds']);
      if (typeof guilds === 'string') return { kind: 'ignored', reason: guilds };
      return { kind: 'listeners', users, guilds };
    }
    default:
      return { kind: 'ignored', reason: 'unknown-code' };
  }
}

/** Parses a raw frame: JSON text only; binary frames are ignored. */
export function parseFelixFrame(data: Buffer, isBinary: boolean): FelixInbound {
  if (isBinary) return { kind: 'ignored', reason: 'binary-frame' };
  let body: unknown;
  try {
    body = JSON.parse(data.toString('utf8'));
  } catch {
    return { kind: 'ignored', reason: 'invalid-json' };
  }
  return validateFelixMessage(body);
}

export function heartbeatAck(data: HeartbeatAckData): FelixServerMessage {
  return { code: SERVER_CODE.heartbeatAck, name: 'Heartbeat ACK', data };
}

export function gdbUpdate(guildID: string, guildData: unknown): FelixServerMessage {
  return { code: SERVER_CODE.gdbUpdate, name: 'GDB Update', data: { guildID, guildData } };
}

export function udbUpdate(userID: string, userData: unknown): FelixServerMessage {
  return { code: SERVER_CODE.udbUpdate, name: 'UDB Update', data: { userID, userData } };
}

/** Every server message is one compact JSON text frame `{"code","name","data"}`, as the original's `JSON.stringify`. */
export function encodeFelix(message: FelixServerMessage): Buffer {
  return encodeJson(message);
}

export const felixCodec: WsCodec = {
  decode(data: Buffer, isBinary: boolean): RoutedMessage {
    const message = parseFelixFrame(data, isBinary);
    return { event: FELIX_EVENT[message.kind], data: message };
  },
  encode: (message) => encodeFelix(message as FelixServerMessage),
};
