import { encodeJson, isJsonObject, type JsonObject } from '../../core/json.js';
import { jsonDeeperThan } from '../../core/ws/json-depth.js';
import type { RoutedMessage, WsCodec } from '../../core/ws/ws-protocol.js';

/**
 * hatsu's wire format as pure functions (docs/protocols/hatsu.md). Which
 * parser applies to a frame depends on the connection's state (the first frame is the
 * identify, later ones are events), so the codec only turns bytes into JSON and the
 * service picks `parseIdentify` or `parseClientEvent`.
 */

export type HatsuEncoding = 'json' | 'zlib';

/** Every inbound frame reaches the gateway as this one event. */
export const HATSU_FRAME = 'frame';

export type HatsuFrame = { kind: 'json'; value: unknown } | { kind: 'invalid' };

/**
 * The identify's fields; `null` marks a field that is present but wrong. The service
 * checks them in the original's order (payload, capacity, encoding, session, presences).
 */
export interface IdentifyFields {
  sessionId: string | null;
  encoding: HatsuEncoding | null;
  presences: boolean | null;
}

export interface PresenceEmbed {
  name: string | null;
  description: string | null;
  banner_url: string | null;
  text: { top: string | null; bottom: string | null };
}

/** `PRESENCE_UPDATE`'s `d`, as the original re-shaped the client's `PRESENCE`. */
export interface HatsuPresence {
  type: 1 | 2 | 3 | 4;
  description: string | null;
  emoji: string | number | null;
  embed: PresenceEmbed | null;
}

/** A client message after identify, by what the gateway does with it. */
export type HatsuClientEvent =
  | { kind: 'heartbeat'; s: unknown }
  | { kind: 'presence'; presence: HatsuPresence }
  | { kind: 'dispatch' }
  | { kind: 'ignored' }
  | { kind: 'invalid' };

/** Longest session id looked up; anything longer cannot be one and is refused unread. */
export const MAX_SESSION_ID_LENGTH = 512;
/** Longest presence string; presences fan out to many sessions, so they stay small. */
export const MAX_PRESENCE_TEXT = 1024;

/** The original's HELLO text, double dash included (string concatenation in the original). */
export const HELLO_INFO =
  'Sent once we have verified your session_id, the data given will be null. please wait for the READY event before continuing--with any requests.';

/**
 * Client frames are JSON. Binary frames are read as UTF-8 JSON too: the original's
 * `json.loads` accepted both. JSON nested deeper than `MAX_JSON_DEPTH` is invalid as well
 * (a `HEARTBEAT` echoes its `s`, and serialising that recurses; `json.loads` stopped near
 * 1000 levels).
 */
export function parseHatsuFrame(data: Buffer): HatsuFrame {
  let value: unknown;
  try {
    value = JSON.parse(data.toString('utf8'));
  } catch {
    return { kind: 'invalid' };
  }
  return jsonDeeperThan(value) ? { kind: 'invalid' } : { kind: 'json', value };
}

/** The first client message; `null` when it is not a JSON object (close 4002 "Invalid Payload Type"). */
export function parseIdentify(value: unknown): IdentifyFields | null {
  if (!isJsonObject(value)) return null;
  const sessionId = value['session_id'];
  const encoding = value['encoding'] === undefined ? 'json' : value['encoding'];
  const presences = value['presences'] === undefined ? true : value['presences'];
  return {
    sessionId:
      typeof sessionId === 'string' && sessionId.length > 0 && sessionId.length <= MAX_SESSION_ID_LENGTH
        ? sessionId
        : null,
    encoding: encoding === 'json' || encoding === 'zlib' ? encoding : null,
    presences: typeof presences === 'boolean' ? presences : null,
  };
}

function text(value: unknown): string | null | undefined {
  if (value === undefined || value === null) return null;
  if (typeof value === 'string' && value.length <= MAX_PRESENCE_TEXT) return value;
  return undefined;
}

/**
 * A client `PRESENCE`; `null` (ignored, as the original ignored a bad `type`) when
 * `type` is not 1 to 4 or a field has the wrong type.
 */
