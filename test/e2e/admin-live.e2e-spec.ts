import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { LiveStreams, MAX_STREAMS, STREAM_LIMITS } from '../../src/admin/live/live-streams.js';
import { EventBus } from '../../src/core/bus/event-bus.js';
import { Engine } from '../../src/core/engine/engine.js';
import { JAC_EVENTS } from '../../src/protocols/jac/jac.codes.js';
import { ADMIN_TOKEN, adminAuth, startApp, type TestApp } from '../helpers/app.js';
import { AdminStream, StreamRefused, type StreamEvent } from '../helpers/admin-stream.js';
import { createToken } from '../helpers/felix-client.js';
import { call } from '../helpers/http.js';
import { connectJac, issueToken } from '../helpers/jac-client.js';
import { waitFor } from '../helpers/wait.js';

interface Counts {
  total: number;
  by_protocol: Record<string, number>;
  by_instance: Record<string, number>;
  changes: number;
}

interface Feed {
  seq: number;
  topic: string;
  target: { kind: string; ids?: string[]; count?: number };
  size: number;
  preview: string;
  encoding: string;
  truncated: boolean;
  local: boolean;
}

const counts = (event: StreamEvent): Counts => event.data as Counts;
const feed = (event: StreamEvent): Feed => event.data as Feed;

async function refused(app: TestApp, token: string | null): Promise<StreamRefused> {
  try {
    const stream = await AdminStream.open(app, token);
    await stream.close();
  } catch (err) {
    if (err instanceof StreamRefused) return err;
    throw err;
  }
  throw new Error('the stream was opened');
}

