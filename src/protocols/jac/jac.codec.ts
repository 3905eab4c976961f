import { jsonDeeperThan } from '../../core/ws/json-depth.js';
import type { RoutedMessage, WsCodec } from '../../core/ws/ws-protocol.js';
import { JAC_MESSAGES as M, type JacErrorEntry } from './jac.errors.js';

export type PublishKind = 'user' | 'channel' | 'client';

export const ID_FIELD: Record<PublishKind, 'root_ids' | 'channel_ids' | 'client_ids'> = {
  user: 'root_ids',
  channel: 'channel_ids',
  client: 'client_ids',
};

/** A client message that passed validation, by `type`. */
export type JacInbound =
  | { type: 'connection' }
  | { type: PublishKind; ids: string[]; data: Record<string, unknown> }
  | { type: 'change_user'; token: string | null }
  | { type: 'walker'; walker: string; response: boolean; context: Record<string, unknown>; node: string | null };

/** The routed event for a message that failed validation; its data is the error list. */
export const JAC_INVALID = '__invalid';

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function ids(type: PublishKind, body: Json, errors: JacErrorEntry[]): string[] {
  const field = ID_FIELD[type];
  const value = body[field];
  if (value === undefined) {
    errors.push({ loc: [type, field], msg: M.required });
    return [];
  }
  if (!Array.isArray(value)) {
    errors.push({ loc: [type, field], msg: M.list });
    return [];
  }
  if (value.length === 0) errors.push({ loc: [type, field], msg: M.emptyList });
  value.forEach((item, i) => {
    if (typeof item !== 'string') errors.push({ loc: [type, field, i], msg: M.string });
  });
  return value as string[];
}

function optionalString(type: string, body: Json, field: string, errors: JacErrorEntry[]): string | null {
  const value = body[field];
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string') errors.push({ loc: [type, field], msg: M.string });
  return value as string;
}

/**
 * Validates one parsed message. Every problem is reported, each with its location,
 * as the original's pydantic model did; unknown extra fields are ignored.
 */
export function validateJacMessage(body: unknown): JacInbound | JacErrorEntry[] {
  if (!isObject(body)) return [{ loc: [], msg: M.notAnObject }];
  const type = body['type'];
  if (type === undefined) return [{ loc: ['type'], msg: M.missingTag }];
  if (typeof type !== 'string') return [{ loc: ['type'], msg: M.unknownTag }];
  const errors: JacErrorEntry[] = [];
  switch (type) {
    case 'connection':
      return { type };
    case 'user':
    case 'channel':
    case 'client': {
      const list = ids(type, body, errors);
      const data = body['data'];
      if (data === undefined) errors.push({ loc: [type, 'data'], msg: M.required });
      else if (!isObject(data)) errors.push({ loc: [type, 'data'], msg: M.dict });
      return errors.length > 0 ? errors : { type, ids: list, data: data as Json };
    }
    case 'change_user': {
      const token = optionalString(type, body, 'token', errors);
      return errors.length > 0 ? errors : { type, token };
    }
    case 'walker': {
      const walker = body['walker'];
      if (walker === undefined) errors.push({ loc: [type, 'walker'], msg: M.required });
      else if (typeof walker !== 'string') errors.push({ loc: [type, 'walker'], msg: M.string });
      const response = body['response'] ?? false;
      if (typeof response !== 'boolean') errors.push({ loc: [type, 'response'], msg: M.bool });
      const context = body['context'] ?? {};
      if (!isObject(context)) errors.push({ loc: [type, 'context'], msg: M.dict });
      const node = optionalString(type, body, 'node', errors);
      if (errors.length > 0) return errors;
      return { type, walker: walker as string, response: response as boolean, context: context as Json, node };
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
  return Buffer.from(JSON.stringify(message), 'utf8');
}

export const jacCodec: WsCodec = {
  decode(data: Buffer, isBinary: boolean): RoutedMessage {
    const parsed = parseJacFrame(data, isBinary);
    if (Array.isArray(parsed)) return { event: JAC_INVALID, data: parsed };
    return { event: parsed.type, data: parsed };
  },
  encode: encodeJac,
};
