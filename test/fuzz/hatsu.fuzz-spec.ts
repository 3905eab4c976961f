// Seeded fuzzing of hatsu on /hatsu: identify frames on fresh sockets, event frames on
// identified json and zlib sessions (some sent before READY, which queues them). Every close
// code, reason and message is checked against docs/protocols/hatsu.md.
import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { constants, createInflate, type Inflate } from 'node:zlib';
import { connectHatsu, dispatch, HELLO_INFO, putGuild, putSession, putUser, ULID } from '../helpers/hatsu-client.js';
import { FUZZ_MAX_PAYLOAD, fuzzSuite } from './fuzz-env.js';
import {
  frameAt,
  Obj,
  Raw,
  randomText,
  randomValue,
  rngFor,
  type FuzzFrame,
  type JV,
  type PhaseModel,
  type ProtocolModel,
  type Rng,
} from './generate.js';
import {
  collect,
  decodeText,
  floodedSocket,
  isObject,
  jsonDepth,
  jsonEqual,
  LaneSessions,
  parseOrUndefined,
  probeAfter,
  transportClose,
  withPingFlood,
  type Decoder,
  type Expectation,
  type FuzzSocket,
  type Matcher,
  type Message,
} from './harness.js';

const LANES = 4;
const LIMIT = FUZZ_MAX_PAYLOAD;
/** docs/protocols/hatsu.md: JSON nested deeper than this is not a valid payload. */
const MAX_DEPTH = 512;
const MAX_TEXT = 1024;

const CLOSE = {
  invalidPayload: [4002, 'Invalid Payload Type'],
  invalidAuthorization: [4002, 'Invalid authorization'],
  presences: [4001, 'Presence has to be a bool.'],
  encoding: [4004, 'Invalid encoding'],
  dispatch: [4004, 'Invalid Dispatch Sent'],
} as const;

interface LaneFixture {
  user: string;
  guild: string;
  session: string;
}

/** Each lane its own user, guild and session, so a presence never reaches another lane. */
function fixture(lane: number): LaneFixture {
  const session =
    lane === 3
      ? `hatsu-fuzz-session-${lane}-`.padEnd(512, 'k') // exactly the longest valid session id
      : `hatsu-fuzz-session-${lane}-5Qe8vN2rTb0wXc`;
  return { user: String(70000 + lane), guild: String(80000 + lane), session };
}

// ---- the generator's view of hatsu ---------------------------------------------------------------

