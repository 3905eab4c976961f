// Seeded fuzzing of Fates on all four paths, both eras. Identify frames go to fresh sockets,
// one each: a control payload with exactly the five keys, then 4004, as
// docs/protocols/fates.md's validation table says, or `ready`. Frames after identify are only
// counted: a ping behind each proves the socket read it and stayed open with nothing sent.
import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { FatesClient, FLAMEPAW_PATH, postEvent, setToken, US, V2_PATH, vote } from '../helpers/fates-client.js';
import { FUZZ_ENV, fuzzSuite, type FuzzSuite } from './fuzz-env.js';
import {
  frameAt,
  Obj,
  randomText,
  randomValue,
  rngFor,
  type FuzzFrame,
  type JV,
  type PhaseModel,
  type ProtocolModel,
} from './generate.js';
import {
  collect,
  expectQuiet,
  floodedSocket,
  isObject,
  LaneSessions,
  transportClose,
  withPingFlood,
  type Expectation,
  type FuzzSocket,
  type Ignorable,
  type Matcher,
  type Message,
} from './harness.js';

/** Fates reads at most 4096 bytes a frame, whatever WS_MAX_PAYLOAD says. */
const LIMIT = 4096;
const RATE_LIMIT = Number(FUZZ_ENV['FATES_RATE_LIMIT']);
const PATHS = [V2_PATH, FLAMEPAW_PATH, '/api/flamepaw/ws', '/api/dragon/ws'] as const;
const LANES = PATHS.length;
type Era = 'v2' | 'flamepaw';
const eraOf = (lane: number): Era => (lane === 0 ? 'v2' : 'flamepaw');

const BOT = { id: '811073947382579200', token: 'fates-fuzz-bot-token-7Gq2Lm9ZxP4v' };
const SERVER = { id: '811073947382579311', token: 'fates-fuzz-server-token-Wc8Rt1Yb6Nk3' };
const CLOSE_4004 = { code: 4004, reason: 'Invalid authentication, try again' };

// ---- the generator's view of Fates --------------------------------------------------------------

function fatesModel(): ProtocolModel {
  const phases = Array.from({ length: LANES }, (_, lane): PhaseModel[] => {
    const era = eraOf(lane);
    const identify: PhaseModel = {
      name: 'identify',
      weight: 5,
      valid(rng) {
        const server = era === 'flamepaw' && rng.chance(0.4);
        const fields: Record<string, JV> = server
          ? { id: SERVER.id, token: SERVER.token }
          : { id: BOT.id, token: BOT.token };
        if (era === 'flamepaw' && (!server || rng.chance(0.5))) fields['bot'] = !server;
        if (rng.chance(0.5)) fields['send_all'] = rng.chance(0.5);
        if (rng.chance(0.3)) fields['send_none'] = rng.chance(0.5);
        return Obj.of(fields);
      },
      field(rng, key) {
        switch (key) {
          case 'id':
            return rng.pick<JV>([
              BOT.id,
              `0${BOT.id}`,
              `+${BOT.id}`,
              SERVER.id,
              `-${BOT.id}`,
              '0',
              '-0',
              '',
              'abc',
              ' 1',
              '9223372036854775807',
              '9223372036854775808',
              '-9223372036854775809',
              '1'.repeat(40),
              BOT.token,
              `x${BOT.token}x`,
              811073947382579200,
              1,
              null,
              true,
              [BOT.id],
              Obj.of({}),
              randomText(rng, 10),
            ]);
          case 'token':
            return rng.pick<JV>([
              BOT.token,
              SERVER.token,
              `${BOT.token}x`,
              BOT.token.toUpperCase(),
              '',
              ' ',
              null,
              1,
              [],
              Obj.of({}),
            ]);
          case 'bot':
          case 'send_all':
          case 'send_none':
            return rng.pick<JV>([true, false, null, 'true', 1, 0, []]);
          default:
            return undefined;
        }
      },
      carrier(rng) {
        return rng.pick([
          ['{"id":', `,"token":"${BOT.token}","bot":true}`],
          [`{"id":"${BOT.id}","token":`, ',"bot":true}'],
          [`{"id":"${BOT.id}","token":"${BOT.token}","bot":true,"extra":`, '}'],
          ['{"token":"t","ID":', '}'],
          [`{"send_all":`, `,"id":"${BOT.id}","token":"${BOT.token}","bot":true}`],
        ] as const);
      },
    };
    const session: PhaseModel = {
      name: 'session',
      weight: 5,
      valid(rng) {
        return rng.pick([
          Obj.of({ id: BOT.id, token: BOT.token, bot: true }),
          Obj.of({ op: 'ping' }),
          Obj.of({ code: 'identity', control: true }),
          Obj.of({ any: randomValue(rng, 3) }),
        ]);
      },
      field: (rng) => randomValue(rng, 2),
      carrier: (rng) =>
        rng.pick([
          ['{"x":', '}'],
          ['', ''],
        ] as const),
    };
    return [identify, session];
  });
  return { name: 'fates', limit: LIMIT, lanes: LANES, phases: (lane) => phases[lane] as PhaseModel[] };
}

