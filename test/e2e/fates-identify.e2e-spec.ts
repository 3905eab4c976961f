import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PROTOCOL_MODULES } from '../../src/app.module.js';
import { FatesModule } from '../../src/protocols/fates/fates.module.js';
import { startApp, type TestApp } from '../helpers/app.js';
import {
  FatesClient,
  FLAMEPAW_PATH,
  INVALID_AUTH,
  newBot,
  newServer,
  seenDetails,
  V2_PATH,
  type Control,
} from '../helpers/fates-client.js';
import { snowflake } from '../helpers/ids.js';

const IDENTITY_V2 =
  'Send Bot ID and API Token as id and token keys in json format. Set send_all to true if you want all events to be ' +
  'sent during startup but this may cause disconnects, more memory usage, more ratelimits and instability. Set ' +
  'send_none to true to not send any events at all after sending prior ones if send_all is set to true';
const IDENTITY_FLAMEPAW = `${IDENTITY_V2}. Set bot to true for bot and false for server`;
const LIMIT = 20;

describe('fates: connect and identify', () => {
  let app: TestApp;
  const tokens: string[] = [];

  before(async () => {
    // Many refusals from one address on purpose: the per-IP throttle has its own test.
    app = await startApp({ FATES_RATE_LIMIT: String(LIMIT), AUTH_FAILURE_LIMIT: '0' }, { protocols: [FatesModule] });
  });
  after(() => app.close());

  async function bot(): Promise<{ id: string; token: string }> {
    const created = await newBot(app);
    tokens.push(created.token);
    return created;
  }

  async function server(): Promise<{ id: string; token: string }> {
    const created = await newServer(app);
    tokens.push(created.token);
    return created;
  }

  /** Sends `body` as the identify and expects a refusal with `code`/`detail`, then 4004. */
  async function expectRefused(path: string, body: unknown, code: string, detail: string | RegExp): Promise<void> {
    const client = await FatesClient.open(app, path);
    client.send(body);
    const control = await client.control();
    assert.equal(control.code, code, `${path} ${JSON.stringify(body)}: ${JSON.stringify(control)}`);
    if (typeof detail === 'string') assert.equal(control.detail, detail);
    else assert.match(control.detail, detail);
    assert.equal(control.requests_remaining, -1, 'before a successful identify requests_remaining is -1');
    await client.expectClose(4004, INVALID_AUTH);
  }

  it('sends the identity payload first on every path, with the era text and requests_remaining -1', async () => {
    const cases: [string, string][] = [
      ['/api/ws', IDENTITY_V2],
      ['/api/ws/', IDENTITY_V2],
      ['/api/ws?v=2', IDENTITY_V2],
      ['/flamepaw/ws', IDENTITY_FLAMEPAW],
      ['/flamepaw/ws/', IDENTITY_FLAMEPAW],
      ['/api/flamepaw/ws', IDENTITY_FLAMEPAW],
      ['/api/flamepaw/ws/', IDENTITY_FLAMEPAW],
      ['/api/dragon/ws', IDENTITY_FLAMEPAW],
      ['/api/dragon/ws/', IDENTITY_FLAMEPAW],
    ];
    for (const [path, detail] of cases) {
      const client = await FatesClient.open(app, path);
      assert.deepEqual(
        { ...client.identity, ts: 0 },
        { code: 'identity', detail, ts: 0, requests_remaining: -1, control: true },
        path,
      );
      assert.equal(client.frames[0], JSON.stringify(client.identity), 'compact JSON, one payload per frame');
      await client.close();
    }
  });

  it('is served by the default application (FatesModule is in PROTOCOL_MODULES)', async () => {
    assert.ok(PROTOCOL_MODULES.includes(FatesModule));
    const full = await startApp();
    try {
      const client = await FatesClient.open(full, '/api/dragon/ws');
      assert.equal(client.identity.detail, IDENTITY_FLAMEPAW);
      await client.close();
    } finally {
      await full.close();
    }
  });

  for (const [era, path] of [
    ['v2', V2_PATH],
    ['flamepaw', FLAMEPAW_PATH],
  ] as const) {
    describe(`refusals, ${era} era`, () => {
      it('refuses a frame that is not JSON', async () => {
        await expectRefused(path, 'hello there', 'invalid_payload', 'invalid character in JSON input');
      });

      it('refuses a numeric id (the id must be a JSON string)', async () => {
        const { id, token } = await bot();
        await expectRefused(
          path,
          JSON.stringify({ id: Number(id), token, bot: true }),
          'invalid_payload',
          'json: cannot unmarshal number into Go struct field WebsocketIdentifyPayload.id of type string',
        );
      });

      it('refuses an empty id and a missing one', async () => {
        const { token } = await bot();
        await expectRefused(
          path,
          { id: '', token, bot: true },
          'invalid_payload',
          'strconv.Atoi: parsing "": invalid syntax',
        );
        await expectRefused(path, { token, bot: true }, 'invalid_payload', 'strconv.Atoi: parsing "": invalid syntax');
        await expectRefused(
          path,
          { id: 'abc', token },
          'invalid_payload',
          'strconv.Atoi: parsing "abc": invalid syntax',
        );
      });

      it('refuses id 0 and negative ids', async () => {
        const { token } = await bot();
        await expectRefused(
          path,
          { id: '0', token, bot: true },
          'invalid_payload',
          'Invalid ID or token sent. Got ID of 0 and a redacted api token',
        );
        await expectRefused(
          path,
          { id: '-4', token, bot: true },
          'invalid_payload',
          'Invalid ID or token sent. Got ID of -4 and a redacted api token',
        );
      });

      it('refuses an empty token', async () => {
        const { id } = await bot();
        await expectRefused(
          path,
          { id, token: '', bot: true },
          'invalid_payload',
          `Invalid ID or token sent. Got ID of ${id} and an empty api token`,
        );
      });

      it('refuses a wrong token and an unknown id alike', async () => {
        const { id } = await bot();
        await expectRefused(path, { id, token: 'wrong', bot: true }, 'invalid_auth', 'no rows in result set');
        await expectRefused(path, { id: snowflake(), token: 'x', bot: true }, 'invalid_auth', 'no rows in result set');
      });

      it('refuses wrong field types', async () => {
        const { id, token } = await bot();
        await expectRefused(
          path,
          { id, token, send_all: 'yes', bot: true },
          'invalid_payload',
          'json: cannot unmarshal string into Go struct field WebsocketIdentifyPayload.send_all of type bool',
        );
        await expectRefused(
          path,
          [id, token],
          'invalid_payload',
          'json: cannot unmarshal array into Go value of type types.WebsocketIdentifyPayload',
        );
      });
    });
  }

  it('flamepaw: bot true looks up bots, bot false or missing looks up servers', async () => {
    const b = await bot();
    const s = await server();
    await expectRefused(
      FLAMEPAW_PATH,
      { id: b.id, token: b.token, bot: false },
      'invalid_auth',
      'no rows in result set',
    );
    await expectRefused(FLAMEPAW_PATH, { id: b.id, token: b.token }, 'invalid_auth', 'no rows in result set');
    await expectRefused(
      FLAMEPAW_PATH,
      { id: s.id, token: s.token, bot: true },
      'invalid_auth',
      'no rows in result set',
    );
    const asBot = await FatesClient.ready(app, FLAMEPAW_PATH, { id: b.id, token: b.token, bot: true });
    const asServer = await FatesClient.ready(app, '/api/flamepaw/ws', { id: s.id, token: s.token, bot: false });
    const implicitServer = await FatesClient.ready(app, '/api/dragon/ws', { id: s.id, token: s.token });
    await Promise.all([asBot.client.close(), asServer.client.close(), implicitServer.client.close()]);
  });

  it('v2: bot is ignored and the id is always a bot', async () => {
    const b = await bot();
    const s = await server();
    const ready = await FatesClient.ready(app, V2_PATH, { id: b.id, token: b.token, bot: false });
    await ready.client.close();
    await expectRefused(V2_PATH, { id: s.id, token: s.token, bot: false }, 'invalid_auth', 'no rows in result set');
    const typed = await FatesClient.ready(app, V2_PATH, { id: b.id, token: b.token, bot: 'not a bool' });
    await typed.client.close();
  });

  it('ready reports the requests made and remaining; leading zeros in the id do not matter', async () => {
    const { id, token } = await bot();
    const first = await FatesClient.ready(app, FLAMEPAW_PATH, { id, token, bot: true });
    assert.equal(first.ready.detail, 'Waiting for messages with 2 already made');
    assert.equal(first.ready.requests_remaining, LIMIT - 2);
    const second = await FatesClient.ready(app, V2_PATH, { id: `00${id}`, token });
    assert.equal(second.ready.detail, 'Waiting for messages with 4 already made', 'the budget is per bot, both eras');
    assert.equal(second.ready.requests_remaining, LIMIT - 4);
    await Promise.all([first.client.close(), second.client.close()]);
  });

  it('a failed identify costs no budget', async () => {
    const { id, token } = await bot();
    for (let i = 0; i < LIMIT; i++) {
      await expectRefused(
        i % 2 ? V2_PATH : FLAMEPAW_PATH,
        { id, token: `${token}-wrong`, bot: true },
        'invalid_auth',
        /rows/,
      );
    }
    const { client, ready } = await FatesClient.ready(app, FLAMEPAW_PATH, { id, token, bot: true });
    assert.equal(ready.requests_remaining, LIMIT - 2);
    await client.close();
  });

  it('identify retries reach the rate limit: ratelimited, then 4012', async () => {
    const { id, token } = await bot();
    const other = await bot();
    for (let made = 2; made <= LIMIT; made += 2) {
      const { client, ready } = await FatesClient.ready(app, made % 4 ? V2_PATH : FLAMEPAW_PATH, {
        id,
        token,
        bot: true,
      });
      assert.equal(ready.requests_remaining, LIMIT - made);
      await client.close();
    }
    const client = await FatesClient.open(app, FLAMEPAW_PATH);
    const control = await client.identify({ id, token, bot: true });
    assert.deepEqual(
      { ...control, ts: 0 },
      {
        code: 'ratelimited',
        detail: `Past max requests that can be sent (${LIMIT + 2})`,
        ts: 0,
        requests_remaining: LIMIT - (LIMIT + 2),
        control: true,
      },
    );
    await client.expectClose(4012, 'Ratelimited');
    // The budget is per bot: another bot is unaffected.
    const fine = await FatesClient.ready(app, V2_PATH, { id: other.id, token: other.token });
    assert.equal(fine.ready.requests_remaining, LIMIT - 2);
    await fine.client.close();
  });

  it('chatter after identify reaches the rate limit: each message costs 1, a second identify too', async () => {
    for (const path of [FLAMEPAW_PATH, V2_PATH]) {
      const { id, token } = await bot();
      const { client, ready } = await FatesClient.ready(app, path, { id, token, bot: true });
      assert.equal(ready.requests_remaining, LIMIT - 2);
      // A second identify is not processed, only counted: no answer.
      client.send({ id, token, bot: true });
      for (let made = 4; made <= LIMIT + 1; made++) client.send(made % 2 ? 'anything at all' : { op: 'hello' });
      const control: Control = await client.control();
      assert.equal(control.code, 'ratelimited', path);
      assert.equal(control.detail, `Past max requests that can be sent (${LIMIT + 1})`);
      assert.equal(control.requests_remaining, -1);
      await client.expectClose(4012, 'Ratelimited');
    }
  });

  it('messages sent while identify runs are counted once it succeeds', async () => {
    const { id, token } = await bot();
    const client = await FatesClient.open(app, V2_PATH);
    client.send({ id, token });
    for (let i = 0; i < LIMIT - 1; i++) client.send('x');
    const ready = await client.control();
    assert.equal(ready.code, 'ready');
    const limited = await client.control();
    assert.equal(limited.code, 'ratelimited');
    assert.equal(limited.detail, `Past max requests that can be sent (${LIMIT + 1})`);
    await client.expectClose(4012, 'Ratelimited');
  });

  it('never put a token in any detail', () => {
    assert.ok(seenDetails.length > 50, `saw ${seenDetails.length} control payloads`);
    assert.ok(tokens.length > 10);
    for (const detail of seenDetails) {
      for (const token of tokens) assert.ok(!detail.includes(token), `detail leaked a token: ${detail}`);
    }
  });
});
