import type { RoutedMessage, WsCodec } from '../../core/ws/ws-protocol.js';
import type { ControlCode, FatesEra } from './fates.codes.js';

/** ASCII 31, the unit separator that ends every event payload (docs/protocols/fates.md, "Framing"). */
export const US = '\x1f';
const US_BYTE = Buffer.from(US);

export type FatesTargetKind = 'bot' | 'server';

/** Whose events a connection receives: a bot or a server (guild), by canonical decimal id. */
export interface FatesTarget {
  readonly kind: FatesTargetKind;
  readonly id: string;
}

/** `bot-<id>`, `server-<id>`: the target's channel, as the original's Redis channels were named. */
export function channelOf(target: FatesTarget): string {
  return `${target.kind}-${target.id}`;
}

/** `0042` and `42` are one bot: ids are compared in canonical decimal form. */
export function canonicalId(digits: string): string {
  return BigInt(digits).toString();
}

// ---- control payloads --------------------------------------------------------------------

/**
 * A control payload: exactly these five keys in this order (the Go struct's field order),
 * `ts` in whole seconds. It always goes alone in its own text frame, with no separator.
 */
export function encodeControl(
  code: ControlCode,
  detail: string,
  requestsRemaining: number,
  nowMs = Date.now(),
): string {
  return JSON.stringify({
    code,
    detail,
    ts: Math.floor(nowMs / 1000),
    requests_remaining: requestsRemaining,
    control: true,
  });
}

// ---- event payloads ----------------------------------------------------------------------

const FLAMEPAW_SUFFIX = Buffer.from(`,"detail":null}${US}`);

/**
 * One event as an era writes it, `\x1f` included. `event` is the event's JSON exactly as
 * stored and published; the flamepaw envelope is built around those bytes (keys in the
 * alphabetical order Go's map encoding used), so nothing is parsed or re-serialised.
 */
export function encodeEvent(era: FatesEra, chan: string, event: Buffer): Buffer {
  switch (era) {
    case 'v2':
      return Buffer.concat([event, US_BYTE]);
    case 'flamepaw':
      return Buffer.concat([
        Buffer.from(`{"chan":${JSON.stringify(chan)},"code":"event","control":false,"dat":`),
        event,
        FLAMEPAW_SUFFIX,
      ]);
  }
}

/** Several events per frame during a replay, up to about this many bytes. */
export const BATCH_BYTES = 64 * 1024;

/**
 * Packs encoded events (each already ending in `\x1f`) into frames as the original's
 * write pump did: the first event as is, every further one preceded by another `\x1f`
 * (`A\x1f\x1fB\x1f`). Clients split on `\x1f` and skip empty pieces. A frame holds
 * events until the next would take it past `maxBytes`; a bigger event goes alone.
 */
export function batchFrames(events: readonly Buffer[], maxBytes = BATCH_BYTES): Buffer[] {
  const frames: Buffer[] = [];
  let parts: Buffer[] = [];
  let size = 0;
  for (const event of events) {
    const added = parts.length === 0 ? event.length : event.length + 1;
    if (parts.length > 0 && size + added > maxBytes) {
      frames.push(Buffer.concat(parts));
      parts = [];
      size = 0;
    }
    if (parts.length > 0) parts.push(US_BYTE);
    parts.push(event);
    size += parts.length === 1 ? event.length : event.length + 1;
  }
  if (parts.length > 0) frames.push(Buffer.concat(parts));
  return frames;
}

// ---- identify ----------------------------------------------------------------------------

export interface IdentifyPayload {
  target: FatesTarget;
  token: string;
  sendAll: boolean;
  sendNone: boolean;
}

/** A parsed identify, or the `invalid_payload` detail that refuses it. */
export type IdentifyResult = { ok: true; value: IdentifyPayload } | { ok: false; detail: string };

type FieldType = 'string' | 'bool';

/** `types.WebsocketIdentifyPayload`: Go field names and types. The v2 era had no `bot`. */
const FIELDS: Record<FatesEra, Record<string, FieldType>> = {
  v2: { id: 'string', token: 'string', send_all: 'bool', send_none: 'bool' },
  flamepaw: { id: 'string', token: 'string', send_all: 'bool', send_none: 'bool', bot: 'bool' },
};

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** Go's name for a JSON value's type in an `UnmarshalTypeError`. */
function jsonTypeName(value: unknown): string {
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'boolean') return 'bool';
  return typeof value;
}