// ---- the oracle: docs/protocols/fates.md -----------------------------------------------------------

const CONTROL_KEYS = 'code,detail,ts,requests_remaining,control';

/** A control payload: exactly the five keys in order, one per frame, no \x1f, ts now in whole seconds. */
function control(message: Message): Record<string, unknown> | null {
  const body = message.json;
  if (message.binary || message.text.includes(US) || !isObject(body)) return null;
  if (Object.keys(body).join() !== CONTROL_KEYS || body['control'] !== true) return null;
  if (typeof body['code'] !== 'string' || typeof body['detail'] !== 'string') return null;
  if (!Number.isInteger(body['ts']) || Math.abs((body['ts'] as number) - Date.now() / 1000) > 60) return null;
  if (!Number.isInteger(body['requests_remaining'])) return null;
  return body;
}

/** Flamepaw's `ping` control, which may come with any WebSocket ping, at any time. */
const ignorable: Ignorable = (message) => {
  const body = control(message);
  return body !== null && body['code'] === 'ping' && body['detail'] === '';
};

function controlMatcher(
  name: string,
  code: string,
  check: (detail: string, remaining: number) => boolean,
  scanView?: (detail: string) => string,
): Matcher {
  return {
    name,
    match: (message) => {
      const body = control(message);
      return (
        body !== null && body['code'] === code && check(body['detail'] as string, body['requests_remaining'] as number)
      );
    },
    scanView: scanView && ((message) => scanView((control(message) as Record<string, unknown>)['detail'] as string)),
  };
}

function refused(
  code: 'invalid_payload' | 'invalid_auth',
  check: (detail: string) => boolean,
  scanView?: (detail: string) => string,
): Expectation {
  return {
    replies: [controlMatcher(code, code, (detail, remaining) => remaining === -1 && check(detail), scanView)],
    close: [CLOSE_4004.code],
    reason: CLOSE_4004.reason,
  };
}

const goType = (value: unknown): string =>
  Array.isArray(value) ? 'array' : typeof value === 'boolean' ? 'bool' : typeof value;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

interface Admitted {
  sendAll: boolean;
}

