import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { instanceId, startApp, type TestApp } from '../helpers/app.js';
import { admin, call, waitReady, type ConnectionsPage } from '../helpers/http.js';
import { connectJac, expectMessages, issueToken, type JacSocket, type JacToken } from '../helpers/jac-client.js';
import { uniquePrefix } from '../helpers/redis.js';
import { openTopology, TOPOLOGIES, topologyLabel, topologySuite, type TestRedis } from '../helpers/topology.js';
import { waitFor } from '../helpers/wait.js';

const CHAT = { type: 'chat', data: { message: 'string' } };

for (const topology of TOPOLOGIES) {
  describe(`jac across two instances on ${topologyLabel(topology)}`, await topologySuite(topology), () => {
    const prefix = uniquePrefix();
    const sockets: JacSocket[] = [];
    let redis: TestRedis;
    let a: TestApp;
    let b: TestApp;
    let publisher: JacToken;
    /** A publishing socket on each instance; they never match the targets under test. */
    let pubA: JacSocket;
    let pubB: JacSocket;
    let markers = 0;

    async function open(app: TestApp, options: { token?: JacToken; channel?: string } = {}): Promise<JacSocket> {
      const socket = await connectJac(app, options);
      sockets.push(socket);
      return socket;
    }

    /**
     * Proves the message `trigger` sends (from instance A) reached every receiver exactly
     * once and no bystander at all. Once every receiver has it, two markers follow to every
     * socket involved: one from A (same path as the message) and one from B, which can only
     * arrive after any echo or duplicate of the message, wherever the socket is. So each
     * receiver must read exactly [message, marker A, marker B], each bystander [marker A,
     * marker B]. The markers wait for the message because they go to other targets, which
     * on a Cluster are other shards: order holds per target only.
     */
    async function proveExactlyOnce(
      trigger: () => Promise<void> | void,
      expected: unknown,
      receivers: JacSocket[],
      bystanders: JacSocket[] = [],
    ): Promise<void> {
      await trigger();
      for (const socket of receivers) await expectMessages(socket, [expected]);
      const everyone = [...receivers, ...bystanders, pubA, pubB];
      const ids = everyone.map((s) => s.clientId);
      const markerA = { marker: `a-${++markers}` };
      pubA.ws.send({ type: 'client', client_ids: ids, data: markerA });
      for (const socket of everyone) await expectMessages(socket, [markerA]);
      const markerB = { marker: `b-${++markers}` };
      pubB.ws.send({ type: 'client', client_ids: ids, data: markerB });
      for (const socket of everyone) await expectMessages(socket, [markerB]);
    }

    async function connections(app: TestApp): Promise<ConnectionsPage> {
      const answer = await admin(app, 'GET', '/admin/connections');
      assert.equal(answer.status, 200, answer.text);
      return answer.json as ConnectionsPage;
    }

    before(async () => {
      redis = await openTopology(topology);
      const env = redis.env(prefix);
      [a, b] = await Promise.all([startApp(env), startApp(env)]);
      await Promise.all([waitReady(a, 200), waitReady(b, 200)]);
      // Both buses must be listening before anything is published across.
      await redis.busSubscribers(prefix, 2);
      publisher = await issueToken(a);
      pubA = await open(a, { token: publisher });
      pubB = await open(b, { token: publisher });
    });

    after(async () => {
      await Promise.all(sockets.map((s) => s.ws.close()));
      await Promise.all([a?.close(), b?.close()]);
      await redis?.deleteKeys(prefix);
      await redis?.close();
    });

    it('delivers a publish sent right after a join returns, to a user, a channel and a client', async () => {
      for (let i = 0; i < 10; i++) {
        const channel = `just-joined-${i}`;
        const user = await issueToken(a);
        const socket = await open(b, { token: user, channel });
        const sent = [
          { joined: 'channel', i },
          { joined: 'user', i },
          { joined: 'client', i },
        ];
        pubA.ws.send({ type: 'channel', channel_ids: [channel], data: sent[0] });
        pubA.ws.send({ type: 'user', root_ids: [user.rootId], data: sent[1] });
        pubA.ws.send({ type: 'client', client_ids: [socket.clientId], data: sent[2] });
        // Three targets are three bus channels: on a Cluster, three shards, in any order.
        const got = [await socket.ws.next(), await socket.ws.next(), await socket.ws.next()];
        assert.deepEqual(got.map((m) => JSON.stringify(m)).sort(), sent.map((m) => JSON.stringify(m)).sort());
      }
    });

    it("delivers a user publish from A to the user's sockets on A and B exactly once each", async () => {
      const user = await issueToken(b);
      const onA = await open(a, { token: user });
      const onB1 = await open(b, { token: user });
      const onB2 = await open(b, { token: user });
      const otherUser = await open(b, { token: await issueToken(a) });
      const anonymous = await open(b);
      const data = { text: 'hello user', n: 1, nested: { ok: true } };
      await proveExactlyOnce(
        () => pubA.ws.send({ type: 'user', root_ids: [user.rootId, user.rootId], data }),
        data,
        [onA, onB1, onB2],
        [otherUser, anonymous],
      );
    });

    it("delivers a channel publish from A to the channel's sockets on A and B exactly once each", async () => {
      const channel = `room-${Date.now()}`;
      const onA = await open(a, { channel });
      const onB = await open(b, { channel });
      const elsewhere = await open(b, { channel: `${channel}-other` });
      const data = { text: 'hello channel' };
      await proveExactlyOnce(
        () => pubA.ws.send({ type: 'channel', channel_ids: [channel, 'nobody-here'], data }),
        data,
        [onA, onB],
        [elsewhere],
      );
    });

    it('delivers a client publish from A to a client held by B exactly once', async () => {
      const channel = `shared-${Date.now()}`;
      const target = await open(b, { channel });
      const sameChannel = await open(b, { channel });
      const onA = await open(a, { channel });
      const data = { text: 'hello client' };
      await proveExactlyOnce(
        () => pubA.ws.send({ type: 'client', client_ids: [target.clientId], data }),
        data,
        [target],
        [sameChannel, onA],
      );
    });

    it('delivers POST /admin/jac/notify on A to sockets on B exactly once', async () => {
      const user = await issueToken(a);
      const channel = `notify-${Date.now()}`;
      const byUser = await open(b, { token: user });
      const byChannel = await open(b, { channel });
      const byClient = await open(b);
      const bystander = await open(b);
      const data = { event: 'notified', at: 1 };
      await proveExactlyOnce(
        async () => {
          const answer = await admin(a, 'POST', '/admin/jac/notify', {
            root_ids: [user.rootId],
            channel_ids: [channel],
            client_ids: [byClient.clientId],
            data,
          });
          assert.equal(answer.status, 202, answer.text);
        },
        data,
        [byUser, byChannel, byClient],
        [bystander],
      );
    });

    it("delivers a walker's notifications run on A to sockets on B", async () => {
      const user = await issueToken(a);
      const channel = `walker-${Date.now()}`;
      const byUser = await open(b, { token: user });
      const byChannel = await open(b, { channel });
      const byClient = await open(b);
      const walkers: [string, Record<string, string>, JacSocket][] = [
        ['send_chat_to_user', { root_id: user.rootId }, byUser],
        ['send_chat_to_group', { channel_id: channel }, byChannel],
        ['send_chat_to_client', { client_id: byClient.clientId }, byClient],
      ];
      for (const [walker, context, receiver] of walkers) {
        const others = [byUser, byChannel, byClient].filter((s) => s !== receiver);
        await proveExactlyOnce(
          async () => {
            pubA.ws.send({ type: 'walker', walker, context, response: true });
            assert.deepEqual(await pubA.ws.next(), { status: 200 });
          },
          CHAT,
          [receiver],
          others,
        );
      }
      // The same walker over HTTP on A.
      await proveExactlyOnce(
        async () => {
          const answer = await call(a, 'POST', '/walker/send_chat_to_user', {
            headers: { Authorization: `Bearer ${publisher.token}` },
            body: { root_id: user.rootId },
          });
          assert.equal(answer.status, 200, answer.text);
        },
        CHAT,
        [byUser],
        [byChannel, byClient],
      );
    });

    it('lists the clients of both instances on either instance, with their instance', async () => {
      // Start from a known set: close everything but the two publishers.
      const old = sockets.splice(2);
      await Promise.all(old.map((s) => s.ws.close()));
      const user = await issueToken(a);
      const a1 = await open(a, { token: user, channel: 'list-a' });
      const b1 = await open(b, { token: user });
      const b2 = await open(b, { channel: 'list-b' });
      const expected = new Map<string, [JacSocket, string]>([
        [pubA.clientId, [pubA, instanceId(a)]],
        [pubB.clientId, [pubB, instanceId(b)]],
        [a1.clientId, [a1, instanceId(a)]],
        [b1.clientId, [b1, instanceId(b)]],
        [b2.clientId, [b2, instanceId(b)]],
      ]);
      assert.notEqual(instanceId(a), instanceId(b));
      for (const app of [a, b]) {
        const page = await waitFor(
          async () => {
            const current = await connections(app);
            const ids = current.clients.map((c) => c.id).sort();
            return JSON.stringify(ids) === JSON.stringify([...expected.keys()].sort()) ? current : undefined;
          },
          { what: "both instances' clients in the list" },
        );
        assert.equal(page.total, 5);
        assert.deepEqual(page.by_protocol, { jac: 5 });
        assert.deepEqual(page.by_instance, { [instanceId(a)]: 2, [instanceId(b)]: 3 });
        assert.equal(page.next_cursor, null);
        for (const client of page.clients) {
          const [socket, instance] = expected.get(client.id) ?? assert.fail(`unexpected ${client.id}`);
          assert.equal(client.instance, instance, client.id);
          assert.equal(client.protocol, 'jac');
          assert.equal(client.user, socket.rootId);
          assert.deepEqual(client.channels, [socket.channelId]);
        }
      }
      const paged = await admin(a, 'GET', '/admin/connections?limit=2');
      const first = paged.json as ConnectionsPage;
      assert.equal(first.total, 5);
      assert.equal(first.clients.length, 2);
      assert.ok(first.next_cursor);
    });

    it('closes a client held by B from A with 1000, answering 204; unknown ids get 404', async () => {
      const victim = await open(b);
      const neighbour = await open(b);
      await waitFor(async () => (await connections(a)).clients.some((c) => c.id === victim.clientId), {
        what: "the victim in A's view",
      });
      const answer = await admin(a, 'DELETE', `/admin/connections/${encodeURIComponent(victim.clientId)}`);
      assert.equal(answer.status, 204, answer.text);
      const closed = await victim.ws.waitClose();
      assert.equal(closed.code, 1000);
      await waitFor(async () => !(await connections(a)).clients.some((c) => c.id === victim.clientId), {
        what: 'the victim to leave the list',
      });
      // Only the victim went: its neighbour still gets (only) the markers.
      await proveExactlyOnce(() => undefined, null, [], [neighbour]);

      const unknown = await admin(
        a,
        'DELETE',
        `/admin/connections/${encodeURIComponent('1700000000:' + '0'.repeat(32))}`,
      );
      assert.equal(unknown.status, 404, unknown.text);
      assert.equal((unknown.json as { statusCode: number }).statusCode, 404);
      // A second DELETE of the closed client is unknown too.
      const again = await admin(a, 'DELETE', `/admin/connections/${encodeURIComponent(victim.clientId)}`);
      assert.equal(again.status, 404, again.text);
    });
  });
}