function hatsuModel(): ProtocolModel {
  const phases = Array.from({ length: LANES }, (_, lane): PhaseModel[] => {
    const f = fixture(lane);
    const identify: PhaseModel = {
      name: 'identify',
      weight: 4,
      valid(rng) {
        const fields: Record<string, JV> = { session_id: f.session };
        const encoding = rng.pick(['json', 'zlib', undefined]);
        if (encoding !== undefined) fields['encoding'] = encoding;
        const presences = rng.pick([true, false, undefined]);
        if (presences !== undefined) fields['presences'] = presences;
        return Obj.of(fields);
      },
      field(rng, key) {
        switch (key) {
          case 'session_id':
            return rng.pick<JV>([
              f.session,
              `${f.session}x`,
              f.session.slice(1),
              '',
              'a'.repeat(512),
              'a'.repeat(513),
              1,
              null,
              [f.session],
              Obj.of({}),
              f.session.toUpperCase(),
            ]);
          case 'encoding':
            return rng.pick<JV>(['json', 'zlib', 'JSON', 'etf', '', null, 1, true, ['zlib']]);
          case 'presences':
            return rng.pick<JV>([true, false, 'true', 1, 0, null, [], Obj.of({})]);
          default:
            return undefined;
        }
      },
      carrier(rng) {
        return rng.pick([
          ['{"session_id":', '}'],
          [`{"session_id":"${f.session}","extra":`, '}'],
          [`{"session_id":"${f.session}","encoding":`, '}'],
          ['{"encoding":"zlib","session_id":', '}'],
          [`{"session_id":"${f.session}","presences":`, '}'],
        ] as const);
      },
    };
    const embed = (rng: Rng): JV =>
      rng.pick<JV>([
        null,
        Obj.of({ name: 'n', description: 'd', banner_url: 'https://b', top_text: 't', bottom_text: 'b' }),
        Obj.of({ name: 'a'.repeat(MAX_TEXT) }),
        Obj.of({ name: 'a'.repeat(MAX_TEXT + 1) }),
        Obj.of({ top_text: 1 }),
        Obj.of({ description: null, extra: [1] }),
        new Obj([
          ['__proto__', Obj.of({ name: 'x' })],
          ['name', 'y'],
        ]),
        [],
        'x',
      ]);
    const session: PhaseModel = {
      name: 'session',
      weight: 6,
      valid(rng) {
        switch (rng.int(6)) {
          case 0:
          case 1:
            return rng.chance(0.2) ? Obj.of({ t: 'HEARTBEAT' }) : Obj.of({ t: 'HEARTBEAT', s: randomValue(rng, 2) });
          case 2:
          case 3:
            return Obj.of({
              t: 'PRESENCE',
              type: rng.range(1, 4),
              description: 'playing',
              emoji: rng.pick<JV>(['😀', 123, null]),
              embed: embed(rng),
            });
          case 4:
            return Obj.of({ t: rng.pick(['DISPATCH', 'DISPATCH_TO', 'DISPATCH_TO_GUILD']), d: Obj.of({}) });
          default:
            return rng.pick([
              Obj.of({ t: 'NOTIFICATION', type: 'FRIEND_REQUEST', excerpt: Obj.of({}) }),
              Obj.of({ t: 'GUILD_CREATE', d: Obj.of({}) }),
              Obj.of({ t: 'ACK', s: 1 }),
            ]);
        }
      },
      field(rng, key) {
        switch (key) {
          case 't':
            return rng.pick<JV>([
              'HEARTBEAT',
              'PRESENCE',
              'DISPATCH',
              'DISPATCHX',
              'dispatch',
              'heartbeat',
              'READY',
              '',
              1,
              null,
              ['HEARTBEAT'],
              randomText(rng, 12),
            ]);
          case 's':
            return randomValue(rng, 3);
          case 'type':
            return rng.pick<JV>([1, 2, 3, 4, 0, 5, '1', 1.5, new Raw('1.0'), new Raw('4e0'), null, -1]);
          case 'description':
            return rng.pick<JV>([
              'x',
              'a'.repeat(MAX_TEXT),
              'a'.repeat(MAX_TEXT + 1),
              '😀'.repeat(MAX_TEXT / 2),
              null,
              1,
              Obj.of({}),
            ]);
          case 'emoji':
            return rng.pick<JV>([
              '😀',
              'a'.repeat(MAX_TEXT + 1),
              1,
              -0.5,
              new Raw('1e999'),
              new Raw('-1e999'),
              null,
              [],
              true,
            ]);
          case 'embed':
            return embed(rng);
          default:
            return undefined;
        }
      },
      carrier(rng) {
        return rng.pick([
          ['{"t":"HEARTBEAT","s":', '}'],
          ['{"t":"PRESENCE","type":1,"description":', '}'],
          ['{"t":', '}'],
          ['{"t":"PRESENCE","type":2,"embed":{"name":', '}}'],
          ['{"t":"GUILD_CREATE","d":', '}'],
        ] as const);
      },
    };
    return [identify, session];
  });
  return { name: 'hatsu', limit: LIMIT, lanes: LANES, phases: (lane) => phases[lane] as PhaseModel[] };
}

// ---- the oracle: docs/protocols/hatsu.md ------------------------------------------------------------

type Encoding = 'json' | 'zlib';

interface SessionState {
  encoding: Encoding;
  presences: boolean;
}

function framed(message: Message, encoding: Encoding): boolean {
  return message.binary === (encoding === 'zlib') && isObject(message.json);
}

function withoutKeys(message: Message, keys: string[]): string {
  const copy = { ...(message.json as Record<string, unknown>) };
  for (const key of keys) delete copy[key];
  return JSON.stringify(copy);
}

