import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Engine } from '../../src/core/engine/engine.js';
import { AdminStream, type StreamEvent } from '../helpers/admin-stream.js';
import { adminAuth, startApp, type TestApp } from '../helpers/app.js';
import { call } from '../helpers/http.js';
import { connectJac, issueToken } from '../helpers/jac-client.js';
import { deleteKeys } from '../helpers/redis-cleanup.js';
import { SHARED_REDIS_URL, redisSuite, uniquePrefix } from '../helpers/redis.js';

interface Instance {
  id: string;
  engine: string;
  self: boolean;
  redis: Record<string, boolean> | null;
  connections: { total: number; by_protocol: Record<string, number> };
}

const instancesOf = (event: StreamEvent): Instance[] => (event.data as { instances: Instance[] }).instances;

describe('the admin stream across instances on Redis', await redisSuite(), () => {
  const prefix = uniquePrefix();
  let a: TestApp;
  let b: TestApp;
  let idB: string;

  before(async () => {
    const env = { REDIS_URL: SHARED_REDIS_URL, REDIS_KEY_PREFIX: prefix };
    [a, b] = await Promise.all([startApp(env), startApp(env)]);
    idB = b.app.get(Engine).instanceId;
  });

  after(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await deleteKeys(SHARED_REDIS_URL, prefix);
  });

  it('lists every instance with its engine, Redis links and connections, and the feed from the others', async () => {
    const stream = await AdminStream.open(a);
    try {
      const both = (e: StreamEvent) => e.event === 'instances' && instancesOf(e).length === 2;
      const [self, other] = instancesOf(await stream.next(both, 10_000));
      assert.equal(self?.id, a.app.get(Engine).instanceId);
      assert.equal(self?.self, true);
      assert.equal(other?.id, idB);
      assert.equal(other?.self, false);
      assert.equal(other?.engine, 'redis');
      assert.deepEqual(other?.redis, { command: true, subscriber: true, bus: true });

      // A client on B shows in A's counts.
      const token = await issueToken(b);
      const jac = await connectJac(b, { token });
      const counted = await stream.next(
        (e) => e.event === 'connections' && (e.data as { by_instance: Record<string, number> }).by_instance[idB] === 1,
        10_000,
      );
      assert.equal((counted.data as { by_protocol: Record<string, number> }).by_protocol['jac'], 1);

      // A publish taken by B for a client that also has a connection on A reaches A's feed,
      // marked as from another instance.
      const onA = await connectJac(a, { token });
      await stream.next(
        (e) =>
          e.event === 'connections' && (e.data as { by_protocol: Record<string, number> }).by_protocol['jac'] === 2,
        10_000,
      );
      const answer = await call(b, 'POST', '/admin/jac/notify', {
        headers: adminAuth,
        body: { root_ids: [token.rootId], data: { via: 'b' } },
      });
      assert.equal(answer.status, 202);
      assert.deepEqual(await jac.ws.next(), { via: 'b' });
      assert.deepEqual(await onA.ws.next(), { via: 'b' });
      const published = (await stream.next('publish', 10_000)).data as { topic: string; local: boolean };
      assert.equal(published.topic, 'jac');
      assert.equal(published.local, false);
      await Promise.all([jac.ws.close(), onA.ws.close()]);
    } finally {
      await stream.close();
    }
  });

  it('drops an instance that has not been heard from for five seconds', async () => {
    const stream = await AdminStream.open(a);
    const extra = await startApp({ REDIS_URL: SHARED_REDIS_URL, REDIS_KEY_PREFIX: prefix });
    try {
      const idExtra = extra.app.get(Engine).instanceId;
      const has = (present: boolean) => (e: StreamEvent) =>
        e.event === 'instances' && instancesOf(e).some((i) => i.id === idExtra) === present;
      await stream.next(has(true), 10_000);
      await extra.close();
      const after = instancesOf(await stream.next(has(false), 15_000));
      assert.ok(
        after.some((i) => i.id === idB),
        'the others stay',
      );
    } finally {
      await extra.close();
      await stream.close();
    }
  });
});
