// Seeded frame generator for the fuzz suites: hostile input, for every protocol.
//
// Every frame is a pure function of (seed, protocol, index): `frameAt` builds frame #i with
// its own PRNG, so a failure is reproduced by the seed and the index alone, whatever order
// the lanes ran in. Nothing here touches the network.

/** The seed used when FUZZ_SEED is not set. */
export const DEFAULT_SEED = 0x6a7e5eed;

/** FUZZ_SEED (decimal or 0x-hex), else the fixed default. */
export function fuzzSeed(): number {
  const raw = process.env.FUZZ_SEED;
  if (raw === undefined || raw.trim() === '') return DEFAULT_SEED;
  const value = Number(raw.trim());
  if (!Number.isInteger(value)) throw new Error(`FUZZ_SEED must be an integer, got ${JSON.stringify(raw)}`);
  return value >>> 0;
}

/** FUZZ_FRAMES, frames per protocol; `fallback` when unset. */
export function fuzzFrameCount(fallback = 2000): number {
  const raw = process.env.FUZZ_FRAMES;
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) throw new Error(`FUZZ_FRAMES must be a positive integer, got ${raw}`);
  return value;
}

// ---- PRNG ----------------------------------------------------------------------------------

/** mulberry32: tiny, fast, good enough to pick test inputs, and identical on every platform. */
export class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Integer in [min, max]. */
  range(min: number, max: number): number {
    return min + this.int(max - min + 1);
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from an empty list');
    return items[this.int(items.length)] as T;
  }

  weighted<T>(choices: readonly (readonly [number, T])[]): T {
    const total = choices.reduce((sum, [w]) => sum + w, 0);
    let r = this.next() * total;
    for (const [w, value] of choices) {
      if (r < w) return value;
      r -= w;
    }
    return (choices[choices.length - 1] as readonly [number, T])[1];
  }

  bytes(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }
}

/** xmur3: a 32-bit seed from a string, so (seed, protocol, index) gets its own stream. */
function hashSeed(text: string): number {
  let h = 1779033703 ^ text.length;
  for (let i = 0; i < text.length; i++) {
    h = Math.imul(h ^ text.charCodeAt(i), 3432918353);
    h = (h << 13) | (h >>> 19);
  }
  h = Math.imul(h ^ (h >>> 16), 2246822507);
  h = Math.imul(h ^ (h >>> 13), 3266489909);
  return (h ^ (h >>> 16)) >>> 0;
}

export function rngFor(seed: number, protocol: string, index: number): Rng {
  return new Rng(hashSeed(`${seed}:${protocol}:${index}`));
}

// ---- JSON values that JSON.stringify cannot write --------------------------------------------

/** Raw JSON text inserted verbatim (number spellings like `1e999`, `-0`, pre-built nesting). */
export class Raw {
  constructor(readonly text: string) {}
}

/** A JSON object as its entries, so keys may repeat and `__proto__` is an ordinary key. */
export class Obj {
  constructor(readonly entries: [string, JV][]) {}

  static of(fields: Record<string, JV>): Obj {
    return new Obj(Object.entries(fields));
  }

  get(key: string): JV | undefined {
    return this.entries.find(([k]) => k === key)?.[1];
  }
}

export type JV = null | boolean | number | string | Raw | Obj | JV[];

export function json(value: JV): string {
  if (value instanceof Raw) return value.text;
  if (value instanceof Obj) return `{${value.entries.map(([k, v]) => `${JSON.stringify(k)}:${json(v)}`).join(',')}}`;
  if (Array.isArray(value)) return `[${value.map(json).join(',')}]`;
  return JSON.stringify(value);
}

// ---- value generators ------------------------------------------------------------------------

const ASCII = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-';
const PUNCT = ' !"#$%&\'()*+,./:;<=>?@[\\]^`{|}~';
const CONTROL = ['\u0000', '\u0001', '\b', '\t', '\n', '\r', '\u001b', '\u001f', '\u007f'];
const UNICODE = [
  'é',
  'ß',
  '中',
  '文',
  'ﷺ',
  '\u0301', // combining accent
  '\u200b', // zero width space
  '\u202e', // right-to-left override
  '\u2028', // line separator
  '\u2029', // paragraph separator
  '\ufeff', // BOM
  '\uffff',
  '😀',
  '𝄞',
  '\ud800', // lone high surrogate (JSON.stringify escapes it)
  '\udfff', // lone low surrogate
];