function readySequence(f: LaneFixture, encoding: Encoding): Matcher[] {
  return [
    {
      name: 'HELLO',
      match: (m) => {
        const b = m.json as Record<string, unknown>;
        return (
          framed(m, encoding) &&
          b['t'] === 'HELLO' &&
          ULID.test(String(b['s'])) &&
          b['d'] === null &&
          b['i'] === HELLO_INFO &&
          Object.keys(b).length === 4
        );
      },
    },
    {
      name: 'READY',
      match: (m) => {
        const b = m.json as Record<string, unknown>;
        const d = b['d'];
        return (
          framed(m, encoding) &&
          b['t'] === 'READY' &&
          b['s'] === f.session &&
          b['i'] === null &&
          isObject(d) &&
          d['_id'] === f.user &&
          !('session_ids' in d)
        );
      },
      // READY.s is the client's own session id, as documented; the rest is the server's.
      scanView: (m) => withoutKeys(m, ['s']),
    },
    {
      name: 'GUILD_INIT',
      match: (m) => {
        const b = m.json as Record<string, unknown>;
        const d = b['d'];
        return (
          framed(m, encoding) &&
          b['t'] === 'GUILD_INIT' &&
          ULID.test(String(b['s'])) &&
          b['i'] === '' &&
          isObject(d) &&
          d['_id'] === f.guild &&
          Array.isArray(d['channels'])
        );
      },
    },
  ];
}

function ack(name: string, f: LaneFixture, encoding: Encoding, s: unknown): Matcher {
  return {
    name,
    match: (m) => {
      const b = m.json as Record<string, unknown>;
      return (
        framed(m, encoding) &&
        Object.keys(b).sort().join() === '_s,d,s,t' &&
        b['t'] === 'ACK' &&
        b['_s'] === f.session &&
        b['d'] === null &&
        jsonEqual(b['s'], s)
      );
    },
    // `_s` is the session id and `s` the client's own value, both echoed as documented.
    scanView: (m) => withoutKeys(m, ['s', '_s']),
  };
}

/** The `PRESENCE_UPDATE.d` a valid client PRESENCE becomes, or null when the presence is ignored. */
function presenceOf(body: Record<string, unknown>): unknown {
  const type = body['type'];
  if (type !== 1 && type !== 2 && type !== 3 && type !== 4) return null;
  const text = (value: unknown): string | null | undefined =>
    value === undefined || value === null
      ? null
      : typeof value === 'string' && value.length <= MAX_TEXT
        ? value
        : undefined;
  const description = text(body['description']);
  const rawEmoji = body['emoji'];
  const emoji =
    rawEmoji === undefined || rawEmoji === null
      ? null
      : typeof rawEmoji === 'number' && Number.isFinite(rawEmoji)
        ? rawEmoji
        : typeof rawEmoji === 'string' && rawEmoji.length <= MAX_TEXT
          ? rawEmoji
          : undefined;
  if (description === undefined || emoji === undefined) return null;
  const rawEmbed = body['embed'];
  if (rawEmbed === undefined || rawEmbed === null) return { type, description, emoji, embed: null };
  if (!isObject(rawEmbed)) return null;
  const [name, embedDescription, banner, top, bottom] = [
    'name',
    'description',
    'banner_url',
    'top_text',
    'bottom_text',
  ].map((k) => text(rawEmbed[k]));
  if ([name, embedDescription, banner, top, bottom].some((v) => v === undefined)) return null;
  return {
    type,
    description,
    emoji,
    embed: { name, description: embedDescription, banner_url: banner, text: { top, bottom } },
  };
}

/** Parsed JSON object of a frame, `invalid` (4002) or a transport close. */
function interpret(frame: FuzzFrame): Expectation | { invalid: true } | { value: unknown } {
  const transport = transportClose(frame, LIMIT);
  if (transport) return transport;
  let value: unknown;
  try {
    value = JSON.parse(frame.data.toString('utf8'));
  } catch {
    return { invalid: true };
  }
  if (jsonDepth(value) > MAX_DEPTH) return { invalid: true };
  return { value };
}

function closeWith([code, reason]: readonly [number, string], replies: Matcher[] = []): Expectation {
  return { replies, close: [code], reason };
}

