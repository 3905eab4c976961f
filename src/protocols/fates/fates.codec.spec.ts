import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  batchFrames,
  canonicalId,
  channelOf,
  encodeControl,
  encodeEvent,
  FATES_FRAME,
  fatesCodec,
  parseIdentify,
  US,
  type IdentifyResult,
} from './fates.codec.js';
import { FATES_DETAIL, FATES_EVENT_TYPES, type FatesEra } from './fates.codes.js';

const frame = (value: unknown): Buffer => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value));
const TOKEN = 'secret-token-XYZ';

function refused(result: IdentifyResult): string {
  assert.equal(result.ok, false, 'expected the identify to be refused');
  return (result as { detail: string }).detail;
}

/** The documented clients' receive loop: split on \x1f, skip empty pieces, parse each. */
function clientSplit(data: Buffer): unknown[] {
  const out: unknown[] = [];
  for (const m of data.toString('utf8').split(US)) {
    for (const e of m.split(US)) {
      if (e === '') continue;
      out.push(JSON.parse(e));
    }
  }
  return out;
}

describe('fates codec: control payloads', () => {
  it('has exactly code, detail, ts, requests_remaining, control in that order, ts in whole seconds', () => {
    const text = encodeControl('identity', 'hello', -1, 1_646_611_200_999);
    assert.equal(text, '{"code":"identity","detail":"hello","ts":1646611200,"requests_remaining":-1,"control":true}');
    assert.ok(!text.includes(US));
    const parsed = JSON.parse(encodeControl('ping', FATES_DETAIL.ping, 17)) as Record<string, unknown>;
    assert.deepEqual(Object.keys(parsed), ['code', 'detail', 'ts', 'requests_remaining', 'control']);
    assert.ok(Number.isInteger(parsed['ts']));
    assert.equal(parsed['detail'], '');
  });

  it('carries the exact identity texts of each era', () => {
    assert.ok(FATES_DETAIL.identity.v2.endsWith('if send_all is set to true'));
    assert.equal(
      FATES_DETAIL.identity.flamepaw,
      'Send Bot ID and API Token as id and token keys in json format. Set send_all to true if you want all events to ' +
        'be sent during startup but this may cause disconnects, more memory usage, more ratelimits and instability. ' +
        'Set send_none to true to not send any events at all after sending prior ones if send_all is set to true. ' +
        'Set bot to true for bot and false for server',
    );
    assert.equal(FATES_DETAIL.ready(4), 'Waiting for messages with 4 already made');
    assert.equal(FATES_DETAIL.ratelimited(22), 'Past max requests that can be sent (22)');
  });
});

describe('fates event types', () => {
  it('lists the original enum, 0 bot_vote to 81 staff_unlock', () => {
    const codes = Object.keys(FATES_EVENT_TYPES).map(Number);
    assert.equal(codes.length, 37);
    assert.equal(FATES_EVENT_TYPES[0], 'bot_vote');
    assert.equal(FATES_EVENT_TYPES[17], 'bot_invite');
    assert.equal(FATES_EVENT_TYPES[23], 'bot_unlock');
    assert.equal(FATES_EVENT_TYPES[71], 'server_vote');
    assert.equal(FATES_EVENT_TYPES[81], 'staff_unlock');
    assert.equal(FATES_EVENT_TYPES[24], undefined);
  });
});

