// Seeded fuzzing of Felix on /felix. docs/protocols/felix.md: a heartbeat (code
// 20001) is answered 10001 at once; everything else is ignored, never answered; only
// transport limits close the socket.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createToken, putDocument } from '../helpers/felix-client.js';
import { UpgradeRejected, WsTestClient } from '../helpers/ws-client.js';
import { FUZZ_MAX_PAYLOAD, fuzzSuite } from './fuzz-env.js';
import {
  frameAt,
  Obj,
  Raw,
  randomText,
  rngFor,
  type FuzzFrame,
  type JV,
  type PhaseModel,
  type ProtocolModel,
} from './generate.js';
import {
  collect,
  floodedSocket,
  isObject,
  LaneSessions,
  parseOrUndefined,
  probeAfter,
  transportClose,
  withPingFlood,
  type Expectation,
  type FuzzSocket,
  type Matcher,
} from './harness.js';

const LANES = 4;
/** Felix's own frame limit: the smaller of WS_MAX_PAYLOAD and 64 KiB. */
const LIMIT = Math.min(FUZZ_MAX_PAYLOAD, 64 * 1024);
/** A registered private token, in Felix's own shape (25 + 9 × 24 + 9 characters with dots). */
const TOKEN = ['F'.repeat(25), ...Array.from({ length: 9 }, (_, i) => `z${i}`.padEnd(24, 'q')), 'x'.repeat(9)].join(
  '.',
);

/** The `n`th of a fixed list of snowflakes: a frame's ids depend on its index alone. */
const nthSnowflake = (n: number): string => String(100000000000000000n + BigInt(n));

function felixModel(): ProtocolModel {
  const few = Array.from({ length: 3 }, (_, i) => nthSnowflake(i));
  const atLimit = Array.from({ length: 1000 }, (_, i) => nthSnowflake(i));
  const pastLimit = [...atLimit, nthSnowflake(1000)];
  const list = (rng: ReturnType<typeof rngFor>): JV =>
    rng.pick<JV>([
      [],
      [nthSnowflake(1)],
      few,
      [nthSnowflake(1), nthSnowflake(1)],
      ['0'],
      ['1'.repeat(20)],
      ['1'.repeat(21)],
      ['abc'],
      [''],
      [1],
      [null],
      atLimit,
      pastLimit,
      'x',
      null,
      Obj.of({}),
      [randomText(rng, 10)],
    ]);
  const message: PhaseModel = {
    name: 'message',
    weight: 1,
    valid(rng) {
      switch (rng.int(4)) {
        case 0:
          return Obj.of({ code: 20001 });
        case 1:
          return Obj.of({ code: 20001, data: rng.pick<JV>([null, 'x', Obj.of({ any: 1 })]) });
        default:
          return Obj.of({ code: 20002, data: Obj.of({ users: list(rng), guilds: list(rng) }) });
      }
    },
    field(rng, key) {
      switch (key) {
        case 'code':
          return rng.pick<JV>([
            20001,
            20002,
            '20001',
            0,
            false,
            '',
            null,
            10001,
            10002,
            20003,
            -20001,
            new Raw('20001.0'),
            new Raw('2.0001e4'),
            new Raw('20001.000000000001'),
            new Raw('1e999'),
            true,
            [20001],
            Obj.of({ code: 20001 }),
          ]);
        case 'data':
          return rng.pick<JV>([
            Obj.of({ users: [], guilds: [] }),
            Obj.of({ users: list(rng) }),
            Obj.of({ guilds: list(rng), users: list(rng), extra: 1 }),
            new Obj([
              ['__proto__', Obj.of({ users: [nthSnowflake(2)], guilds: [] })],
              ['users', []],
              ['guilds', []],
            ]),
            null,
            [],
            'x',
          ]);
        case 'users':
        case 'guilds':
          return list(rng);
        default:
          return undefined;
      }
    },
    carrier(rng) {
      return rng.pick([
        ['{"code":20002,"data":{"users":', ',"guilds":[]}}'],
        ['{"code":20002,"data":{"users":[],"guilds":', '}}'],
        ['{"code":20001,"data":', '}'],
        ['{"code":', '}'],
        ['{"pad":', ',"code":20001}'],
      ] as const);
    },
  };
  return { name: 'felix', limit: LIMIT, lanes: LANES, phases: () => [message] };
}

// ---- the oracle: docs/protocols/felix.md ------------------------------------------------------------