/** A short string from a mix of alphabets: ASCII, punctuation, controls and awkward unicode. */
export function randomText(rng: Rng, maxLength = 24): string {
  const length = rng.chance(0.1) ? 0 : rng.range(1, maxLength);
  let out = '';
  for (let i = 0; i < length; i++) {
    const r = rng.next();
    if (r < 0.55) out += ASCII[rng.int(ASCII.length)];
    else if (r < 0.7) out += PUNCT[rng.int(PUNCT.length)];
    else if (r < 0.8) out += rng.pick(CONTROL);
    else out += rng.pick(UNICODE);
  }
  return out;
}

/** Number spellings at and past the edges of what parsers hold. */
export const EXTREME_NUMBERS: readonly string[] = [
  '0',
  '-0',
  '1',
  '-1',
  '0.5',
  '1.0',
  '1e999',
  '-1e999',
  '1e-400',
  '5e-324',
  '1.7976931348623157e308',
  '9007199254740993',
  '-9007199254740993',
  '4294967296',
  '9223372036854775807',
  '9223372036854775808',
  '123456789012345678901234567890',
  '2e4',
  '1E2',
];

export function extremeNumber(rng: Rng): Raw {
  return new Raw(rng.pick(EXTREME_NUMBERS));
}

/** Keys that trip naive object handling. */
export const NASTY_KEYS: readonly string[] = [
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'hasOwnProperty',
  'valueOf',
  '',
  ' ',
  '0',
  '__defineGetter__',
];

export function randomKey(rng: Rng): string {
  return rng.chance(0.4) ? rng.pick(NASTY_KEYS) : randomText(rng, 12);
}

/** Any JSON value, nesting at most `depth` levels. */
export function randomValue(rng: Rng, depth = 2): JV {
  const kinds = depth > 0 ? 8 : 5;
  switch (rng.int(kinds)) {
    case 0:
      return null;
    case 1:
      return rng.chance(0.5);
    case 2:
      return rng.chance(0.5) ? extremeNumber(rng) : rng.range(-1000, 100000);
    case 3:
    case 4:
      return randomText(rng);
    case 5:
    case 6: {
      const items: JV[] = [];
      for (let i = rng.int(5); i > 0; i--) items.push(randomValue(rng, depth - 1));
      return items;
    }
    default: {
      const entries: [string, JV][] = [];
      for (let i = rng.int(5); i > 0; i--) entries.push([randomKey(rng), randomValue(rng, depth - 1)]);
      return new Obj(entries);
    }
  }
}

// ---- protocol models -------------------------------------------------------------------------

/**
 * One phase of a protocol's conversation (jac has one; Fates and hatsu have the identify and
 * the identified session), as the generator sees it.
 */
export interface PhaseModel {
  readonly name: string;
  /** Relative share of frames generated for this phase. */
  readonly weight: number;
  /** A valid message of this phase (the starting point of mutations). */
  valid(rng: Rng): Obj;
  /** A near-valid or boundary value for a field, or undefined for "anything". */
  field(rng: Rng, key: string): JV | undefined;
  /** Where a large or deep payload goes: raw JSON before and after it (`['', '']`: bare). */
  carrier(rng: Rng): readonly [string, string];
}

export interface ProtocolModel {
  readonly name: string;
  /** Largest inbound message the protocol accepts, in bytes. */
  readonly limit: number;
  /** Frames go to lanes round-robin (`index % lanes`); a lane may have its own identity. */
  readonly lanes: number;
  phases(lane: number): readonly PhaseModel[];
}

// ---- frames ----------------------------------------------------------------------------------

export type FrameKind =
  | 'valid'
  | 'mutated'
  | 'random-binary'
  | 'random-text'
  | 'random-ascii'
  | 'invalid-utf8'
  | 'binary-json'
  | 'scalar'
  | 'syntax'
  | 'unicode'
  | 'deep'
  | 'huge'
  | 'ping-flood';

export interface FuzzFrame {
  readonly protocol: string;
  readonly index: number;
  readonly lane: number;
  readonly phase: string;
  readonly kind: FrameKind;
  /** The message; empty for a ping flood (which sends no message). */
  readonly data: Buffer;
  readonly binary: boolean;
  /** Sent as this many WebSocket frames (1: unfragmented). */
  readonly fragments: number;
  /** Byte offsets where the fragments start (after the first). */
  readonly cuts: readonly number[];
  /** A ping between every two fragments. */
  readonly pingsBetween: boolean;
  /** Pings sent after the message (a flood), before any probe. */
  readonly pings: number;
  /** No message at all: only the pings. */
  readonly pingOnly: boolean;
}

