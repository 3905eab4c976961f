import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startApp, type TestApp } from '../helpers/app.js';
import { FatesClient, newBot, postEvent, V2_PATH } from '../helpers/fates-client.js';
import { createToken } from '../helpers/felix-client.js';
import { connectHatsu, putSession, putUser } from '../helpers/hatsu-client.js';
import { admin, call, request } from '../helpers/http.js';
import { connectJac, issueToken } from '../helpers/jac-client.js';
import { freePort } from '../helpers/ports.js';
import {
  metricValue as value,
  parsePrometheusText,
  sampleValue,
  scrapeMetrics as scrape,
} from '../helpers/prom-text.js';
import { waitFor } from '../helpers/wait.js';
import { expectUpgradeRejected, WsTestClient } from '../helpers/ws-client.js';

const PROTOCOLS = ['jac', 'fates-v2', 'fates-flamepaw', 'felix', 'hatsu'];

describe('the Prometheus text reader used by these tests', () => {
  it('refuses what Prometheus would refuse', () => {
    const bad = [
      'a_total 1', // no trailing newline
      'a-b 1\n',
      'a{b="x} 1\n',
      'a{b="\\q"} 1\n',
      'a 1x\n',
      '# TYPE a counter\na -1\n',
      '# TYPE a counter\na 1\n# TYPE a gauge\n',
      'a 1\nb 1\na 2\n',
      'a{x="1"} 1\na{x="1"} 2\n',
      '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n',
      '# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n',
    ];
    for (const text of bad) assert.throws(() => parsePrometheusText(text), Error, JSON.stringify(text));
    const good = parsePrometheusText('# HELP a_total A.\n# TYPE a_total counter\na_total{x="q\\"\\n"} 3\n');
    assert.equal(sampleValue(good, 'a_total', { x: 'q"\n' }), 3);
  });
});