describe('fates codec: events and framing', () => {
  const event = frame({ m: { e: 0, eid: 'e1' }, ctx: { user: '1', votes: 3, test: false } });

  it('sends the event bare in the v2 era, ending in \\x1f', () => {
    const bytes = encodeEvent('v2', 'bot-1', event);
    assert.equal(bytes.toString(), `${event.toString()}${US}`);
  });

  it('wraps the event in the flamepaw envelope, keys in Go map order', () => {
    const bytes = encodeEvent('flamepaw', 'server-7', event).toString();
    assert.ok(bytes.endsWith(US));
    const envelope = JSON.parse(bytes.slice(0, -1)) as Record<string, unknown>;
    assert.deepEqual(Object.keys(envelope), ['chan', 'code', 'control', 'dat', 'detail']);
    assert.deepEqual(envelope, {
      chan: 'server-7',
      code: 'event',
      control: false,
      dat: JSON.parse(event.toString()) as unknown,
      detail: null,
    });
  });

  it('batches events as the original write pump did (A\\x1f\\x1fB\\x1f) and the documented client loop reads them all', () => {
    const a = encodeEvent('v2', 'bot-1', frame({ m: { e: 1 } }));
    const b = encodeEvent('v2', 'bot-1', frame({ m: { e: 2 } }));
    const c = encodeEvent('v2', 'bot-1', frame({ m: { e: 3 } }));
    const frames = batchFrames([a, b, c]);
    assert.equal(frames.length, 1);
    const [only] = frames;
    assert.ok(only);
    assert.equal(only.toString(), `${a.toString()}${US}${b.toString()}${US}${c.toString()}`);
    assert.deepEqual(clientSplit(only), [{ m: { e: 1 } }, { m: { e: 2 } }, { m: { e: 3 } }]);
  });

  it('starts a new frame when the next event would pass the size limit; a big event goes alone', () => {
    const small = Buffer.from(`{"x":1}${US}`);
    const big = Buffer.from(`{"x":"${'y'.repeat(100)}"}${US}`);
    const frames = batchFrames([small, small, big, small], 20);
    assert.deepEqual(
      frames.map((f) => f.toString()),
      [`{"x":1}${US}${US}{"x":1}${US}`, big.toString(), small.toString()],
    );
    assert.deepEqual(batchFrames([]), []);
  });

  it('names channels bot-<id> and server-<id>; ids are canonical decimals', () => {
    assert.equal(channelOf({ kind: 'bot', id: '1' }), 'bot-1');
    assert.equal(channelOf({ kind: 'server', id: '2' }), 'server-2');
    assert.equal(canonicalId('000811073947382579200'), '811073947382579200');
    assert.equal(canonicalId('0'), '0');
  });
});