/** The validation table, in its order; `admitted` when the identify is accepted. */
function predictIdentify(frame: FuzzFrame, era: Era): { expected: Expectation; admitted?: Admitted } {
  // A ping flood carries no identify: the lane identifies plainly after it.
  if (frame.pingOnly) return { expected: readyExpectation(false), admitted: { sendAll: false } };
  const transport = transportClose(frame, LIMIT);
  if (transport) return { expected: transport };
  const text = frame.data.toString('utf8');
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    const detail = text.trim() === '' ? 'unexpected end of JSON input' : 'invalid character in JSON input';
    return { expected: refused('invalid_payload', (d) => d === detail) };
  }
  if (body === null) body = {};
  if (!isObject(body)) {
    const detail = `json: cannot unmarshal ${goType(body)} into Go value of type types.WebsocketIdentifyPayload`;
    return { expected: refused('invalid_payload', (d) => d === detail) };
  }
  const fields: Record<string, 'string' | 'bool'> =
    era === 'v2'
      ? { id: 'string', token: 'string', send_all: 'bool', send_none: 'bool' }
      : { id: 'string', token: 'string', send_all: 'bool', send_none: 'bool', bot: 'bool' };
  const values: Record<string, unknown> = {};
  let typeError: string | null = null;
  for (const [key, value] of Object.entries(body)) {
    const name = key.toLowerCase();
    if (!Object.hasOwn(fields, name) || value === null) continue;
    const type = fields[name] as 'string' | 'bool';
    if (type === 'string' ? typeof value !== 'string' : typeof value !== 'boolean') {
      typeError ??= `json: cannot unmarshal ${goType(value)} into Go struct field WebsocketIdentifyPayload.${name} of type ${type}`;
      continue;
    }
    values[name] = value;
  }
  if (typeError !== null) {
    const detail = typeError;
    return { expected: refused('invalid_payload', (d) => d === detail) };
  }
  const idText = (values['id'] as string | undefined) ?? '';
  const token = (values['token'] as string | undefined) ?? '';
  let id: bigint | null = null;
  let atoiError = '';
  if (!/^[+-]?[0-9]+$/.test(idText)) atoiError = 'invalid syntax';
  else {
    id = BigInt(idText);
    if (id < INT64_MIN || id > INT64_MAX) atoiError = 'value out of range';
  }
  if (atoiError !== '') {
    // The id is echoed, unless it carries the frame's token.
    const shown = token !== '' && idText.includes(token) ? '<redacted>' : idText;
    const pattern = /^strconv\.Atoi: parsing (".*"): (invalid syntax|value out of range)$/s;
    return {
      expected: refused(
        'invalid_payload',
        (d) => {
          const m = pattern.exec(d);
          return m !== null && m[2] === atoiError && JSON.parse(m[1] as string) === shown;
        },
        // The echoed id is the client's own text: only the rest is the server's.
        (d) => d.replace(pattern, 'strconv.Atoi: parsing <id>: $2'),
      ),
    };
  }
  if ((id as bigint) <= 0n || token === '') {
    const detail = `Invalid ID or token sent. Got ID of ${(id as bigint).toString()} and ${token === '' ? 'an empty api token' : 'a redacted api token'}`;
    return { expected: refused('invalid_payload', (d) => d === detail) };
  }
  const bot = era === 'v2' || values['bot'] === true;
  const known = bot ? BOT : SERVER;
  if ((id as bigint).toString() !== known.id || token !== known.token) {
    return { expected: refused('invalid_auth', (d) => d === 'no rows in result set') };
  }
  const sendAll = values['send_all'] === true;
  return { expected: readyExpectation(sendAll), admitted: { sendAll } };
}

/** `ready` (2 more requests used, each identify) and, with send_all, `done_prior` after a replay of nothing. */
function readyExpectation(sendAll: boolean): Expectation {
  const replies: Matcher[] = [
    controlMatcher('ready', 'ready', (detail, remaining) => {
      const m = /^Waiting for messages with (\d+) already made$/.exec(detail);
      return m !== null && Number(m[1]) >= 2 && remaining === RATE_LIMIT - Number(m[1]);
    }),
  ];
  if (sendAll) {
    replies.push(
      controlMatcher(
        'done_prior',
        'done_prior',
        (detail, remaining) => detail === 'Done sending all prior messages' && remaining <= RATE_LIMIT - 2,
      ),
    );
  }
  return { replies };
}

/** After identify every frame is only counted: nothing answered; transport limits still close. */
function predictSession(frame: FuzzFrame): Expectation {
  if (frame.pingOnly) return { replies: [] };
  return transportClose(frame, LIMIT) ?? { replies: [] };
}

// ---- the run ------------------------------------------------------------------------------------

/** The next event frame's events, past flamepaw's `ping` control payloads (pings run every 1.5 s here). */
async function nextEvents(client: FatesClient): Promise<unknown[]> {
  for (;;) {
    const frame = await client.next();
    if (frame.kind === 'events') return frame.events;
    assert.equal(frame.control.code, 'ping', `expected events, got ${frame.raw}`);
  }
}

/** Opens a socket and checks the identity payload that comes first. */
async function openFates(fuzz: FuzzSuite, lane: number): Promise<FuzzSocket> {
  const socket = await fuzz.open(PATHS[lane] as string);
  const first = await socket.next();
  assert.ok(first?.kind === 'message', 'the identity payload comes first');
  const text = first.data.toString('utf8');
  const body = control({ text, json: JSON.parse(text) as unknown, binary: first.binary });
  assert.ok(
    body !== null && body['code'] === 'identity' && body['requests_remaining'] === -1,
    `identity payload: ${text}`,
  );
  assert.equal(fuzz.scanner.scan(text), null);
  return socket;
}

