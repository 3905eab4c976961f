import { bytesTopic, routedTo } from '../../core/bus/bus-topic.js';
import type { CloseSpec } from '../../core/registry/connection.js';

/**
 * The two generations of the Fates socket (docs/protocols/fates.md): `v2` (`/api/ws`) sends
 * events bare and only knows bots; `flamepaw` wraps them in `{"chan", "code": "event", ...}`,
 * lets `bot` choose bot or server, and sends a `ping` control payload with every WebSocket ping.
 */
export type FatesEra = 'v2' | 'flamepaw';

export const FATES_ERAS: readonly FatesEra[] = ['v2', 'flamepaw'];

/** Registry and catalog names, one per era (one Nest gateway per path set). */
export const FATES_PROTOCOL: Record<FatesEra, string> = {
  v2: 'fates-v2',
  flamepaw: 'fates-flamepaw',
};

/** Both eras' names: a bot's connections may be of either. */
export const FATES_PROTOCOLS: readonly string[] = FATES_ERAS.map((era) => FATES_PROTOCOL[era]);

export const FATES_PATHS: Record<FatesEra, readonly string[]> = {
  v2: ['/api/ws'],
  flamepaw: ['/flamepaw/ws', '/api/flamepaw/ws', '/api/dragon/ws'],
};

/**
 * Live events on every instance, to the channel of their bot, server or `global`. The one bus
 * topic whose messages are not frames: the two eras frame one event differently, so it
 * carries the event's JSON once, and each instance frames it once per era.
 */
export const FATES_EVENTS = bytesTopic('fates', routedTo(FATES_PROTOCOLS, ['channel']));

/** The channel every Fates connection receives besides its own bot/server channel. */
export const GLOBAL_CHANNEL = 'global';

/** The `code` of a control payload. `ping` is flamepaw only. */
export type ControlCode =
  'identity' | 'ready' | 'invalid_payload' | 'invalid_auth' | 'ratelimited' | 'done_prior' | 'ping';

/** Frames the gorilla server read were capped at 4096 bytes; bigger ones close 1009. */
export const FATES_MAX_PAYLOAD = 4096;

/** Identify costs this much of the rate budget; every later client message costs 1. */
export const IDENTIFY_COST = 2;

/** `requests_remaining` before a successful identify, as the original always sent. */
export const NOT_IDENTIFIED = -1;

/** Close codes and texts of the original (types.go, apidocs "WSCloseCode"). */
export const FATES_CLOSE = {
  invalidConnection: { code: 4000, reason: 'Invalid connection, try again' },
  invalidAuth: { code: 4004, reason: 'Invalid authentication, try again' },
  ratelimited: { code: 4012, reason: 'Ratelimited' },
  internal: { code: 4500, reason: 'Internal Server Error, try reconnecting?' },
  /** `DELETE /admin/connections/:id`: the original had no such path; a plain normal close. */
  normal: { code: 1000, reason: 'Closed by server' },
  slowConsumer: { code: 1013, reason: 'Send buffer limit exceeded' },
} as const satisfies Record<string, CloseSpec>;

const IDENTITY_V2 =
  'Send Bot ID and API Token as id and token keys in json format. Set send_all to true if you want all events to be ' +
  'sent during startup but this may cause disconnects, more memory usage, more ratelimits and instability. Set ' +
  'send_none to true to not send any events at all after sending prior ones if send_all is set to true';

/** The `detail` texts, exactly as the original sent them where they leak nothing. */
export const FATES_DETAIL = {
  identity: {
    v2: IDENTITY_V2,
    flamepaw: `${IDENTITY_V2}. Set bot to true for bot and false for server`,
  } satisfies Record<FatesEra, string>,
  ready: (used: number): string => `Waiting for messages with ${used} already made`,
  donePrior: 'Done sending all prior messages',
  ratelimited: (used: number): string => `Past max requests that can be sent (${used})`,
  /** pgx's text for a lookup that found no row: the same for an unknown id and a wrong token. */
  invalidAuth: 'no rows in result set',
  /** Not the original's: the address used up AUTH_FAILURE_LIMIT; no token was looked at. */
  throttled: 'too many failed authentications from this address, try again later',
  ping: '',
} as const;

/**
 * Event types (`m.e`), from the original's `types.go` / apidocs "APIEvents". The gateway
 * does not interpret them; the table is documentation and test vocabulary.
 */
export const FATES_EVENT_TYPES: Readonly<Record<number, string>> = {
  0: 'bot_vote',
  1: 'bot_add',
  2: 'bot_edit',
  3: 'bot_delete',
  4: 'bot_claim',
  5: 'bot_approve',
  6: 'bot_deny',
  7: 'bot_ban',
  8: 'bot_unban',
  9: 'bot_requeue',
  10: 'bot_certify',
  11: 'bot_uncertify',
  12: 'bot_transfer',
  13: 'bot_hide',
  14: 'bot_archive',
  15: 'bot_unverify',
  16: 'bot_view',
  17: 'bot_invite',
  18: 'bot_unclaim',
  19: 'bot_root_update',
  20: 'bot_vote_reset',
  21: 'bot_vote_reset_all',
  22: 'bot_lock',
  23: 'bot_unlock',
  30: 'review_vote',
  31: 'review_add',
  32: 'review_edit',
  33: 'review_delete',
  40: 'resource_add',
  41: 'resource_delete',
  50: 'command_add',
  51: 'command_delete',
  70: 'server_view',
  71: 'server_vote',
  72: 'server_invite',
  80: 'staff_lock',
  81: 'staff_unlock',
};