const KINDS: readonly (readonly [number, FrameKind])[] = [
  [30, 'mutated'],
  [8, 'valid'],
  [4, 'random-binary'],
  [4, 'random-text'],
  [3, 'random-ascii'],
  [5, 'invalid-utf8'],
  [5, 'binary-json'],
  [5, 'scalar'],
  [6, 'syntax'],
  [4, 'unicode'],
  [6, 'deep'],
  [6, 'huge'],
  [3, 'ping-flood'],
];

/** Byte sequences no valid UTF-8 text contains. */
const BAD_UTF8: readonly number[][] = [
  [0xff],
  [0xfe],
  [0x80], // lone continuation byte
  [0xc0, 0x80], // overlong NUL
  [0xc1, 0xbf], // overlong
  [0xe0, 0x80, 0xaf], // overlong '/'
  [0xed, 0xa0, 0x80], // UTF-16 surrogate
  [0xf4, 0x90, 0x80, 0x80], // past U+10FFFF
  [0xe2, 0x82], // truncated
  [0xf0, 0x9f, 0x98], // truncated emoji
  [0xf8, 0x88, 0x80, 0x80, 0x80], // five-byte form
];

const SCALARS: readonly string[] = [
  '',
  ' ',
  '\n\t ',
  'null',
  'true',
  'false',
  '0',
  '-1',
  '1e999',
  '20001',
  '"text"',
  '""',
  '[]',
  '{}',
  '[{}]',
  '[null]',
  '"{\\"a\\":1}"',
];

/** Builds frame #index of a protocol for a seed. */
export function frameAt(seed: number, model: ProtocolModel, index: number): FuzzFrame {
  const rng = rngFor(seed, model.name, index);
  const lane = index % model.lanes;
  const phases = model.phases(lane);
  const phase = rng.weighted(phases.map((p) => [p.weight, p] as const));
  const kind = rng.weighted(KINDS);
  let binary = false;
  let data: Buffer;
  switch (kind) {
    case 'valid':
      data = text(json(phase.valid(rng)));
      break;
    case 'mutated':
      data = text(json(mutate(rng, phase, phase.valid(rng))));
      binary = rng.chance(0.05);
      break;
    case 'random-binary':
      data = rng.bytes(rng.chance(0.05) ? rng.range(model.limit - 2, model.limit + 2) : rng.int(300));
      binary = true;
      break;
    case 'random-text':
      data = rng.bytes(rng.int(300));
      break;
    case 'random-ascii': {
      let s = '';
      for (let i = rng.range(0, 200); i > 0; i--) s += String.fromCharCode(rng.range(32, 126));
      data = text(s);
      break;
    }
    case 'invalid-utf8':
      data = injectBadUtf8(rng, text(json(rng.chance(0.5) ? phase.valid(rng) : mutate(rng, phase, phase.valid(rng)))));
      break;
    case 'binary-json':
      data = text(json(rng.chance(0.6) ? phase.valid(rng) : mutate(rng, phase, phase.valid(rng))));
      binary = true;
      break;
    case 'scalar':
      data = text(rng.chance(0.8) ? rng.pick(SCALARS) : `[${json(phase.valid(rng))}]`);
      binary = rng.chance(0.1);
      break;
    case 'syntax':
      data = text(breakSyntax(rng, json(phase.valid(rng))));
      break;
    case 'unicode':
      data = text(json(unicodify(rng, phase.valid(rng))));
      break;
    case 'deep':
      data = text(deep(rng, model, phase));
      binary = rng.chance(0.1);
      break;
    case 'huge':
      data = huge(rng, model, phase);
      binary = rng.chance(0.15);
      break;
    case 'ping-flood':
      data = Buffer.alloc(0);
      break;
  }
  const pingOnly = kind === 'ping-flood';
  // Mostly bursts a socket must survive; some past ws's pong-flood guard (60 pending pongs).
  const flood = (): number => (rng.chance(0.75) ? rng.range(2, 50) : rng.range(70, 400));
  const pings = pingOnly ? flood() : rng.chance(0.03) ? flood() : 0;
  let fragments = 1;
  const cuts: number[] = [];
  if (!pingOnly && rng.chance(0.12)) {
    fragments = rng.range(2, 8);
    for (let i = 1; i < fragments; i++) cuts.push(rng.int(data.length + 1));
    cuts.sort((a, b) => a - b);
  }
  const pingsBetween = fragments > 1 && rng.chance(0.3);
  return {
    protocol: model.name,
    index,
    lane,
    phase: phase.name,
    kind,
    data,
    binary,
    fragments,
    cuts,
    pingsBetween,
    pings,
    pingOnly,
  };
}