describe('GET /metrics', () => {
  let app: TestApp;

  before(async () => {
    app = await startApp({ AUTH_FAILURE_LIMIT: '1000' });
  });

  after(async () => {
    await app.close();
  });

  it('exposes every family, with a zero series per protocol before any traffic', async () => {
    const families = await scrape(app);
    for (const protocol of PROTOCOLS) {
      assert.equal(value(families, 'gatehouse_connections', { protocol }), 0, protocol);
      for (const name of [
        'gatehouse_connections_opened_total',
        'gatehouse_inbound_frames_total',
        'gatehouse_inbound_bytes_total',
        'gatehouse_delivered_frames_total',
        'gatehouse_delivered_bytes_total',
        'gatehouse_slow_consumers_total',
        'gatehouse_auth_failures_total',
        'gatehouse_auth_throttled_total',
      ]) {
        assert.equal(families.get(name)?.type, 'counter', name);
        assert.equal(value(families, name, { protocol }), 0, `${name} ${protocol}`);
      }
    }
    for (const name of [
      'gatehouse_connections_closed_total',
      'gatehouse_upgrades_refused_total',
      'gatehouse_connections_refused_total',
      'gatehouse_bus_published_total',
      'gatehouse_bus_received_total',
      'gatehouse_bus_received_bytes_total',
      'gatehouse_bus_rejoins_total',
      'gatehouse_admin_requests_total',
    ]) {
      assert.equal(families.get(name)?.type, 'counter', name);
    }
    assert.equal(families.get('gatehouse_delivery_latency_seconds')?.type, 'histogram');
    assert.equal(families.get('gatehouse_event_loop_lag_seconds')?.type, 'gauge');
    assert.ok(value(families, 'gatehouse_event_loop_lag_seconds') >= 0);
    assert.equal(families.get('gatehouse_redis_up')?.samples.length, 0, 'no Redis link on the embedded engine');
    const info = families.get('gatehouse_info')?.samples[0];
    assert.equal(info?.labels['engine'], 'memory');
    assert.match(info?.labels['version'] ?? '', /^\d+\.\d+\.\d+/);
    // The runtime's own families come along, under their standard names.
    assert.equal(families.get('process_cpu_user_seconds_total')?.type, 'counter');
    assert.ok(families.has('nodejs_eventloop_lag_seconds'));
    // Every family of ours follows the naming rules: a prefix, counters end in _total.
    for (const family of families.values()) {
      if (!family.name.startsWith('gatehouse_')) continue;
      assert.ok(family.help, `${family.name} has a HELP`);
      if (family.type === 'counter') assert.match(family.name, /_total$/);
    }
  });

  it('counts traffic on all four protocols', async () => {
    const before = await scrape(app);

    // jac: two sockets, one publishes to the other's channel.
    const token = await issueToken(app);
    const sub = await connectJac(app, { channel: 'metrics-room' });
    const pub = await connectJac(app, { token });
    pub.ws.send({ type: 'channel', channel_ids: ['metrics-room'], data: { hello: 'metrics' } });
    assert.deepEqual(await sub.ws.next(), { hello: 'metrics' });
    // A bad token still connects (as public) but is a failed authentication.
    const stranger = await WsTestClient.connect(app.ws('/websocket'), {
      headers: { Authorization: 'Bearer not-a-jwt' },
    });
    assert.equal((await stranger.next<{ type: string }>()).type, 'connection');

    // Fates: one bot identifies and gets a live event.
    const bot = await newBot(app);
    const { client: fates } = await FatesClient.ready(app, V2_PATH, { id: bot.id, token: bot.token });
    await postEvent(app, `bots/${bot.id}`, { m: { e: 0 }, ctx: { user: '1' } });
    assert.equal((await fates.events()).length, 1);

    // Felix: a heartbeat and its ACK; a wrong token is refused 403 at the upgrade.
    const felixToken = await createToken(app);
    const felix = await WsTestClient.connect(app.ws('/felix'), { headers: { Authorization: felixToken.token } });
    felix.send({ code: 20001 });
    assert.equal((await felix.next<{ code: number }>()).code, 10001);
    const refused = await expectUpgradeRejected(app.ws('/felix'), { headers: { Authorization: 'wrong' } });
    assert.equal(refused.status, 403);

    // hatsu: identify, heartbeat, and a close with a protocol code (DISPATCH from a client).
    await putUser(app, '900', { username: 'metrics' });
    await putSession(app, 'metrics-session', '900');
    const hatsu = await connectHatsu(app, 'metrics-session');
    hatsu.send({ t: 'HEARTBEAT', s: 1 });
    await hatsu.expect('ACK');
    hatsu.send({ t: 'DISPATCH', d: {} });
    assert.equal((await hatsu.waitClose()).code, 4004);

    // An upgrade to a path nobody serves.
    assert.equal((await expectUpgradeRejected(app.ws('/nowhere'))).status, 404);

    await Promise.all([sub.ws.close(), pub.ws.close(), stranger.close(), fates.ws.close(), felix.close()]);
    const families = await waitFor(
      async () => {
        const now = await scrape(app);
        return PROTOCOLS.every((protocol) => value(now, 'gatehouse_connections', { protocol }) === 0) ? now : undefined;
      },
      { what: 'every connection to be closed' },
    );
    const grew = (name: string, labels: Record<string, string>): number =>
      value(families, name, labels) - (sampleValue(before, name, labels) ?? 0);

    assert.ok(grew('gatehouse_connections_opened_total', { protocol: 'jac' }) >= 3);
    assert.equal(grew('gatehouse_connections_opened_total', { protocol: 'fates-v2' }), 1);
    assert.equal(grew('gatehouse_connections_opened_total', { protocol: 'felix' }), 1);
    assert.equal(grew('gatehouse_connections_opened_total', { protocol: 'hatsu' }), 1);
    assert.equal(grew('gatehouse_connections_closed_total', { protocol: 'hatsu', code: '4004' }), 1);
    assert.equal(grew('gatehouse_connections_closed_total', { protocol: 'felix', code: '1005' }), 1);
    // jac: the publish and the bad token's connection; Fates: the identify; hatsu: identify, HEARTBEAT, DISPATCH.
    assert.ok(grew('gatehouse_inbound_frames_total', { protocol: 'jac' }) >= 1);
    assert.equal(grew('gatehouse_inbound_frames_total', { protocol: 'fates-v2' }), 1);
    assert.equal(grew('gatehouse_inbound_frames_total', { protocol: 'felix' }), 1);
    assert.equal(grew('gatehouse_inbound_frames_total', { protocol: 'hatsu' }), 3);
    for (const protocol of ['jac', 'fates-v2', 'felix', 'hatsu']) {
      assert.ok(grew('gatehouse_inbound_bytes_total', { protocol }) > 0, protocol);
      assert.ok(grew('gatehouse_delivered_frames_total', { protocol }) >= 1, protocol);
      assert.ok(grew('gatehouse_delivered_bytes_total', { protocol }) > 0, protocol);
    }
    // Fates: identity, ready and the event; felix: the ACK; hatsu: HELLO, READY, ACK.
    assert.equal(grew('gatehouse_delivered_frames_total', { protocol: 'fates-v2' }), 3);
    assert.equal(grew('gatehouse_delivered_frames_total', { protocol: 'felix' }), 1);
    assert.equal(grew('gatehouse_delivered_frames_total', { protocol: 'hatsu' }), 3);
    assert.equal(grew('gatehouse_auth_failures_total', { protocol: 'jac' }), 1);
    assert.equal(grew('gatehouse_auth_failures_total', { protocol: 'felix' }), 1);
    assert.equal(grew('gatehouse_upgrades_refused_total', { protocol: 'felix', status: '403' }), 1);
    assert.equal(grew('gatehouse_upgrades_refused_total', { protocol: 'none', status: '404' }), 1);
    assert.ok(grew('gatehouse_bus_published_total', { topic: 'jac' }) >= 1);
    assert.ok(grew('gatehouse_bus_published_total', { topic: 'fates' }) >= 1);
    assert.ok(value(families, 'gatehouse_delivery_latency_seconds_count', { topic: 'jac' }) >= 1);
    assert.ok(
      grew('gatehouse_admin_requests_total', { method: 'POST', route: '/admin/jac/tokens', status: '201' }) >= 1,
    );
    assert.ok(
      grew('gatehouse_admin_requests_total', {
        method: 'PUT',
        route: '/admin/hatsu/sessions/:sessionId',
        status: '204',
      }) >= 1,
    );
  });

  it('is described in the OpenAPI document, with its own bearer scheme', async () => {
    const answer = await admin(app, 'GET', '/admin/openapi.json');
    const doc = answer.json as {
      paths: Record<string, { get?: { security?: unknown[] } }>;
      components: { securitySchemes: Record<string, unknown> };
    };
    assert.ok(doc.paths['/metrics']?.get, '/metrics is documented');
    assert.deepEqual(doc.paths['/metrics']?.get?.security, [{ metrics: [] }, {}]);
    assert.ok(doc.components.securitySchemes['metrics']);
  });

  it('counts a slow consumer that is cut off', async () => {
    // The publisher floods on purpose: no inbound budget to cut it off first.
    const slowApp = await startApp({
      WS_SEND_BUFFER_LIMIT: '1024',
      JAC_PUBLISH_POLICY: 'open',
      WS_INBOUND_BYTES_PER_SEC: '0',
    });
    try {
      const reader = await connectJac(slowApp, { channel: 'flood' });
      reader.ws.socket.pause();
      const pub = await connectJac(slowApp);
      const big = 'x'.repeat(64 * 1024);
      for (let i = 0; i < 64; i++) pub.ws.send({ type: 'channel', channel_ids: ['flood'], data: { big } });
      await waitFor(
        async () => value(await scrape(slowApp), 'gatehouse_slow_consumers_total', { protocol: 'jac' }) === 1,
        {
          what: 'the slow consumer to be counted',
        },
      );
      reader.ws.terminate();
      await pub.ws.close();
    } finally {
      await slowApp.close();
    }
  });
});

