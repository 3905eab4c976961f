import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Store } from '../../src/core/store/store.js';
import { FelixTokens } from '../../src/protocols/felix/felix-tokens.js';
import { HatsuData } from '../../src/protocols/hatsu/hatsu-data.js';
import { startApp, type TestApp } from '../helpers/app.js';
import { FatesClient, newBot, V2_PATH } from '../helpers/fates-client.js';
import { createToken } from '../helpers/felix-client.js';
import { connectHatsu, putSession, putUser } from '../helpers/hatsu-client.js';
import { readyStatus } from '../helpers/http.js';
import { killSubscribers, RedisProcess, redisSuite, uniquePrefix } from '../helpers/redis.js';
import { waitFor } from '../helpers/wait.js';
import { WsTestClient } from '../helpers/ws-client.js';

/**
 * Pub/sub loses what is published while a subscriber is reconnecting. Credentials
 * removed during such a gap are caught up when the bus rejoins: here they are removed
 * from the store without any announcement at all, so only the rejoin check can act.
 */
describe('revocations missed during a bus gap are caught up on rejoin', await redisSuite(), () => {
  let redis: RedisProcess;
  let app: TestApp;

  before(async () => {
    redis = await RedisProcess.start();
    app = await startApp({ REDIS_URL: redis.url, REDIS_KEY_PREFIX: uniquePrefix() });
    await waitFor(async () => (await readyStatus(app)) === 200, { what: 'ready' });
  });

  after(async () => {
    await app.close();
    await redis.stop();
  });

  it('closes Fates, Felix and hatsu connections whose credentials are gone', async () => {
    const bot = await newBot(app);
    const { client: fates } = await FatesClient.ready(app, V2_PATH, { id: bot.id, token: bot.token });

    const felixToken = await createToken(app);
    const felix = await WsTestClient.connect(app.ws('/felix'), { headers: { Authorization: felixToken.token } });

    const user = '300000000000000001';
    await putUser(app, user);
    await putSession(app, 'rejoin-session', user);
    const hatsu = await connectHatsu(app, 'rejoin-session');

    const store = app.app.get(Store);
    assert.equal(await store.delete(`fates:token:bot:${bot.id}`), true);
    assert.equal(await app.app.get(FelixTokens).revoke(felixToken.id), true);
    assert.equal(await app.app.get(HatsuData).deleteSession('rejoin-session'), true);

    // Drop the instance's subscriber connection; it reconnects and resubscribes by itself.
    assert.ok((await killSubscribers(redis.url)) >= 1);

    assert.equal((await fates.ws.waitClose(5000)).code, 4004);
    assert.equal((await felix.waitClose(5000)).code, 1008);
    assert.equal((await hatsu.ws.waitClose(5000)).code, 4002);
  });
});