/** A `10001` Heartbeat ACK with exactly the documented fields and types. */
function heartbeatAck(name: string): Matcher {
  return {
    name,
    match(message) {
      const body = message.json;
      if (message.binary || !isObject(body)) return false;
      if (Object.keys(body).join() !== 'code,name,data' || body['code'] !== 10001 || body['name'] !== 'Heartbeat ACK') {
        return false;
      }
      const data = body['data'];
      if (!isObject(data)) return false;
      return (
        Object.keys(data).sort().join() === 'guildsCount,memoryUsage,receivedAt,shards,uptime' &&
        Number.isInteger(data['receivedAt']) &&
        Array.isArray(data['shards']) &&
        Number.isInteger(data['guildsCount']) &&
        typeof data['memoryUsage'] === 'number' &&
        Number.isInteger(data['uptime'])
      );
    },
  };
}

/** Only a heartbeat is answered; everything else is ignored (no reply, socket open) unless a transport limit closes it. */
function predict(frame: FuzzFrame): Expectation {
  if (frame.pingOnly) return { replies: [] };
  const transport = transportClose(frame, LIMIT);
  if (transport) return transport;
  if (frame.binary) return { replies: [] };
  const body = parseOrUndefined(frame.data.toString('utf8'));
  if (isObject(body) && body['code'] === 20001) return { replies: [heartbeatAck('ack')] };
  return { replies: [] };
}

// ---- the run ------------------------------------------------------------------------------------

const PROBE = '{"code":20001}';

describe('fuzz: Felix (/felix)', () => {
  const model = felixModel();
  const fuzz = fuzzSuite('felix', {
    prepare: async (app, scanner) => {
      await createToken(app, { token: TOKEN });
      scanner.addSecret(TOKEN);
    },
  });
  const { seed, scanner, stats } = fuzz;
  const sockets = new LaneSessions<FuzzSocket>((socket) => socket.close());

  it('refuses every generated Authorization header but the registered token with 403', async () => {
    const headers: string[] = [];
    for (let i = 0; i < 60; i++) {
      const rng = rngFor(seed, 'felix-auth', i);
      const printable = (n: number): string =>
        Array.from({ length: n }, () => String.fromCharCode(rng.range(33, 126))).join('');
      headers.push(
        rng.pick([
          `Bearer ${TOKEN}`,
          `${TOKEN}x`,
          TOKEN.slice(0, -1),
          TOKEN.toLowerCase(),
          TOKEN.repeat(2),
          printable(rng.range(1, 40)),
          printable(rng.range(500, 600)),
          `${TOKEN.slice(0, 100)}${printable(160)}`,
          'null',
          '[]',
        ]),
      );
    }
    for (const header of headers) {
      const refused = await WsTestClient.connect(fuzz.app.ws('/felix'), { headers: { Authorization: header } }).then(
        async (client) => {
          await client.close();
          return null;
        },
        (err: unknown) => err,
      );
      assert.ok(
        refused instanceof UpgradeRejected,
        `upgrade with ${JSON.stringify(header.slice(0, 60))} was not refused`,
      );
      assert.equal(refused.status, 403);
    }
    const accepted = await WsTestClient.connect(fuzz.app.ws('/felix'), { headers: { Authorization: TOKEN } });
    await accepted.close();
  });

  fuzz.itAnswersEveryFrame({
    lanes: LANES,
    frame: async (lane, index) => {
      const started = performance.now();
      let socket = sockets.get(lane);
      if (!socket || socket.closed) {
        socket = await fuzz.open('/felix', { Authorization: TOKEN });
        sockets.set(lane, socket);
      }
      const frame = frameAt(seed, model, index);
      socket.sendFrame(frame);
      const expected = probeAfter(socket, withPingFlood(frame, predict(frame)), PROBE, heartbeatAck('probe'));
      const outcome = await collect(socket, expected, scanner);
      stats.record(frame, outcome, performance.now() - started);
      if ((outcome.failure || floodedSocket(frame)) && !socket.closed) sockets.abandon(lane, socket);
    },
    finish: () => sockets.dropAll(),
    reached: ['close:1009', 'close:1007', 'reply:ack', 'none'],
  });

  fuzz.itRecovers('a healthy client gets its updates', async (app) => {
    const client = await WsTestClient.connect(app.ws('/felix'), { headers: { Authorization: TOKEN } });
    client.send({ code: 20002, data: { users: [], guilds: ['328842643746324481'] } });
    client.send({ code: 20001 });
    assert.equal((await client.next<{ code: number }>()).code, 10001);
    await putDocument(app, 'guilds', '328842643746324481', { id: '328842643746324481', after: 'fuzz' });
    assert.deepEqual(await client.next(), {
      code: 10002,
      name: 'GDB Update',
      data: { guildID: '328842643746324481', guildData: { id: '328842643746324481', after: 'fuzz' } },
    });
    await client.close();
  });
});
