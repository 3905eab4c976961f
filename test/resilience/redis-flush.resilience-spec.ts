import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { instanceId, startApp, type TestApp } from '../helpers/app.js';
import { figure } from '../helpers/figure.js';
import { HatsuClient } from '../helpers/hatsu-client.js';
import { admin, waitReady, type ConnectionsPage } from '../helpers/http.js';
import { connectJac, expectMessages, issueToken, type JacSocket } from '../helpers/jac-client.js';
import { metricValue, scrapeMetrics } from '../helpers/prom-text.js';
import { uniquePrefix } from '../helpers/redis.js';
import { unhandledRejections } from '../helpers/rejections.js';
import { openFaultyTopology, topologyLabel, topologySuite, TOPOLOGIES, type FaultyRedis } from '../helpers/topology.js';
import { waitFor } from '../helpers/wait.js';

/** The registry's heartbeat: the view must be whole again within one, plus the rewrite itself. */
const HEARTBEAT_MS = 2000;
const HEAL_BOUND_MS = HEARTBEAT_MS + 1500;

for (const topology of TOPOLOGIES) {
  describe(
    `the cluster view after Redis loses its data, on ${topologyLabel(topology)}`,
    await topologySuite(topology),
    () => {
      const rejections = unhandledRejections();
      const prefix = uniquePrefix();
      let redis: FaultyRedis;
      let a: TestApp;
      let b: TestApp;
      let publisher: JacSocket;
      let onB: JacSocket;
      let victim: JacSocket;
      let hatsuOnA: HatsuClient;

      async function view(app: TestApp): Promise<ConnectionsPage> {
        const answer = await admin(app, 'GET', '/admin/connections?limit=1000');
        assert.equal(answer.status, 200, answer.text);
        return answer.json as ConnectionsPage;
      }

      /** Both instances' clients, as A's view has them: A's jac and hatsu sockets, and B's two. */
      async function whole(app: TestApp): Promise<boolean> {
        const page = await view(app);
        return page.by_instance[instanceId(a)] === 2 && page.by_instance[instanceId(b)] === 2;
      }

      async function offered(app: TestApp): Promise<number> {
        const answer = await admin(app, 'GET', '/available');
        assert.equal(answer.status, 200, answer.text);
        return (answer.json as { port: number }).port;
      }

      before(async () => {
        redis = await openFaultyTopology(topology);
        const env = redis.env(prefix);
        [a, b] = await Promise.all([startApp(env), startApp(env)]);
        await Promise.all([waitReady(a, 200, 15_000), waitReady(b, 200, 15_000)]);
        await redis.busSubscribers(prefix, 2);
        publisher = await connectJac(a, { token: await issueToken(a) });
        onB = await connectJac(b, { token: await issueToken(b) });
        victim = await connectJac(b, { token: await issueToken(b) });
        // An open hatsu socket on A is load: B, with none, is the instance A's `/available` offers.
        hatsuOnA = await HatsuClient.connect(a.ws('/hatsu'));
        await waitFor(() => whole(a), { what: "A's view to list every client" });
        await waitFor(async () => (await offered(a)) === b.port, { what: 'B to be offered' });
      });

      after(async () => {
        await Promise.all([publisher, onB, victim].map((s) => s?.ws.close().catch(() => undefined)));
        await hatsuOnA?.close().catch(() => undefined);
        await Promise.all([a?.close(), b?.close()]);
        await redis?.deleteKeys(prefix);
        await redis?.close();
      });

      it('rewrites every instance part within one heartbeat, with every client still connected', async () => {
        await redis.flushAll();
        const flushed = performance.now();
        await waitFor(() => whole(a), {
          what: "A's view to list every client again",
          timeoutMs: 10_000,
          intervalMs: 20,
        });
        const healed = performance.now() - flushed;
        figure('redis-flush', `${topology}_view_whole_again`, healed, 'ms');
        assert.ok(healed < HEAL_BOUND_MS, `the view took ${Math.round(healed)} ms to heal (bound ${HEAL_BOUND_MS} ms)`);
        // B's own view too, and discovery: B is offered again (its entry and its place in the live set are back).
        await waitFor(() => whole(b), { what: "B's view to list every client again" });
        await waitFor(async () => (await offered(a)) === b.port, { what: 'B to be offered again' });

        for (const app of [a, b]) {
          const metrics = await scrapeMetrics(app);
          assert.ok(
            metricValue(metrics, 'gatehouse_registry_rewrites_total') >= 1,
            `${instanceId(app)} counted its rewrite`,
          );
        }
      });

      it('finds a client on the other instance again (DELETE /admin/connections/:id)', async () => {
        const answer = await admin(a, 'DELETE', `/admin/connections/${encodeURIComponent(victim.clientId)}`);
        assert.equal(answer.status, 204, answer.text);
        assert.equal((await victim.ws.waitClose()).code, 1000);
      });

      it('still delivers across instances, once and in order', async () => {
        const events = [{ n: 1 }, { n: 2 }, { n: 3 }];
        for (const data of events) publisher.ws.send({ type: 'user', root_ids: [onB.rootId], data });
        await expectMessages(onB, events);
        assert.equal(publisher.ws.isOpen && onB.ws.isOpen && hatsuOnA.ws.isOpen, true, 'no client was dropped');
      });

      it('saw no unhandled promise rejection', () => rejections.assertNone());
    },
  );
}
