import { encodeJson, isJsonObject, type JsonObject } from '../../core/json.js';
import { jsonDeeperThan } from '../../core/ws/json-depth.js';
import type { RoutedMessage, WsCodec } from '../../core/ws/ws-protocol.js';
import { JAC_MESSAGES as M, MAX_ERROR_ENTRIES, type JacErrorEntry } from './jac.errors.js';

export type PublishKind = 'user' | 'channel' | 'client';

export const ID_FIELD: Record<PublishKind, 'root_ids' | 'channel_ids' | 'client_ids'> = {
  user: 'root_ids',
  channel: 'channel_ids',
  client: 'client_ids',
};

/**
 * Ids one publish may name, as `POST /admin/jac/notify` allows per list. Every id is a
 * registry lookup on every instance and travels in the bus frame to each of them, so a
 * 1 MiB frame of one-character ids would otherwise cost half a million of each.
 */
export const MAX_PUBLISH_IDS = 10_000;

/** A client message that passed validation, by `type`. */
export type JacInbound =
  | { type: 'connection' }
  | { type: PublishKind; ids: string[]; data: Record<string, unknown> }
  | { type: 'change_user'; token: string | null }
  | { type: 'walker'; walker: string; response: boolean; context: Record<string, unknown>; node: string | null };

/** The routed event for a message that failed validation; its data is the error list. */
export const JAC_INVALID = '__invalid';

/**
 * A message's problems, in the order validation finds them, kept to what one reply
 * carries: once there are more than `MAX_ERROR_ENTRIES`, validation stops (`full`), and
 * the reply lists the first ones and says the rest were omitted (docs/protocols/jac.md).
 */
export class Problems {
  private readonly entries: JacErrorEntry[] = [];

  constructor(private readonly type: string) {}

  add(loc: (string | number)[], msg: string): void {
    if (!this.full) this.entries.push({ loc, msg });
  }

  get any(): boolean {
    return this.entries.length > 0;
  }

  /** One past the cap is enough to know that the reply must be cut. */
  get full(): boolean {
    return this.entries.length > MAX_ERROR_ENTRIES;
  }

  reply(): JacErrorEntry[] {
    if (!this.full) return this.entries;
    return [...this.entries.slice(0, MAX_ERROR_ENTRIES - 1), { loc: [this.type], msg: M.truncated }];
  }
}

function ids(type: PublishKind, body: JsonObject, problems: Problems): string[] {
  const field = ID_FIELD[type];
  const value = body[field];
  if (value === undefined) {
    problems.add([type, field], M.required);
    return [];
  }
  if (!Array.isArray(value)) {
    problems.add([type, field], M.list);
    return [];
  }
  if (value.length === 0) problems.add([type, field], M.emptyList);
  if (value.length > MAX_PUBLISH_IDS) {
    // Refused whole: its items are not looked at, so the work stays bounded too.
    problems.add([type, field], M.listTooLong(MAX_PUBLISH_IDS, value.length));
    return [];
  }
  for (let i = 0; i < value.length && !problems.full; i++) {
    if (typeof value[i] !== 'string') problems.add([type, field, i], M.string);
  }
  return value as string[];
}

function optionalString(type: string, body: JsonObject, field: string, problems: Problems): string | null {
  const value = body[field];
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string') problems.add([type, field], M.string);
  return value as string;
}

/**
 * Validates one parsed message. Every problem is reported, each with its location, as
 * the original's pydantic model did, up to `MAX_ERROR_ENTRIES`; unknown extra fields are
 * ignored.
 */
export function validateJacMessage(body: unknown): JacInbound | JacErrorEntry[] {
  if (!isJsonObject(body)) return [{ loc: [], msg: M.notAnObject }];
  const type = body['type'];
  if (type === undefined) return [{ loc: ['type'], msg: M.missingTag }];
  if (typeof type !== 'string') return [{ loc: ['type'], msg: M.unknownTag }];
  const problems = new Problems(type);
  switch (type) {
    case 'connection':
      return { type };
    case 'user':
    case 'channel':
    case 'client': {
      const list = ids(type, body, problems);
      const data = body['data'];
      if (data === undefined) problems.add([type, 'data'], M.required);
      else if (!isJsonObject(data)) problems.add([type, 'data'], M.dict);
      return problems.any ? problems.reply() : { type, ids: list, data: data as JsonObject };
    }
    case 'change_user': {
      const token = optionalString(type, body, 'token', problems);
      return problems.any ? problems.reply() : { type, token };
    }
    case 'walker': {
      const walker = body['walker'];
      if (walker === undefined) problems.add([type, 'walker'], M.required);
      else if (typeof walker !== 'string') problems.add([type, 'walker'], M.string);
      const response = body['response'] ?? false;
      if (typeof response !== 'boolean') problems.add([type, 'response'], M.bool);
      const context = body['context'] ?? {};
      if (!isJsonObject(context)) problems.add([type, 'context'], M.dict);
      const node = optionalString(type, body, 'node', problems);
      if (problems.any) return problems.reply();
      return { type, walker: walker as string, response: response as boolean, context: context as JsonObject, node };
    }
    default:
      return [{ loc: ['type'], msg: M.unknownTag }];
  }
}

/** Parses a raw frame: text JSON only, nested at most `MAX_JSON_DEPTH` levels. */
export function parseJacFrame(data: Buffer, isBinary: boolean): JacInbound | JacErrorEntry[] {
  if (isBinary) return [{ loc: [], msg: M.binaryFrame }];
  let body: unknown;
  try {
    body = JSON.parse(data.toString('utf8'));
  } catch {
    return [{ loc: [], msg: M.invalidJson }];
  }
  // Relaying `data` and building walker contexts recurse; refuse what they cannot take.
  if (jsonDeeperThan(body)) return [{ loc: [], msg: M.tooDeep }];
  return validateJacMessage(body);
}

/** Server messages are compact JSON text, as the original's encoder wrote them. */
export function encodeJac(message: unknown): Buffer {
  return encodeJson(message);
}

export const jacCodec: WsCodec = {
  decode(data: Buffer, isBinary: boolean): RoutedMessage {
    const parsed = parseJacFrame(data, isBinary);
    if (Array.isArray(parsed)) return { event: JAC_INVALID, data: parsed };
    return { event: parsed.type, data: parsed };
  },
  encode: encodeJac,
};