function text(s: string): Buffer {
  return Buffer.from(s, 'utf8');
}

type Mutation = 'drop' | 'retype' | 'near' | 'duplicate' | 'proto' | 'extra' | 'case' | 'null' | 'extreme' | 'wrap';

const MUTATIONS: readonly (readonly [number, Mutation])[] = [
  [3, 'drop'],
  [4, 'retype'],
  [6, 'near'],
  [2, 'duplicate'],
  [2, 'proto'],
  [2, 'extra'],
  [1, 'case'],
  [2, 'null'],
  [2, 'extreme'],
  [1, 'wrap'],
];

/** One to three mutations of a valid message: types changed, keys dropped or repeated, edge values. */
export function mutate(rng: Rng, phase: PhaseModel, base: Obj): JV {
  const entries: [string, JV][] = base.entries.map(([k, v]) => [k, v]);
  for (let n = rng.range(1, 3); n > 0; n--) {
    const op = rng.weighted(MUTATIONS);
    const i = entries.length > 0 ? rng.int(entries.length) : -1;
    const entry = i >= 0 ? entries[i] : undefined;
    switch (op) {
      case 'drop':
        if (i >= 0) entries.splice(i, 1);
        break;
      case 'retype':
        if (entry) entry[1] = randomValue(rng, 2);
        break;
      case 'near':
        if (entry) entry[1] = phase.field(rng, entry[0]) ?? randomValue(rng, 1);
        break;
      case 'duplicate':
        if (entry) {
          const copy: [string, JV] = [entry[0], phase.field(rng, entry[0]) ?? randomValue(rng, 1)];
          entries.splice(rng.int(entries.length + 1), 0, copy);
        }
        break;
      case 'proto':
        entries.splice(rng.int(entries.length + 1), 0, [
          rng.chance(0.7) ? '__proto__' : rng.pick(NASTY_KEYS),
          rng.chance(0.6) ? Obj.of(Object.fromEntries(base.entries)) : randomValue(rng, 2),
        ]);
        break;
      case 'extra':
        entries.push([randomKey(rng), randomValue(rng, 2)]);
        break;
      case 'case':
        if (entry) entry[0] = flipCase(rng, entry[0]);
        break;
      case 'null':
        if (entry) entry[1] = null;
        break;
      case 'extreme':
        if (entry) entry[1] = extremeNumber(rng);
        break;
      case 'wrap':
        if (entry) entry[1] = rng.chance(0.5) ? [entry[1]] : Obj.of({ value: entry[1] });
        break;
    }
  }
  const mutated = new Obj(entries);
  if (rng.chance(0.03)) return [mutated];
  return mutated;
}

function flipCase(rng: Rng, key: string): string {
  let out = '';
  for (const ch of key) out += rng.chance(0.5) ? ch.toUpperCase() : ch.toLowerCase();
  return out === key ? key.toUpperCase() : out;
}

/** Every string value and some keys of a valid message replaced by awkward unicode. */
function unicodify(rng: Rng, base: Obj): Obj {
  return new Obj(
    base.entries.map(([k, v]): [string, JV] => {
      const key = rng.chance(0.1) ? k + rng.pick(UNICODE) : k;
      if (typeof v === 'string') return [key, rng.chance(0.5) ? v + rng.pick(UNICODE) : randomText(rng, 40)];
      return [key, v];
    }),
  );
}

function injectBadUtf8(rng: Rng, data: Buffer): Buffer {
  const at = rng.int(data.length + 1);
  return Buffer.concat([data.subarray(0, at), Buffer.from(rng.pick(BAD_UTF8)), data.subarray(at)]);
}

function breakSyntax(rng: Rng, valid: string): string {
  switch (rng.int(11)) {
    case 0:
      return valid.slice(0, rng.int(valid.length));
    case 1:
      return `${valid},`;
    case 2:
      return `${valid}x`;
    case 3:
      return `\ufeff${valid}`;
    case 4:
      return `/* c */${valid}`;
    case 5:
      return valid.replaceAll('"', "'");
    case 6:
      return valid.replace(/}$/, ',}');
    case 7:
      return valid + valid;
    case 8:
      return rng.pick(['NaN', 'undefined', 'Infinity', '-Infinity', "{'a':1}", '{a:1}', '[1,]', '01', '.5']);
    case 9:
      // A raw control character inside a string is not JSON.
      return valid.replace(/":"/, `":"\u0001`);
    default:
      return valid.replace(/:/, ': : ');
  }
}