/** An identify frame on a fresh socket: the checks of the doc's table, in its order. */
function predictIdentify(frame: FuzzFrame, f: LaneFixture): { expected: Expectation; session?: SessionState } {
  // A ping flood carries no identify: the lane identifies plainly after it.
  if (frame.pingOnly)
    return { expected: { replies: readySequence(f, 'json') }, session: { encoding: 'json', presences: true } };
  const read = interpret(frame);
  if ('replies' in read) return { expected: read };
  if ('invalid' in read || !isObject(read.value)) return { expected: closeWith(CLOSE.invalidPayload) };
  const body = read.value;
  const encoding = body['encoding'] === undefined ? 'json' : body['encoding'];
  if (encoding !== 'json' && encoding !== 'zlib') return { expected: closeWith(CLOSE.encoding) };
  const sessionId = body['session_id'];
  if (typeof sessionId !== 'string' || sessionId.length === 0 || sessionId.length > 512) {
    return { expected: closeWith(CLOSE.invalidAuthorization) };
  }
  if (sessionId !== f.session) return { expected: closeWith(CLOSE.invalidAuthorization) };
  const presences = body['presences'] === undefined ? true : body['presences'];
  if (typeof presences !== 'boolean') return { expected: closeWith(CLOSE.presences) };
  return { expected: { replies: readySequence(f, encoding) }, session: { encoding, presences } };
}

/** A frame on an identified session. */
function predictSession(frame: FuzzFrame, f: LaneFixture, state: SessionState): Expectation {
  if (frame.pingOnly) return { replies: [] };
  const read = interpret(frame);
  if ('replies' in read) return read;
  if ('invalid' in read || !isObject(read.value)) return closeWith(CLOSE.invalidPayload);
  const body = read.value;
  const t = body['t'];
  if (typeof t !== 'string') return { replies: [] };
  // Server messages are JSON.stringify output: `s` comes back as JSON can carry it (1e999: null).
  if (t === 'HEARTBEAT')
    return { replies: [ack('ack', f, state.encoding, JSON.parse(JSON.stringify(body['s'] ?? null)))] };
  if (t === 'PRESENCE') {
    const presence = presenceOf(body);
    if (presence === null || !state.presences) return { replies: [] };
    // The user is in one guild (its lane's): the update comes back to its own session.
    return {
      replies: [
        {
          name: 'presence',
          echo: true,
          match: (m) =>
            framed(m, state.encoding) &&
            jsonEqual(m.json, { t: 'PRESENCE_UPDATE', id: f.user, _id: f.user, d: presence }),
        },
      ],
    };
  }
  if (t.startsWith('DISPATCH')) return closeWith(CLOSE.dispatch);
  return { replies: [] };
}

/** Text as it came, or, on a zlib session, each binary message through one inflate context. */
function decoderFor(encoding: Encoding): { decode: Decoder; close(): void } {
  if (encoding === 'json') return { decode: decodeText, close: () => undefined };
  const inflate: Inflate = createInflate();
  let chunks: Buffer[] = [];
  inflate.on('data', (chunk: Buffer) => chunks.push(chunk));
  inflate.on('error', () => undefined);
  return {
    decode: (event) => {
      if (!event.binary) return decodeText(event);
      const tail = event.data.subarray(-4).toString('hex');
      return new Promise((resolve) => {
        inflate.write(event.data);
        inflate.flush(constants.Z_SYNC_FLUSH, () => {
          const text = Buffer.concat(chunks).toString('utf8');
          chunks = [];
          // A zlib message that does not end in a sync flush is not as documented: unparseable here.
          resolve({ text, json: tail === '0000ffff' ? parseOrUndefined(text) : undefined, binary: true });
        });
      });
    },
    close: () => inflate.close(),
  };
}

// ---- the run ------------------------------------------------------------------------------------

interface LaneSession {
  socket: FuzzSocket;
  state: SessionState;
  decoder: { decode: Decoder; close(): void };
}