/** `strconv.Atoi`: optional sign, decimal digits, 64-bit range. */
function atoi(text: string): { value: bigint } | { error: 'invalid syntax' | 'value out of range' } {
  if (!/^[+-]?[0-9]+$/.test(text)) return { error: 'invalid syntax' };
  const value = BigInt(text);
  if (value < INT64_MIN || value > INT64_MAX) return { error: 'value out of range' };
  return { value };
}

/**
 * Validates an identify frame in the original's order (reference 1.4 step 3): JSON and
 * field types, then `id` as an integer, then `id > 0` and a non-empty token. Details
 * follow Go's texts, except that no detail ever carries the token: the original echoed
 * it in "Invalid ID or token sent" (docs/protocols/fates.md, "Differences").
 */
export function parseIdentify(data: Buffer, era: FatesEra): IdentifyResult {
  let body: unknown;
  const text = data.toString('utf8');
  try {
    body = JSON.parse(text);
  } catch {
    // Go's syntax errors quote the offending character of the input; ours quote nothing.
    const detail = text.trim() === '' ? 'unexpected end of JSON input' : 'invalid character in JSON input';
    return { ok: false, detail };
  }
  // Go decodes `null` into the zero struct: every field empty, so the id check fails below.
  if (body === null) body = {};
  if (typeof body !== 'object' || Array.isArray(body)) {
    return {
      ok: false,
      detail: `json: cannot unmarshal ${jsonTypeName(body)} into Go value of type types.WebsocketIdentifyPayload`,
    };
  }
  const fields = FIELDS[era];
  const values: Record<string, string | boolean> = {};
  let typeError: string | null = null;
  for (const [key, value] of Object.entries(body as Record<string, unknown>)) {
    // encoding/json matches keys case-insensitively; the last occurrence wins.
    const name = Object.keys(fields).find((field) => field === key.toLowerCase());
    if (name === undefined) continue;
    const type = fields[name] as FieldType;
    // Go: a JSON null has no effect on a string or bool field.
    if (value === null) continue;
    const ok = type === 'string' ? typeof value === 'string' : typeof value === 'boolean';
    if (!ok) {
      typeError ??= `json: cannot unmarshal ${jsonTypeName(value)} into Go struct field WebsocketIdentifyPayload.${name} of type ${type}`;
      continue;
    }
    values[name] = value as string | boolean;
  }
  if (typeError !== null) return { ok: false, detail: typeError };

  const idText = (values['id'] as string | undefined) ?? '';
  const token = (values['token'] as string | undefined) ?? '';
  const parsed = atoi(idText);
  if ('error' in parsed) {
    // The id is echoed as Go did, unless it carries the token (a client that mixed them up).
    const shown = token !== '' && idText.includes(token) ? '<redacted>' : idText;
    return { ok: false, detail: `strconv.Atoi: parsing ${JSON.stringify(shown)}: ${parsed.error}` };
  }
  if (parsed.value <= 0n || token === '') {
    const tokenText = token === '' ? 'an empty api token' : 'a redacted api token';
    return { ok: false, detail: `Invalid ID or token sent. Got ID of ${parsed.value} and ${tokenText}` };
  }
  const bot = era === 'v2' ? true : values['bot'] === true;
  return {
    ok: true,
    value: {
      target: { kind: bot ? 'bot' : 'server', id: parsed.value.toString() },
      token,
      sendAll: values['send_all'] === true,
      sendNone: values['send_none'] === true,
    },
  };
}

// ---- the gateway codec -------------------------------------------------------------------

/** Every inbound frame goes to one handler: before identify it is the identify, after it is only counted. */
export const FATES_FRAME = 'frame';

export const fatesCodec: WsCodec = {
  decode(data: Buffer): RoutedMessage {
    return { event: FATES_FRAME, data };
  },
  encode(message: unknown): string {
    return typeof message === 'string' ? message : JSON.stringify(message);
  },
};