describe('GET /admin/stream', () => {
  let app: TestApp;

  before(async () => {
    app = await startApp();
  });

  after(() => app.close());

  it('is 401 without the admin token, like every admin route, and never echoes the token', async () => {
    for (const token of [null, 'wrong-admin-token-0123456789', '']) {
      const answer = await refused(app, token);
      assert.equal(answer.status, 401);
      assert.equal(answer.headers['www-authenticate'], 'Bearer');
      assert.deepEqual(JSON.parse(answer.body), {
        statusCode: 401,
        error: 'Unauthorized',
        message: 'A valid admin bearer token is required',
      });
      if (token) assert.ok(!answer.body.includes(token));
    }
  });

  it('sends hello, the instances and the counts at once, as server-sent events that are not cached', async () => {
    const stream = await AdminStream.open(app);
    try {
      assert.equal(stream.headers['content-type'], 'text/event-stream; charset=utf-8');
      assert.equal(stream.headers['cache-control'], 'no-store');
      const instanceId = app.app.get(Engine).instanceId;
      const hello = (await stream.next('hello')).data as Record<string, unknown>;
      assert.equal(hello['instance'], instanceId);
      assert.equal(hello['engine'], 'memory');
      assert.equal(hello['interval_ms'], 1000);
      const { instances } = (await stream.next('instances')).data as { instances: Record<string, unknown>[] };
      assert.equal(instances.length, 1);
      assert.equal(instances[0]?.['id'], instanceId);
      assert.equal(instances[0]?.['self'], true);
      assert.equal(instances[0]?.['redis'], null);
      assert.equal(instances[0]?.['available'], true);
      assert.equal(typeof instances[0]?.['uptime_s'], 'number');
      const first = counts(await stream.next('connections'));
      assert.deepEqual(first.by_instance, { [instanceId]: first.total });
      // And again every second.
      await stream.next('instances');
    } finally {
      await stream.close();
    }
  });

  it('sends the counts when a client connects and again when it leaves', async () => {
    const stream = await AdminStream.open(app);
    try {
      const before = counts(await stream.next('connections'));
      const jac = await connectJac(app);
      const joined = counts(await stream.next('connections'));
      assert.equal(joined.by_protocol['jac'], (before.by_protocol['jac'] ?? 0) + 1);
      assert.equal(joined.total, before.total + 1);
      assert.ok(joined.changes > before.changes);
      await jac.ws.close();
      const left = counts(await stream.next((e) => e.event === 'connections' && counts(e).total === before.total));
      assert.equal(left.by_protocol['jac'], before.by_protocol['jac'] ?? 0);
    } finally {
      await stream.close();
    }
  });

  it('sends a publish event per bus message: topic, target, size and the first 200 bytes', async () => {
    const stream = await AdminStream.open(app);
    try {
      await stream.next('hello');
      const token = await issueToken(app);
      const big = 'é'.repeat(400);
      const answer = await call(app, 'POST', '/admin/jac/notify', {
        headers: adminAuth,
        body: { root_ids: [token.rootId], data: { text: big } },
      });
      assert.equal(answer.status, 202, answer.text);
      const event = feed(await stream.next('publish'));
      assert.equal(event.topic, 'jac');
      assert.deepEqual(event.target, { kind: 'user', ids: [token.rootId], count: 1 });
      assert.equal(event.size, Buffer.byteLength(JSON.stringify({ text: big })));
      assert.equal(event.encoding, 'text');
      assert.equal(event.truncated, true);
      assert.ok(Buffer.byteLength(event.preview) <= 200 + 2, 'at most 200 bytes, a cut character showing as one');
      assert.ok(event.preview.startsWith('{"text":"éé'));
      assert.equal(event.local, true);
    } finally {
      await stream.close();
    }
  });

  it('leaves the cluster housekeeping out of the feed', async () => {
    const stream = await AdminStream.open(app);
    try {
      await stream.next('hello');
      // A revoked Felix token is announced on control.revoke.
      const felix = await createToken(app);
      const revoked = await call(app, 'DELETE', `/admin/felix/tokens/${felix.id}`, { headers: adminAuth });
      assert.equal(revoked.status, 204, revoked.text);
      const marker = await call(app, 'POST', '/admin/jac/notify', {
        headers: adminAuth,
        body: { channel_ids: ['marker'], data: { marker: true } },
      });
      assert.equal(marker.status, 202);
      // The marker is the first publish the stream shows: the revocation came before it.
      assert.deepEqual(feed(await stream.next('publish')).target, { kind: 'channel', ids: ['marker'], count: 1 });
    } finally {
      await stream.close();
    }
  });

  it(`refuses more than ${MAX_STREAMS} streams at once with a 503, and takes one again once one closes`, async () => {
    const live = app.app.get(LiveStreams);
    // The server notices a stream the previous test closed a moment after the client does.
    await waitFor(() => live.open === 0, { what: 'the earlier streams to be gone' });
    const streams = await Promise.all(Array.from({ length: MAX_STREAMS }, () => AdminStream.open(app)));
    try {
      const answer = await refused(app, ADMIN_TOKEN);
      assert.equal(answer.status, 503);
      assert.deepEqual(JSON.parse(answer.body), {
        statusCode: 503,
        error: 'Service Unavailable',
        message: `Too many admin streams are open (at most ${MAX_STREAMS}); close one and retry`,
      });
      await (streams.pop() as AdminStream).close();
      await waitFor(() => live.open < MAX_STREAMS, { what: 'the server to notice the closed stream' });
      streams.push(await AdminStream.open(app));
    } finally {
      await Promise.all(streams.map((s) => s.close()));
    }
    await waitFor(() => live.open === 0, { what: 'every stream to be closed' });
  });

  it('drops feed events for a reader that stops reading, and tells it how many once it catches up', async () => {
    const live = app.app.get(LiveStreams);
    const bus = app.app.get(EventBus);
    const stream = await AdminStream.open(app);
    try {
      await stream.next('connections');
      stream.pause();
      const droppedBefore = live.dropped;
      const payload = Buffer.from(JSON.stringify({ pad: 'x'.repeat(300) }));
      let published = 0;
      // Until the socket and then the server's own buffer for this stream are full: the
      // kernel takes a few MiB first. Each round yields so the response can write.
      while (live.dropped === droppedBefore) {
        assert.ok(published < 500_000, 'events were dropped before half a million');
        for (let i = 0; i < 1000; i++) {
          void bus.publish(JAC_EVENTS, { kind: 'channel', ids: ['slow'] }, payload);
          published++;
        }
        await new Promise((resolve) => setImmediate(resolve));
      }
      const readBefore = stream.received.filter((e) => e.event === 'publish').length;
      stream.resume();
      // The first write after it caught up (the next `instances`) is preceded by the count.
      const dropped = (await stream.next('dropped', 30_000)).data as { count: number };
      const read = stream.received.filter((e) => e.event === 'publish').length;
      assert.ok(read >= readBefore);
      assert.equal(dropped.count, live.dropped - droppedBefore);
      assert.equal(read + dropped.count, published, 'every event was either sent or counted as dropped');
      assert.ok(dropped.count > 0 && read > STREAM_LIMITS.bufferLimit / 1000, `${read} read, ${dropped.count} dropped`);
      const seqs = stream.received.filter((e) => e.event === 'publish').map((e) => feed(e).seq);
      assert.ok(
        seqs.every((seq, i) => i === 0 || seq > (seqs[i - 1] as number)),
        'in order, gaps where events were dropped',
      );
    } finally {
      await stream.close();
    }
  });
});

