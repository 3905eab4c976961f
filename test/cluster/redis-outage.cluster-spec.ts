import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { instanceId, startApp, type TestApp } from '../helpers/app.js';
import { admin, assertCleanUnavailable, call, waitReady, type ConnectionsPage } from '../helpers/http.js';
import { connectJac, expectMessages, issueToken, type JacSocket } from '../helpers/jac-client.js';
import { RedisProcess, redisSuite, uniquePrefix } from '../helpers/redis.js';
import { unhandledRejections } from '../helpers/rejections.js';
import { waitFor } from '../helpers/wait.js';

describe('a Redis outage under two instances', await redisSuite(), () => {
  const rejections = unhandledRejections();
  const sockets: JacSocket[] = [];
  let redis: RedisProcess;
  let env: Record<string, string>;
  let a: TestApp;
  let b: TestApp;
  /** Started while Redis is down. */
  let c: TestApp | undefined;
  let userC: { token: string; rootId: string };
  let userOnC: JacSocket;
  /** On A: the publisher, and a socket of the user it writes to. */
  let pubA: JacSocket;
  let userOnA: JacSocket;
  /** On B: a socket of another user, only reachable across instances. */
  let userOnB: JacSocket;
  let probes = 0;

  async function open(app: TestApp, token?: { token: string; rootId: string }): Promise<JacSocket> {
    const socket = await connectJac(app, { token });
    sockets.push(socket);
    return socket;
  }

  /**
   * Polls until a publish from A reaches `target` on another instance, then proves
   * delivery is exactly once again.
   */
  async function awaitCrossInstanceDelivery(target: JacSocket, timeoutMs: number): Promise<void> {
    const sent = new Set<string>();
    await waitFor(
      async () => {
        const probe = `probe-${++probes}`;
        sent.add(probe);
        pubA.ws.send({ type: 'user', root_ids: [target.rootId], data: { probe } });
        try {
          const got = await target.ws.next<{ probe?: string }>(200);
          assert.ok(got.probe !== undefined && sent.has(got.probe), `unexpected ${JSON.stringify(got)}`);
          return true;
        } catch (err) {
          if (err instanceof assert.AssertionError) throw err;
          return false;
        }
      },
      { timeoutMs, intervalMs: 10, what: 'a publish from A to reach B' },
    );
    // Exactly once from here on: earlier probes may still be in flight, but nothing else.
    const data = { after: 'recovery' };
    const marker = { marker: 'after-recovery' };
    pubA.ws.send({ type: 'user', root_ids: [target.rootId], data });
    pubA.ws.send({ type: 'user', root_ids: [target.rootId], data: marker });
    for (;;) {
      const got = await target.ws.next<{ probe?: string }>();
      if (got.probe !== undefined && sent.has(got.probe)) continue;
      assert.deepEqual(got, data);
      break;
    }
    await expectMessages(target, [marker]);
  }

  before(async () => {
    redis = await RedisProcess.start();
    env = { REDIS_URL: redis.url, REDIS_KEY_PREFIX: uniquePrefix() };
    [a, b] = await Promise.all([startApp(env), startApp(env)]);
    const publisher = await issueToken(a);
    const userA = await issueToken(a);
    const userB = await issueToken(b);
    userC = await issueToken(a);
    pubA = await open(a, publisher);
    userOnA = await open(a, userA);
    userOnB = await open(b, userB);
  });

  after(async () => {
    await Promise.all(sockets.map((s) => s.ws.close()));
    await Promise.all([a?.close(), b?.close(), c?.close()]);
    await redis?.stop();
  });

  it('is ready, and delivers across instances, while Redis is up', async () => {
    const [readyA, readyB] = await Promise.all([waitReady(a, 200), waitReady(b, 200)]);
    assert.deepEqual(readyA.json, { status: 'ready', engine: 'redis' });
    assert.deepEqual(readyB.json, { status: 'ready', engine: 'redis' });
    await awaitCrossInstanceDelivery(userOnB, 5000);
  });

  it('turns not-ready on both instances when Redis stops', async () => {
    await redis.stop();
    const [readyA, readyB] = await Promise.all([waitReady(a, 503, 5000), waitReady(b, 503, 5000)]);
    assertCleanUnavailable(readyA);
    assertCleanUnavailable(readyB);
    // Liveness is not readiness.
    assert.equal((await call(a, 'GET', '/health/live')).status, 200);
  });

  it('starts another instance while Redis is down, not ready but serving its own sockets', async () => {
    c = await startApp(env);
    assertCleanUnavailable(await call(c, 'GET', '/health/ready'));
    userOnC = await open(c, userC);
    assert.equal(userOnC.rootId, userC.rootId);
  });

  it('keeps delivering between sockets of the same instance', async () => {
    const data = { during: 'outage' };
    const marker = { marker: 'outage-marker' };
    pubA.ws.send({ type: 'user', root_ids: [userOnA.rootId], data });
    pubA.ws.send({ type: 'user', root_ids: [userOnA.rootId], data: marker });
    await expectMessages(userOnA, [data, marker]);
    // The publisher is not told about the lost remote copies, and stays connected.
    pubA.ws.send({ type: 'connection' });
    assert.deepEqual(await pubA.ws.next(), {
      type: 'connection',
      data: { client_id: pubA.clientId, root_id: pubA.rootId, channel_id: pubA.channelId },
    });
  });

  it('answers admin writes and the cluster view with 503 JSON, without a stack trace', async () => {
    const notify = await admin(a, 'POST', '/admin/jac/notify', { root_ids: [userOnA.rootId], data: { refused: true } });
    assertCleanUnavailable(notify);
    for (const app of [a, b]) assertCleanUnavailable(await admin(app, 'GET', '/admin/connections'));
    // Closing a client held by the other instance needs Redis too.
    assertCleanUnavailable(await admin(a, 'DELETE', `/admin/connections/${encodeURIComponent(userOnB.clientId)}`));
    // A refused notify delivered nothing locally either.
    pubA.ws.send({ type: 'user', root_ids: [userOnA.rootId], data: { marker: 'after-refusal' } });
    await expectMessages(userOnA, [{ marker: 'after-refusal' }]);
  });

  it('is ready again, and delivers across instances again, once Redis is back', async () => {
    await redis.start();
    const ready = await Promise.all([a, b, c as TestApp].map((app) => waitReady(app, 200)));
    assert.deepEqual(
      ready.map((r) => r.status),
      [200, 200, 200],
    );
    await awaitCrossInstanceDelivery(userOnB, 8000);
    // Including the instance that never saw Redis before.
    await awaitCrossInstanceDelivery(userOnC, 8000);
    const notify = await admin(a, 'POST', '/admin/jac/notify', {
      root_ids: [userOnB.rootId],
      data: { notified: 'again' },
    });
    assert.equal(notify.status, 202, notify.text);
    await expectMessages(userOnB, [{ notified: 'again' }]);
  });

  it("resyncs the registry: both instances' clients are listed again", async () => {
    const expected = new Map([
      [pubA.clientId, instanceId(a)],
      [userOnA.clientId, instanceId(a)],
      [userOnB.clientId, instanceId(b)],
      [userOnC.clientId, instanceId(c as TestApp)],
    ]);
    for (const app of [a, b, c as TestApp]) {
      const page = await waitFor(
        async () => {
          const answer = await admin(app, 'GET', '/admin/connections');
          if (answer.status !== 200) return undefined;
          const body = answer.json as ConnectionsPage;
          return body.total === expected.size ? body : undefined;
        },
        { timeoutMs: 5000, what: 'the registry to be resynced' },
      );
      assert.deepEqual(page.by_instance, {
        [instanceId(a)]: 2,
        [instanceId(b)]: 1,
        [instanceId(c as TestApp)]: 1,
      });
      for (const client of page.clients) assert.equal(client.instance, expected.get(client.id), client.id);
    }
    // And a client on B can be closed from A again.
    const victim = await open(b);
    await waitFor(
      async () => {
        const answer = await admin(a, 'DELETE', `/admin/connections/${encodeURIComponent(victim.clientId)}`);
        return answer.status === 204;
      },
      { what: 'DELETE of a client on B to succeed' },
    );
    assert.equal((await victim.ws.waitClose()).code, 1000);
  });

  it('saw no unhandled promise rejection', () => rejections.assertNone());
});