describe('fuzz: Fates (/api/ws, /flamepaw/ws, /api/flamepaw/ws, /api/dragon/ws)', () => {
  const model = fatesModel();
  const fuzz = fuzzSuite('fates', {
    prepare: async (app, scanner) => {
      await setToken(app, 'bots', BOT.id, BOT.token);
      await setToken(app, 'servers', SERVER.id, SERVER.token);
      scanner.addSecret(BOT.token);
      scanner.addSecret(SERVER.token);
    },
  });
  const { seed, scanner, stats } = fuzz;
  const sessions = new LaneSessions<FuzzSocket>((socket) => socket.close());

  fuzz.itAnswersEveryFrame({
    lanes: LANES,
    frame: async (lane, index) => {
      const started = performance.now();
      const era = eraOf(lane);
      const frame = frameAt(seed, model, index);
      if (frame.phase === 'identify') {
        const socket = await openFates(fuzz, lane);
        const { expected, admitted } = predictIdentify(frame, era);
        socket.sendFrame(frame);
        // Only pings so far: identify now, so the flood is followed by a real answer.
        if (frame.pingOnly) socket.send(JSON.stringify({ id: BOT.id, token: BOT.token, bot: true }));
        let outcome = await collect(socket, withPingFlood(frame, expected), scanner, { ignorable });
        if (admitted && !outcome.failure && !outcome.closed) {
          // Identified: nothing more may come (no events were published), and the socket stays open.
          const quiet = await expectQuiet(socket, withPingFlood(frame, { replies: [] }), scanner, ignorable);
          if (quiet.failure) outcome = quiet;
        }
        stats.record(frame, outcome, performance.now() - started);
        if (admitted && !outcome.failure && !outcome.closed && !floodedSocket(frame)) {
          // An identified socket becomes the lane's session, for the next counted frames.
          await sessions.drop(lane);
          sessions.set(lane, socket);
        } else {
          await socket.close();
        }
        return;
      }
      let socket = sessions.get(lane);
      let expected = predictSession(frame);
      if (!socket || socket.closed) {
        const rng = rngFor(seed, 'fates-session', index);
        const sendAll = rng.chance(0.5);
        socket = await openFates(fuzz, lane);
        sessions.set(lane, socket);
        socket.send(
          JSON.stringify({ id: BOT.id, token: BOT.token, bot: true, send_all: sendAll, send_none: rng.chance(0.3) }),
        );
        const ready = readyExpectation(sendAll);
        if (expected.close) {
          // A frame the transport refuses would race the identify: read `ready` first.
          const admitted = await collect(socket, ready, scanner, { ignorable });
          assert.equal(admitted.failure, undefined, admitted.failure);
        } else {
          // Sent right behind the identify: counted once it succeeds, never answered.
          expected = ready;
        }
      }
      socket.sendFrame(frame);
      let outcome = await collect(socket, withPingFlood(frame, expected), scanner, { ignorable });
      if (!outcome.failure && !outcome.closed && !expected.close) {
        outcome = await expectQuiet(socket, withPingFlood(frame, { replies: [] }), scanner, ignorable);
      }
      stats.record(frame, outcome, performance.now() - started);
      if (outcome.closed || outcome.failure || floodedSocket(frame)) await sessions.drop(lane);
    },
    finish: () => sessions.dropAll(),
    reached: ['close:1009', 'close:1007', 'close:4004', 'reply:ready', 'none'],
    byPrefix: true,
  });

  fuzz.itRecovers('healthy clients of both eras get their events', async (app) => {
    const { client: v2 } = await FatesClient.ready(app, V2_PATH, { id: BOT.id, token: BOT.token });
    const { client: flamepaw } = await FatesClient.ready(app, FLAMEPAW_PATH, {
      id: SERVER.id,
      token: SERVER.token,
      bot: false,
    });
    const botEid = await postEvent(app, `bots/${BOT.id}`, vote('519850436899897346', 3));
    const serverEid = await postEvent(app, `servers/${SERVER.id}`, vote('519850436899897346', 4, 71));
    const [botEvent] = (await nextEvents(v2)) as [{ m: { eid: string } }];
    assert.equal(botEvent.m.eid, botEid);
    const [envelope] = (await nextEvents(flamepaw)) as [{ chan: string; dat: { m: { eid: string } } }];
    assert.equal(envelope.chan, `server-${SERVER.id}`);
    assert.equal(envelope.dat.m.eid, serverEid);
    await Promise.all([v2.close(), flamepaw.close()]);
  });
});