describe('fates codec: identify validation, in the original order', () => {
  const ok = (era: FatesEra, body: unknown) => {
    const result = parseIdentify(frame(body), era);
    assert.ok(result.ok, `expected success, got ${JSON.stringify(result)}`);
    return result.value;
  };

  it('accepts a bot (bot: true) and a server (bot false or missing) in the flamepaw era', () => {
    assert.deepEqual(ok('flamepaw', { id: '811073947382579200', token: TOKEN, bot: true, send_all: true }), {
      target: { kind: 'bot', id: '811073947382579200' },
      token: TOKEN,
      sendAll: true,
      sendNone: false,
    });
    assert.equal(ok('flamepaw', { id: '5', token: TOKEN, bot: false }).target.kind, 'server');
    assert.equal(ok('flamepaw', { id: '5', token: TOKEN }).target.kind, 'server');
    assert.equal(ok('flamepaw', { id: '5', token: TOKEN, send_none: true }).sendNone, true);
  });

  it('always means a bot in the v2 era, whatever bot says (even a wrong type)', () => {
    assert.equal(ok('v2', { id: '5', token: TOKEN }).target.kind, 'bot');
    assert.equal(ok('v2', { id: '5', token: TOKEN, bot: false }).target.kind, 'bot');
    assert.equal(ok('v2', { id: '5', token: TOKEN, bot: 'no' }).target.kind, 'bot');
  });

  it('behaves like encoding/json: keys match case-insensitively, null leaves a field unset, extras are ignored', () => {
    assert.deepEqual(ok('flamepaw', { ID: '7', Token: TOKEN, BOT: true, extra: [1] }).target, { kind: 'bot', id: '7' });
    assert.equal(ok('flamepaw', { id: '7', token: TOKEN, bot: null }).target.kind, 'server');
    assert.equal(ok('flamepaw', { id: '+0042', token: TOKEN, bot: true }).target.id, '42');
  });

  it('refuses text that is not JSON without quoting any of it', () => {
    assert.equal(refused(parseIdentify(frame('not json ' + TOKEN), 'flamepaw')), 'invalid character in JSON input');
    assert.equal(refused(parseIdentify(frame(''), 'v2')), 'unexpected end of JSON input');
  });

  it('refuses JSON that is not an object with Go text', () => {
    assert.equal(
      refused(parseIdentify(frame([1]), 'flamepaw')),
      'json: cannot unmarshal array into Go value of type types.WebsocketIdentifyPayload',
    );
    assert.equal(
      refused(parseIdentify(frame('"x"'), 'v2')),
      'json: cannot unmarshal string into Go value of type types.WebsocketIdentifyPayload',
    );
  });

  it('refuses wrong field types before anything else, as Go did', () => {
    assert.equal(
      refused(parseIdentify(frame({ id: 811073947382579200, token: TOKEN }), 'flamepaw')),
      'json: cannot unmarshal number into Go struct field WebsocketIdentifyPayload.id of type string',
    );
    assert.equal(
      refused(parseIdentify(frame({ id: '1', token: 5 }), 'v2')),
      'json: cannot unmarshal number into Go struct field WebsocketIdentifyPayload.token of type string',
    );
    assert.equal(
      refused(parseIdentify(frame({ id: '1', token: TOKEN, bot: 'yes' }), 'flamepaw')),
      'json: cannot unmarshal string into Go struct field WebsocketIdentifyPayload.bot of type bool',
    );
    assert.equal(
      refused(parseIdentify(frame({ id: 'x', token: TOKEN, send_all: 1 }), 'flamepaw')),
      'json: cannot unmarshal number into Go struct field WebsocketIdentifyPayload.send_all of type bool',
    );
  });

  it('then refuses an id that strconv.Atoi would not parse', () => {
    assert.equal(
      refused(parseIdentify(frame({ id: '', token: TOKEN }), 'v2')),
      'strconv.Atoi: parsing "": invalid syntax',
    );
    assert.equal(refused(parseIdentify(frame({ token: TOKEN }), 'v2')), 'strconv.Atoi: parsing "": invalid syntax');
    assert.equal(
      refused(parseIdentify(frame({ id: '12a', token: TOKEN }), 'flamepaw')),
      'strconv.Atoi: parsing "12a": invalid syntax',
    );
    assert.equal(
      refused(parseIdentify(frame({ id: '99999999999999999999', token: TOKEN }), 'flamepaw')),
      'strconv.Atoi: parsing "99999999999999999999": value out of range',
    );
  });

  it('then refuses id <= 0 or an empty token, never echoing the token', () => {
    assert.equal(
      refused(parseIdentify(frame({ id: '0', token: TOKEN }), 'flamepaw')),
      'Invalid ID or token sent. Got ID of 0 and a redacted api token',
    );
    assert.equal(
      refused(parseIdentify(frame({ id: '-5', token: TOKEN }), 'v2')),
      'Invalid ID or token sent. Got ID of -5 and a redacted api token',
    );
    assert.equal(
      refused(parseIdentify(frame({ id: '5', token: '' }), 'flamepaw')),
      'Invalid ID or token sent. Got ID of 5 and an empty api token',
    );
  });

  it('never puts the token in any detail, even when it was sent as the id', () => {
    const bodies: unknown[] = [
      { id: TOKEN, token: TOKEN },
      { id: `1${TOKEN}`, token: TOKEN },
      { id: '0', token: TOKEN },
      { id: 1, token: TOKEN },
      `{"id":"1","token":"${TOKEN}"`,
      { id: '-1', token: TOKEN, bot: 'x' },
    ];
    for (const era of ['v2', 'flamepaw'] as const) {
      for (const body of bodies) {
        const detail = refused(parseIdentify(frame(body), era));
        assert.ok(!detail.includes(TOKEN), `${era}: ${detail}`);
      }
    }
  });
});

describe('fates codec: the gateway codec', () => {
  it('routes every frame, text or binary, to the frame handler as bytes', () => {
    const data = frame({ id: '1' });
    assert.deepEqual(fatesCodec.decode(data, false), { event: FATES_FRAME, data });
    assert.deepEqual(fatesCodec.decode(data, true), { event: FATES_FRAME, data });
    assert.equal(fatesCodec.encode({ a: 1 }), '{"a":1}');
    assert.equal(fatesCodec.encode('x'), 'x');
  });
});