/** Arrays or objects nested far past what recursive code survives, bare or in a field. */
function deep(rng: Rng, model: ProtocolModel, phase: PhaseModel): string {
  const [prefix, suffix] = rng.chance(0.75) ? phase.carrier(rng) : (['', ''] as const);
  const shape = rng.pick(['array', 'object', 'mixed'] as const);
  const open = shape === 'array' ? '[' : shape === 'object' ? '{"a":' : '[{"a":';
  const close = shape === 'array' ? ']' : shape === 'object' ? '}' : '}]';
  const room = Math.floor((model.limit - prefix.length - suffix.length - 1) / (open.length + close.length));
  // Around the protocols' 512-level limit (carriers add a level or three), and far past it.
  const wanted = rng.pick([64, 508, 510, 511, 512, 513, 1000, 3000, 5000, 10_000, 50_000, 1_000_000]);
  const depth = Math.max(1, Math.min(wanted, room + (rng.chance(0.1) ? 10 : 0)));
  const inner = shape === 'array' ? '' : rng.pick(['1', 'null', '"x"', '[]']);
  return prefix + open.repeat(depth) + inner + close.repeat(depth) + suffix;
}

/** A message of an exact byte size at, just under or just over the protocol's limit. */
function huge(rng: Rng, model: ProtocolModel, phase: PhaseModel): Buffer {
  const target = rng.weighted([
    [3, model.limit],
    [2, model.limit - rng.range(1, 64)],
    [3, model.limit + 1],
    [2, model.limit + rng.range(2, 4096)],
    [1, Math.floor(model.limit / 2)],
  ]);
  const [prefix, suffix] = rng.chance(0.85) ? phase.carrier(rng) : (['', ''] as const);
  const style = rng.pick(['string', 'array', 'unicode'] as const);
  let body: string;
  const room = target - Buffer.byteLength(prefix) - Buffer.byteLength(suffix);
  if (style === 'array') {
    const item = rng.pick(['0', '""', '{}', '[]', 'null', '"x"', '1e999', 'true']);
    // [item,item,...,"pad"]: fill with items, then a string that lands on the exact size.
    const count = Math.max(0, Math.floor((room - 4) / (item.length + 1)) - 2);
    let s = `[${Array.from({ length: count }, () => item).join(',')}`;
    const padding = room - Buffer.byteLength(s) - (count > 0 ? 1 : 0) - 3;
    s += `${count > 0 ? ',' : ''}"${'p'.repeat(Math.max(0, padding))}"]`;
    body = s;
  } else if (style === 'unicode') {
    // Two-byte characters, topped up with ASCII to the exact size.
    const pairs = Math.max(0, Math.floor((room - 2) / 2));
    body = `"${'é'.repeat(pairs)}${'a'.repeat(Math.max(0, room - 2 - pairs * 2))}"`;
  } else {
    body = `"${'a'.repeat(Math.max(0, room - 2))}"`;
  }
  return Buffer.from(prefix + body + suffix, 'utf8');
}

/** The frame's bytes, fragment by fragment. */
export function fragmentsOf(frame: FuzzFrame): Buffer[] {
  if (frame.fragments <= 1) return [frame.data];
  const out: Buffer[] = [];
  let start = 0;
  for (const cut of frame.cuts) {
    out.push(frame.data.subarray(start, cut));
    start = cut;
  }
  out.push(frame.data.subarray(start));
  return out;
}

/** A short, printable description of a frame for failure messages. */
export function describeFrame(seed: number, frame: FuzzFrame, max = 240): string {
  const head = frame.data.subarray(0, max);
  const shown =
    frame.binary || !Buffer.from(head.toString('utf8')).equals(head)
      ? `hex:${head.toString('hex')}`
      : JSON.stringify(head.toString('utf8'));
  const more = frame.data.length > max ? `…(+${frame.data.length - max} bytes)` : '';
  const extras = [
    frame.fragments > 1 ? `${frame.fragments} fragments${frame.pingsBetween ? ' with pings' : ''}` : '',
    frame.pings > 0 ? `${frame.pings} pings` : '',
  ]
    .filter(Boolean)
    .join(', ');
  return (
    `seed=${seed} (FUZZ_SEED=${seed}) ${frame.protocol} frame #${frame.index} lane ${frame.lane} ` +
    `phase=${frame.phase} kind=${frame.kind} ${frame.binary ? 'binary' : 'text'} ${frame.data.length} B` +
    `${extras ? ` (${extras})` : ''}: ${shown}${more}`
  );
}
