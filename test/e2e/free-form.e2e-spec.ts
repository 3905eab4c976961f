// Admin bodies documented as "any JSON" (jac notify's data, hatsu guild and channel objects and
// dispatch `d`, Felix status shards) reach the clients exactly as they were sent: keys that name
// Object.prototype members (`__proto__` included) are data like any other.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { adminAuth, startApp, type TestApp } from '../helpers/app.js';
import { connectFelix, createToken } from '../helpers/felix-client.js';
import { connectHatsu, HatsuClient, newUser, putSession, userDocument } from '../helpers/hatsu-client.js';
import { snowflake } from '../helpers/ids.js';
import { connectJac, issueToken } from '../helpers/jac-client.js';

/** Each key is an Object.prototype member (or `prototype`); written out, as a client would send them. */
const PAIRS = [
  '"constructor":1',
  '"toString":"two"',
  '"valueOf":[3]',
  '"hasOwnProperty":{"four":null}',
  '"prototype":true',
  '"__proto__":{"polluted":"yes"}',
];
/** A free-form object with every such key at the top and one level down. */
const FREE = `{${PAIRS.join(',')},"nested":{${PAIRS.join(',')}}}`;

/** Sends `json` as it is written (a JS object literal could not hold an own `__proto__`). */
async function sendRaw(app: TestApp, method: string, path: string, json: string): Promise<Response> {
  return fetch(`${app.http}${path}`, {
    method,
    headers: { ...adminAuth, 'Content-Type': 'application/json' },
    body: json,
  });
}

async function expectStatus(answer: Response, status: number): Promise<void> {
  assert.equal(answer.status, status, await answer.text());
}

/** Every pair is in the frame as written, and the frame parses to the keys as sent. */
function assertKept(frame: string): void {
  for (const pair of PAIRS) assert.ok(frame.includes(pair), `${pair} in ${frame}`);
  assert.ok(frame.includes(FREE), `the object as sent in ${frame}`);
}

describe('free-form admin bodies', () => {
  let app: TestApp;
  before(async () => {
    app = await startApp();
  });
  after(() => app.close());

  it('POST /admin/jac/notify delivers data byte for byte, as a socket publish does', async () => {
    const token = await issueToken(app);
    const target = await connectJac(app, { token });
    await expectStatus(
      await sendRaw(app, 'POST', '/admin/jac/notify', `{"root_ids":["${token.rootId}"],"data":${FREE}}`),
      202,
    );
    const fromAdmin = (await target.ws.nextRaw()).data.toString('utf8');
    assert.equal(fromAdmin, FREE);

    const publisher = await connectJac(app, { token: await issueToken(app) });
    publisher.ws.send(`{"type":"user","root_ids":["${token.rootId}"],"data":${FREE}}`);
    assert.equal((await target.ws.nextRaw()).data.toString('utf8'), fromAdmin);
    assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
    await Promise.all([target.ws.close(), publisher.ws.close()]);
  });

  it('PUT /admin/hatsu/guilds/:id keeps the guild and channel objects as given', async () => {
    const user = await newUser(app);
    const guildId = snowflake();
    await expectStatus(
      await sendRaw(
        app,
        'PUT',
        `/admin/hatsu/guilds/${guildId}`,
        `{"guild":${FREE},"channels":[${FREE}],"members":["${user.userId}"]}`,
      ),
      204,
    );
    const client = await connectHatsu(app, user.sessionId);
    // A member whose guild was stored before it connected gets the guild in its GUILD_INIT.
    const raw = (await client.ws.nextRaw()).data.toString('utf8');
    const init = JSON.parse(raw) as { t: string; d: Record<string, unknown> & { channels: unknown[] } };
    assert.equal(init.t, 'GUILD_INIT', raw);
    assertKept(raw);
    const expected = JSON.parse(FREE) as Record<string, unknown>;
    assert.deepEqual(Object.keys(init.d), [...Object.keys(expected), '_id', 'channels']);
    assert.deepEqual(init.d.channels, [expected]);
    await client.close();
  });

  it('POST /admin/hatsu/dispatch sends d byte for byte', async () => {
    const user = await newUser(app);
    const client = await connectHatsu(app, user.sessionId);
    await expectStatus(
      await sendRaw(
        app,
        'POST',
        '/admin/hatsu/dispatch',
        `{"t":"CUSTOM","d":${FREE},"to":{"user_id":"${user.userId}"}}`,
      ),
      202,
    );
    const raw = (await client.ws.nextRaw()).data.toString('utf8');
    assert.equal((JSON.parse(raw) as { t: string }).t, 'CUSTOM', raw);
    assertKept(raw);
    await client.close();
  });

  it('PUT /admin/felix/status keeps every key of each shard in the heartbeat ACK', async () => {
    const token = await createToken(app);
    const felix = await connectFelix(app.ws('/felix'), token.token);
    const shard = `{"id":0,"ping":12,${PAIRS.join(',')}}`;
    await expectStatus(await sendRaw(app, 'PUT', '/admin/felix/status', `{"shards":[${shard}],"guildsCount":1}`), 204);
    felix.send({ code: 20001 });
    const raw = (await felix.nextRaw()).data.toString('utf8');
    assert.ok(raw.includes(shard), `the shard as sent in ${raw}`);
    const ack = JSON.parse(raw) as { data: { shards: Record<string, unknown>[] } };
    assert.deepEqual(ack.data.shards, [JSON.parse(shard)]);
    await felix.close();
  });

  it('PUT /admin/hatsu/users/:id takes fields named like Object.prototype members as open-ended fields', async () => {
    const userId = snowflake();
    const known = JSON.stringify(userDocument(`user-${userId}`)).slice(1, -1);
    await expectStatus(await sendRaw(app, 'PUT', `/admin/hatsu/users/${userId}`, '{"constructor": 1}'), 204);
    await expectStatus(await sendRaw(app, 'PUT', `/admin/hatsu/users/${userId}`, `{${known},${PAIRS.join(',')}}`), 204);
    await putSession(app, `session-${userId}`, userId);
    const client = await HatsuClient.connect(app.ws('/hatsu'));
    client.identify(`session-${userId}`);
    await client.expect('HELLO');
    // READY's d is the stored user.
    const raw = (await client.ws.nextRaw()).data.toString('utf8');
    assert.equal((JSON.parse(raw) as { t: string }).t, 'READY', raw);
    for (const pair of PAIRS) assert.ok(raw.includes(pair), `${pair} in ${raw}`);
    await client.close();
  });

  it('PUT /admin/hatsu/users/:id still refuses a known field of the wrong type', async () => {
    const answer = await sendRaw(app, 'PUT', `/admin/hatsu/users/${snowflake()}`, '{"constructor":1,"flags":"x"}');
    assert.equal(answer.status, 400);
    assert.deepEqual(await answer.json(), {
      statusCode: 400,
      error: 'Bad Request',
      message: ['flags: must be an integer'],
    });
  });
});
