import type { Session } from '../../core/registry/session-table.js';
import type { HatsuEncoding, HatsuFrame } from './hatsu.codec.js';
import type { HatsuDeflate } from './hatsu-deflate.js';
import type { PresenceThrottle } from './hatsu-presence.js';

/**
 * `awaiting`: nothing received yet (the identify timer runs). `identifying`: the identify is
 * being checked against the store. `ready`: HELLO and READY sent. `closed`: ended or gone.
 */
export type HatsuState = 'awaiting' | 'identifying' | 'ready' | 'closed';

/**
 * One hatsu socket, from upgrade to close. (Its `sessionId` is the credential the client
 * identified with, which the protocol calls a session id; one session id may be in use by
 * several sockets.)
 */
export interface HatsuSession extends Session {
  /** The client's address, charged for failed identifies (the shared per-IP throttle). */
  readonly ip: string;
  state: HatsuState;
  /** The identify deadline, while awaiting. */
  timer: NodeJS.Timeout | null;
  /** Counted against `HATSU_MAX_SESSIONS` from the moment its identify is accepted for lookup. */
  counted: boolean;
  /** The client's own session id, echoed in READY's `s` and ACK's `_s`. */
  sessionId: string | null;
  userId: string | null;
  encoding: HatsuEncoding;
  presences: boolean;
  deflate: HatsuDeflate | null;
  /** Frames that arrived while identifying, handled after READY in order. */
  backlog: HatsuFrame[];
  guilds: Set<string>;
  /** Membership changes that arrived while identify was reading the store (guild -> joined). */
  delta: Map<string, boolean> | null;
  /** The session's own presences, at most `HATSU_PRESENCE_LIMIT` per window. */
  readonly presence: PresenceThrottle;
}
