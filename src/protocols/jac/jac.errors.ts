import { MAX_JSON_DEPTH } from '../../core/ws/json-depth.js';

/** One problem with a client message, in the shape of the original's pydantic errors (docs/protocols/jac.md). */
export interface JacErrorEntry {
  loc: (string | number)[];
  msg: string;
}

/** The reply for every bad message: `{"error": [...]}`. The socket stays open. */
export interface JacErrorReply {
  error: JacErrorEntry[];
}

/**
 * Thrown by jac handlers and guards; `JacExceptionFilter` turns it into the
 * `{"error": [...]}` reply. Anything else thrown becomes a generic entry, never a trace.
 */
export class JacException extends Error {
  constructor(readonly entries: JacErrorEntry[]) {
    super(entries.map((e) => e.msg).join('; '));
    this.name = 'JacException';
  }
}

/**
 * The most entries one error reply carries, so that a reply cannot outgrow the frame that
 * caused it (one entry per bad id made it about 35 times larger). Only a publish's id list
 * can have more problems than a message has fields (every other message has at most four),
 * and its first bad ids tell a client what is wrong as well as all of them would. 16
 * entries stay under 2 KiB (docs/protocols/jac.md, "Bounded replies and bounded publishes").
 */
export const MAX_ERROR_ENTRIES = 16;

export const JAC_MESSAGES = {
  invalidJson: 'Invalid JSON',
  tooDeep: `Input should be nested at most ${MAX_JSON_DEPTH} levels deep`,
  binaryFrame: 'Binary frames are not supported; send JSON text',
  notAnObject: 'Input should be a valid dictionary or object to extract fields from',
  missingTag: "Unable to extract tag using discriminator 'type'",
  unknownTag:
    "Input tag found using 'type' does not match any of the expected tags: 'walker', 'user', 'channel', 'client', 'change_user', 'connection'",
  required: 'Field required',
  list: 'Input should be a valid list',
  emptyList: 'List should have at least 1 item after validation, not 0',
  listTooLong: (max: number, length: number) => `List should have at most ${max} items after validation, not ${length}`,
  truncated: `Too many errors; the first ${MAX_ERROR_ENTRIES - 1} are reported, the rest omitted`,
  string: 'Input should be a valid string',
  dict: 'Input should be a valid dictionary',
  bool: 'Input should be a valid boolean',
  publishRefused: 'Publishing to users, channels or clients requires an authenticated connection',
  internal: 'Internal error',
  unknownWalker: 'Invalid request! Please use valid walker event!',
  walkerNeedsAuth: (name: string) => `Event ${name} requires to be authenticated!`,
  walkerFailed: (name: string) => `Walker ${name} failed`,
} as const;