export function parsePresence(body: JsonObject): HatsuPresence | null {
  const type = body['type'];
  if (type !== 1 && type !== 2 && type !== 3 && type !== 4) return null;
  const description = text(body['description']);
  const emojiValue = body['emoji'];
  let emoji: string | number | null | undefined;
  if (emojiValue === undefined || emojiValue === null) emoji = null;
  else if (typeof emojiValue === 'number' && Number.isFinite(emojiValue)) emoji = emojiValue;
  else if (typeof emojiValue === 'string' && emojiValue.length <= MAX_PRESENCE_TEXT) emoji = emojiValue;
  else emoji = undefined;
  if (description === undefined || emoji === undefined) return null;
  const rawEmbed = body['embed'];
  if (rawEmbed === undefined || rawEmbed === null) return { type, description, emoji, embed: null };
  if (!isJsonObject(rawEmbed)) return null;
  const fields = ['name', 'description', 'banner_url', 'top_text', 'bottom_text'].map((k) => text(rawEmbed[k]));
  if (fields.some((f) => f === undefined)) return null;
  const [name, embedDescription, bannerUrl, top, bottom] = fields as (string | null)[];
  return {
    type,
    description,
    emoji,
    embed: {
      name: name ?? null,
      description: embedDescription ?? null,
      banner_url: bannerUrl ?? null,
      text: { top: top ?? null, bottom: bottom ?? null },
    },
  };
}

/** A client message after identify. */
export function parseClientEvent(value: unknown): HatsuClientEvent {
  if (!isJsonObject(value)) return { kind: 'invalid' };
  const t = value['t'];
  if (typeof t !== 'string') return { kind: 'ignored' };
  if (t === 'HEARTBEAT') return { kind: 'heartbeat', s: value['s'] ?? null };
  if (t === 'PRESENCE') {
    const presence = parsePresence(value);
    return presence ? { kind: 'presence', presence } : { kind: 'ignored' };
  }
  // DISPATCH, DISPATCH_TO, DISPATCH_TO_GUILD were the original's internal-session
  // messages; here they are the admin API, and a client sending one is refused.
  if (t.startsWith('DISPATCH')) return { kind: 'dispatch' };
  return { kind: 'ignored' };
}

// ---- server frames ------------------------------------------------------------------

/** Compact JSON, serialised once per message whatever the number of recipients. */
export function encodeHatsu(message: unknown): Buffer {
  return encodeJson(message);
}

export function helloFrame(s: string): Buffer {
  return encodeHatsu({ t: 'HELLO', s, d: null, i: HELLO_INFO });
}

/** `d` is the user object itself (the original double-encoded it as a JSON string). */
export function readyFrame(sessionId: string, user: JsonObject): Buffer {
  return encodeHatsu({ t: 'READY', s: sessionId, d: user, i: null });
}

export function guildInitFrame(s: string, guild: JsonObject): Buffer {
  return encodeHatsu({ t: 'GUILD_INIT', s, d: guild, i: '' });
}

export function ackFrame(sessionId: string, s: unknown): Buffer {
  return encodeHatsu({ t: 'ACK', _s: sessionId, s, d: null });
}

export function eventFrame(t: string, d: unknown): Buffer {
  return encodeHatsu({ t, d: d ?? null });
}

/** `NOTIFICATION` carries `type` and `excerpt` at top level and no `d`. */
export function notificationFrame(type: string, excerpt: JsonObject): Buffer {
  return encodeHatsu({ t: 'NOTIFICATION', type, excerpt });
}

/** The user id as `id` (the document) and `_id` (what the original sent). */
export function presenceUpdateFrame(userId: string, d: unknown): Buffer {
  return encodeHatsu({ t: 'PRESENCE_UPDATE', id: userId, _id: userId, d: d ?? null });
}

export const hatsuCodec: WsCodec = {
  decode(data: Buffer): RoutedMessage {
    return { event: HATSU_FRAME, data: parseHatsuFrame(data) };
  },
  // Handlers reply through the session (which may compress), never by returning.
  encode: encodeHatsu,
};