describe('fuzz: hatsu (/hatsu)', () => {
  const model = hatsuModel();
  const fuzz = fuzzSuite('hatsu', {
    // The model expects every valid PRESENCE back at once; the budget has its own e2e spec.
    env: { HATSU_PRESENCE_LIMIT: '1000000' },
    prepare: async (app, scanner) => {
      for (let lane = 0; lane < LANES; lane++) {
        const f = fixture(lane);
        await putUser(app, f.user);
        await putGuild(app, f.guild, [f.user]);
        await putSession(app, f.session, f.user);
        scanner.addSecret(f.session);
      }
    },
  });
  const { seed, scanner, stats } = fuzz;
  const sessions = new LaneSessions<LaneSession>(async ({ socket, decoder }) => {
    await socket.close();
    decoder.close();
  });

  fuzz.itAnswersEveryFrame({
    lanes: LANES,
    frame: async (lane, index) => {
      const started = performance.now();
      const f = fixture(lane);
      const frame = frameAt(seed, model, index);
      if (frame.phase === 'identify') {
        // Every identify frame gets a socket of its own.
        const socket = await fuzz.open('/hatsu');
        const { expected, session } = predictIdentify(frame, f);
        socket.sendFrame(frame);
        // Only pings so far: identify now, so the flood is followed by a real answer.
        if (frame.pingOnly) socket.send(JSON.stringify({ session_id: f.session }));
        const decoder = decoderFor(session?.encoding ?? 'json');
        const outcome = await collect(socket, withPingFlood(frame, expected), scanner, { decode: decoder.decode });
        stats.record(frame, outcome, performance.now() - started);
        if (session && !outcome.failure && !outcome.closed && !floodedSocket(frame)) {
          // An identified socket becomes the lane's session, for the next event frames.
          await sessions.drop(lane);
          sessions.set(lane, { socket, state: session, decoder });
        } else {
          await socket.close();
          decoder.close();
        }
        return;
      }
      let current = sessions.get(lane);
      let expected: Expectation;
      if (!current || current.socket.closed) {
        // Open a session and send the frame right behind the identify: it waits for READY.
        const rng = rngFor(seed, 'hatsu-session', index);
        const state: SessionState = { encoding: rng.chance(0.35) ? 'zlib' : 'json', presences: rng.chance(0.75) };
        const socket = await fuzz.open('/hatsu');
        current = { socket, state, decoder: decoderFor(state.encoding) };
        sessions.set(lane, current);
        socket.send(JSON.stringify({ session_id: f.session, encoding: state.encoding, presences: state.presences }));
        const ownExpectation = predictSession(frame, f, state);
        const refusedByTransport = ownExpectation.close?.some((code) => code < 4000) ?? false;
        if (refusedByTransport) {
          // A frame the transport refuses would race the identify: read READY first.
          const ready = await collect(socket, { replies: readySequence(f, state.encoding) }, scanner, {
            decode: current.decoder.decode,
          });
          assert.equal(ready.failure, undefined, ready.failure);
        }
        expected = refusedByTransport
          ? ownExpectation
          : { ...ownExpectation, replies: [...readySequence(f, state.encoding), ...ownExpectation.replies] };
      } else {
        expected = predictSession(frame, f, current.state);
      }
      const { socket, state, decoder } = current;
      socket.sendFrame(frame);
      const marker = `probe-${index}`;
      const probe = JSON.stringify({ t: 'HEARTBEAT', s: marker });
      expected = probeAfter(socket, expected, probe, ack('probe', f, state.encoding, marker));
      const outcome = await collect(socket, withPingFlood(frame, expected), scanner, { decode: decoder.decode });
      stats.record(frame, outcome, performance.now() - started);
      if (outcome.closed || outcome.failure || floodedSocket(frame)) await sessions.drop(lane);
    },
    finish: () => sessions.dropAll(),
    reached: [
      'close:1009',
      'close:1007',
      'close:4002',
      'close:4001',
      'close:4004',
      'reply:HELLO+READY+GUILD_INIT',
      'reply:ack',
      'reply:presence',
      'none',
    ],
    byPrefix: true,
  });

  fuzz.itRecovers('healthy json and zlib sessions get their events', async (app) => {
    await putUser(app, '79999');
    await putGuild(app, '89999', ['79999']);
    await putSession(app, 'after-fuzz-session-0123456789', '79999');
    const plain = await connectHatsu(app, 'after-fuzz-session-0123456789', { guilds: 1 });
    const packed = await connectHatsu(app, 'after-fuzz-session-0123456789', { guilds: 1, encoding: 'zlib' });
    assert.equal(await dispatch(app, { t: 'GUILD_UPDATE', d: { name: 'after fuzz' }, to: { guild_id: '89999' } }), 2);
    for (const client of [plain, packed]) {
      assert.deepEqual(await client.expect('GUILD_UPDATE'), { t: 'GUILD_UPDATE', d: { name: 'after fuzz' } });
      await client.expectNothingPending('after-fuzz');
    }
    await Promise.all([plain.close(), packed.close()]);
  });
});
