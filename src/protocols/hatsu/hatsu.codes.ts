import { bytesTopic, jsonTopic, routedTo } from '../../core/bus/bus-topic.js';
import { isJsonObject } from '../../core/json.js';
import type { CloseSpec } from '../../core/registry/connection.js';

/** The protocol's name: in the catalog, the registry and the metrics. */
export const HATSU = 'hatsu';

/**
 * Every close hatsu sends, with the original's reasons word for word where it had one
 * (docs/protocols/hatsu.md "Close codes").
 */
export const HATSU_CLOSE = {
  /** Identify (or a later frame) that is not a JSON object. */
  invalidPayload: { code: 4002, reason: 'Invalid Payload Type' },
  /** Unknown, revoked or missing session id. */
  invalidAuthorization: { code: 4002, reason: 'Invalid authorization' },
  /** Nothing identified within `HATSU_IDENTIFY_TIMEOUT_MS`. */
  identifyTimeout: { code: 4002, reason: 'Identify timed out' },
  presencesNotBool: { code: 4001, reason: 'Presence has to be a bool.' },
  /** `HATSU_MAX_SESSIONS` sessions already on this process. */
  tooManySessions: { code: 4003, reason: 'Too much users on WebSocket' },
  invalidEncoding: { code: 4004, reason: 'Invalid encoding' },
  /** A client sent `DISPATCH`, `DISPATCH_TO`, `DISPATCH_TO_GUILD`...: only the server dispatches. */
  invalidDispatch: { code: 4004, reason: 'Invalid Dispatch Sent' },
  keepaliveTimeout: { code: 1011, reason: 'keepalive ping timeout' },
  /** The store (Redis) did not answer during identify; the client may retry. */
  unavailable: { code: 1013, reason: 'Try again later' },
  slowConsumer: { code: 1013, reason: 'Send buffer limit exceeded' },
  internal: { code: 1011, reason: 'Internal error' },
  /** `DELETE /admin/connections/:id`. */
  normal: { code: 1000, reason: 'Closed by server' },
} as const satisfies Record<string, CloseSpec>;

/** Events for sessions (admin dispatches), as each json session gets them. */
export const HATSU_EVENTS = bytesTopic(HATSU, routedTo(HATSU, ['channel', 'user', 'all']));

/** `PRESENCE_UPDATE`s: the same, for sessions that identified with `presences` not false. */
export const HATSU_PRESENCE = bytesTopic('hatsu.presence', routedTo(HATSU, ['channel', 'user', 'all']));

/** Who joined and who left a guild, so that every instance moves its live sessions in or out. */
export interface MembersChange {
  guild: string;
  add: readonly string[];
  remove: readonly string[];
}

export const HATSU_MEMBERS = jsonTopic<MembersChange>('hatsu.members', (value) => {
  if (!isJsonObject(value)) return null;
  const { guild, add, remove } = value;
  if (typeof guild !== 'string' || !isIdList(add) || !isIdList(remove)) return null;
  return { guild, add, remove };
});

function isIdList(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((id) => typeof id === 'string');
}