describe('GET /admin/stream at shutdown', () => {
  it('ends every open stream with a shutdown event, and the app still stops within SHUTDOWN_GRACE_MS', async () => {
    const app = await startApp({ SHUTDOWN_GRACE_MS: '2000' });
    const streams = [await AdminStream.open(app), await AdminStream.open(app)];
    await Promise.all(streams.map((s) => s.next('connections')));
    const jac = await connectJac(app);
    const started = performance.now();
    await app.close();
    const ms = performance.now() - started;
    assert.ok(ms < 2000, `stopped in ${Math.round(ms)} ms`);
    for (const stream of streams) {
      await stream.closed;
      assert.deepEqual(stream.received.at(-1), {
        event: 'shutdown',
        data: { reason: 'The gateway is shutting down' },
      });
    }
    assert.equal((await jac.ws.waitClose()).code, 1001);
  });
});

describe('GET /admin/connections filters', () => {
  let app: TestApp;

  before(async () => {
    app = await startApp();
  });

  after(() => app.close());

  const list = async (query: string) => {
    const answer = await call(app, 'GET', `/admin/connections?${query}`, { headers: adminAuth });
    assert.equal(answer.status, 200, answer.text);
    return answer.json as { total: number; clients: { id: string }[]; by_protocol: Record<string, number> };
  };

  it('filters by user, channel and instance, each alone and together with protocol', async () => {
    const token = await issueToken(app);
    const mine = await connectJac(app, { token, channel: 'filters-room' });
    const other = await connectJac(app, { channel: 'filters-room' });
    const alone = await connectJac(app, { channel: 'filters-elsewhere' });
    const instance = app.app.get(Engine).instanceId;
    try {
      const ids = (page: { clients: { id: string }[] }) => page.clients.map((c) => c.id).sort();
      assert.deepEqual(ids(await list(`user=${encodeURIComponent(token.rootId)}`)), [mine.clientId]);
      assert.deepEqual(ids(await list('channel=filters-room')), [mine.clientId, other.clientId].sort());
      assert.deepEqual(ids(await list(`channel=filters-room&user=${encodeURIComponent(token.rootId)}`)), [
        mine.clientId,
      ]);
      assert.deepEqual(ids(await list('channel=filters-elsewhere&protocol=jac')), [alone.clientId]);
      assert.equal((await list('channel=filters-elsewhere&protocol=felix')).total, 0);
      const here = await list(`instance=${encodeURIComponent(instance)}&channel=filters-room`);
      assert.equal(here.total, 2);
      assert.deepEqual(here.by_protocol, { jac: 2 });
      assert.equal((await list('instance=some-other-instance')).total, 0);
      assert.equal((await list('user=nobody-at-all')).total, 0);
    } finally {
      await Promise.all([mine, other, alone].map((c) => c.ws.close()));
    }
  });

  it('answers 400 for filter values it cannot take, naming the field', async () => {
    for (const [query, field] of [
      [`user=${'u'.repeat(513)}`, 'user'],
      [`channel=${'c'.repeat(513)}`, 'channel'],
      [`instance=${'i'.repeat(129)}`, 'instance'],
      ['user=a&user=b', 'user'],
    ] as const) {
      const answer = await call(app, 'GET', `/admin/connections?${query}`, { headers: adminAuth });
      assert.equal(answer.status, 400, query);
      const { message } = answer.json as { message: string[] };
      assert.ok(
        message.some((m) => m.startsWith(`${field}: `)),
        `${query}: ${message.join('; ')}`,
      );
      assert.ok(!answer.text.includes('uuuuuuuu'), 'the value is not echoed');
    }
  });
});