describe('/metrics access', () => {
  it('wants the bearer METRICS_TOKEN when it is set, and says so with WWW-Authenticate', async () => {
    const secret = 'metrics-token-0123456789';
    const app = await startApp({ METRICS_TOKEN: secret });
    try {
      const attempts: Record<string, string>[] = [
        {},
        { Authorization: 'Bearer wrong-token-0123456789' },
        { Authorization: secret },
      ];
      for (const headers of attempts) {
        const answer = await request(app.http).get('/metrics').set(headers);
        assert.equal(answer.status, 401);
        assert.equal(answer.headers['www-authenticate'], 'Bearer');
        assert.ok(!answer.text.includes(secret));
      }
      await scrape(app, { Authorization: `Bearer ${secret}` });
      // The admin token is not the metrics token.
      assert.equal((await admin(app, 'GET', '/metrics')).status, 401);
    } finally {
      await app.close();
    }
  });

  it('moves to METRICS_PORT when it is set, and is gone from the main port', async () => {
    const port = await freePort();
    const app = await startApp({ METRICS_PORT: String(port), METRICS_TOKEN: 'metrics-token-0123456789' });
    try {
      assert.equal((await call(app, 'GET', '/metrics')).status, 404);
      const metrics = { http: `http://127.0.0.1:${port}` };
      await waitFor(async () => (await call(metrics, 'GET', '/metrics')).status === 401, {
        what: 'the metrics port',
      });
      const families = await scrape(metrics, { Authorization: 'Bearer metrics-token-0123456789' });
      assert.equal(value(families, 'gatehouse_connections', { protocol: 'jac' }), 0);
      assert.equal((await call(metrics, 'GET', '/health/live')).status, 404);
    } finally {
      await app.close();
    }
    // The port is given back at shutdown.
    await assert.rejects(request(`http://127.0.0.1:${port}`).get('/metrics'));
  });

  it('is absent with METRICS_ENABLED=false', async () => {
    const app = await startApp({ METRICS_ENABLED: 'false' });
    try {
      assert.equal((await call(app, 'GET', '/metrics')).status, 404);
    } finally {
      await app.close();
    }
  });
});
