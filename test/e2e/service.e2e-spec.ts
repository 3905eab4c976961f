import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { ADMIN_TOKEN, JWT_SECRET } from '../helpers/app.js';
import { newBot, V2_PATH } from '../helpers/fates-client.js';
import { createToken } from '../helpers/felix-client.js';
import { runProcess, spawnGateway, type RunningProcess } from '../helpers/gateway-process.js';
import { putSession, putUser } from '../helpers/hatsu-client.js';
import { admin, call } from '../helpers/http.js';
import { issueToken } from '../helpers/jac-client.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/wait.js';
import { WsTestClient } from '../helpers/ws-client.js';

/** The checkout (the test runner runs from it): where `npm start` runs, as a user runs it. */
const ROOT = process.cwd();
/** The compiled entry point of this test build. */
const MAIN = fileURLToPath(new URL('../../src/main.js', import.meta.url));

type LogLine = Record<string, unknown> & { msg?: string; level?: string };

function run(command: string, args: string[], env: Record<string, string>): RunningProcess {
  return runProcess(command, args, {
    cwd: ROOT,
    env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/tmp', ...env },
  });
}

function logLines(text: string): LogLine[] {
  return text
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as LogLine);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function portRefuses(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

const BASE_ENV = { HOST: '127.0.0.1', ADMIN_TOKEN, JAC_JWT_SECRET: JWT_SECRET, AUTH_FAILURE_LIMIT: '0' };

describe('npm start as a service', () => {
  it('delivers the documented shutdown when the npm process itself gets SIGTERM', { timeout: 120_000 }, async () => {
    const port = await freePort();
    const npm = run('npm', ['start'], {
      ...BASE_ENV,
      PORT: String(port),
      LOG_LEVEL: 'info',
      SHUTDOWN_GRACE_MS: '3000',
    });
    try {
      const started = await waitFor(() => logLines(npm.stdout()).find((l) => l.msg === 'gatehouse started'), {
        timeoutMs: 90_000,
        intervalMs: 100,
        what: `the start-up line (stderr: ${npm.stderr().slice(-500)})`,
      });
      // One line says what runs where.
      assert.equal(started['engine'], 'memory');
      assert.equal(typeof started['instance'], 'string');
      const listeners = started['listeners'] as { address: string; serves: string[] }[];
      assert.equal(listeners[0]?.address, `127.0.0.1:${port}`);
      for (const path of ['/websocket', '/api/ws', '/flamepaw/ws', '/felix', '/hatsu']) {
        assert.ok(
          listeners[0]?.serves.some((s) => s.startsWith(`ws ${path} `)),
          path,
        );
      }
      const serverPid = started['pid'] as number;
      assert.notEqual(serverPid, npm.child.pid, 'the server is its own process');

      // One client of every protocol.
      const app = { http: `http://127.0.0.1:${port}`, ws: (path: string) => `ws://127.0.0.1:${port}${path}` };
      const jac = await WsTestClient.connect(app.ws('/websocket'));
      const bot = await newBot(app);
      const fates = await WsTestClient.connect(app.ws(V2_PATH));
      fates.send({ id: bot.id, token: bot.token });
      const felixToken = await createToken(app);
      const felix = await WsTestClient.connect(app.ws('/felix'), { headers: { Authorization: felixToken.token } });
      await putUser(app, '77', {});
      await putSession(app, 'service-session', '77');
      const hatsu = await WsTestClient.connect(app.ws('/hatsu'));
      hatsu.send({ session_id: 'service-session' });
      for (const client of [jac, fates, hatsu]) await client.next();

      npm.child.kill('SIGTERM');
      for (const client of [jac, fates, felix, hatsu]) {
        assert.equal((await client.closed).code, 1001);
      }
      assert.deepEqual(await npm.exited, { code: 0, signal: null });
      await waitFor(() => !alive(serverPid), { what: 'the server process to be gone' });
      assert.ok(await portRefuses(port), 'the port was given back');
      const stopped = logLines(npm.stdout()).find((l) => l.msg === 'gatehouse stopped');
      assert.ok(stopped, 'one line at shutdown');
      assert.equal(stopped['signal'], 'SIGTERM');
      assert.equal(stopped['clients'], 4);
      assert.equal(stopped['unclosed'], 0);
      assert.equal(typeof stopped['ms'], 'number');
    } finally {
      npm.child.kill('SIGKILL');
    }
  });

  it('stops on SIGINT too, and a second signal while stopping changes nothing', async () => {
    const port = await freePort();
    const main = run(process.execPath, [MAIN], { ...BASE_ENV, PORT: String(port), LOG_LEVEL: 'info' });
    try {
      await waitFor(() => logLines(main.stdout()).some((l) => l.msg === 'gatehouse started'), {
        timeoutMs: 20_000,
        what: 'the start-up line',
      });
      const client = await WsTestClient.connect(`ws://127.0.0.1:${port}/websocket`);
      await client.next();
      // Ctrl-C under npm reaches both npm and node: the server sees SIGINT twice.
      main.child.kill('SIGINT');
      main.child.kill('SIGINT');
      assert.equal((await client.closed).code, 1001);
      assert.deepEqual(await main.exited, { code: 0, signal: null });
      assert.equal(logLines(main.stdout()).filter((l) => l.msg === 'gatehouse stopped').length, 1);
    } finally {
      main.child.kill('SIGKILL');
    }
  });
});

// A few processes at a time: each spends most of a second loading the modules.
describe('configuration errors', { concurrency: 4 }, () => {
  const cases: { env: Record<string, string>; expect: string[]; secret?: string }[] = [
    { env: { PORT: 'eighty' }, expect: ['PORT: must be an integer number'] },
    { env: { PORT: '70000' }, expect: ['PORT: must not be greater than 65535'] },
    { env: { PORT: '-1' }, expect: ['PORT: must not be less than 0'] },
    { env: { SHUTDOWN_GRACE_MS: '1.5' }, expect: ['SHUTDOWN_GRACE_MS: must be an integer number'] },
    { env: { REDIS_URL: 'redis+sentinel://x' }, expect: ['REDIS_URL: must be a redis:// or rediss:// URL'] },
    { env: { REDIS_URL: 'http://127.0.0.1:6379' }, expect: ['REDIS_URL: must be a redis:// or rediss:// URL'] },
    { env: { LOG_LEVEL: 'loud' }, expect: ['LOG_LEVEL: must be one of the following values: fatal, error, warn'] },
    { env: { JAC_PUBLISH_POLICY: 'sometimes' }, expect: ['JAC_PUBLISH_POLICY: must be one of the following values'] },
    { env: { METRICS_ENABLED: 'maybe' }, expect: ['METRICS_ENABLED: must be true or false'] },
    { env: { METRICS_PORT: 'nine' }, expect: ['METRICS_PORT: must be an integer number'] },
    {
      env: { ADMIN_TOKEN: 'short-secret' },
      expect: ['ADMIN_TOKEN: must be longer than or equal to 16 characters'],
      secret: 'short-secret',
    },
    { env: { TRUST_PROXY: '10.0.0.0/8, not-an-address' }, expect: ['TRUST_PROXY: must be a comma-separated list'] },
    { env: { TRUST_PROXY: '300.1.1.1' }, expect: ['TRUST_PROXY: must be a comma-separated list'] },
    { env: { PORT: '9100', METRICS_PORT: '9100' }, expect: ['METRICS_PORT: must differ from PORT (both 9100)'] },
    {
      env: { REDIS_URL: 'redis://127.0.0.1:1', ADMIN_TOKEN: '', JAC_JWT_SECRET: '' },
      expect: ['ADMIN_TOKEN: must be set when Redis is used', 'JAC_JWT_SECRET: must be set when Redis is used'],
    },
    {
      env: { PORT: 'eighty', LOG_LEVEL: 'loud', HATSU_PING_INTERVAL_MS: '5' },
      expect: [
        'PORT: must be an integer number',
        'LOG_LEVEL: must be one of',
        'HATSU_PING_INTERVAL_MS: must not be less than 10',
      ],
    },
  ];

  for (const { env, expect, secret } of cases) {
    it(`exits 78 with one clean block for ${JSON.stringify(env)}`, async () => {
      const main = run(process.execPath, [MAIN], { ...BASE_ENV, PORT: '0', ...env });
      assert.deepEqual(await main.exited, { code: 78, signal: null });
      const text = main.stderr();
      assert.match(text, /^gatehouse: invalid configuration, nothing was started:\n/);
      for (const line of expect) assert.ok(text.includes(`\n  ${line}`), `${line} in:\n${text}`);
      assert.equal(text.split('\n').filter((l) => l.startsWith('  ')).length, expect.length, text);
      assert.doesNotMatch(text, /\n\s+at /, 'no stack trace');
      if (secret !== undefined) assert.ok(!text.includes(secret), 'the value is never printed');
      assert.equal(main.stdout(), '', 'nothing started, nothing logged');
    });
  }
});

describe('start-up failures', () => {
  it('says in one line when the port is taken, without a stack trace', async () => {
    const taken = spawnGateway({});
    const gw = await taken;
    try {
      const main = run(process.execPath, [MAIN], { ...BASE_ENV, PORT: String(gw.port), LOG_LEVEL: 'silent' });
      assert.deepEqual(await main.exited, { code: 1, signal: null });
      assert.match(main.stderr(), /gatehouse: cannot listen: .*EADDRINUSE/);
      assert.doesNotMatch(main.stderr(), /\n\s+at /);
    } finally {
      gw.child.kill('SIGTERM');
      await gw.exited;
    }
  });
});

describe('logs an operator can use', () => {
  it('writes a line per HTTP request, per admin write and, at debug, per connection; never a secret', async () => {
    const gw = await spawnGateway({ LOG_LEVEL: 'debug', ADMIN_TOKEN, TRUST_PROXY: '127.0.0.1' });
    try {
      const token = await issueToken(gw);
      const session = 'a-secret-session-id';
      const sessionPath = `/admin/hatsu/sessions/${session}`;
      assert.equal((await admin(gw, 'PUT', '/admin/hatsu/users/5', { username: 'u' })).status, 204);
      assert.equal((await admin(gw, 'PUT', sessionPath, { user_id: '5' })).status, 204);
      assert.equal(
        (await call(gw, 'GET', '/admin/connections', { headers: { Authorization: 'Bearer nope' } })).status,
        401,
      );
      assert.equal((await call(gw, 'GET', '/no/such/route?token=q')).status, 404);
      assert.equal(
        (await call(gw, 'GET', '/health/ready', { headers: { 'X-Forwarded-For': '198.51.100.4' } })).status,
        200,
      );
      const ws = await WsTestClient.connect(gw.ws('/websocket'), {
        headers: { Authorization: `Bearer ${token.token}`, 'X-Forwarded-For': '198.51.100.5' },
      });
      const event = await ws.next<{ data: { client_id: string } }>();
      await ws.close();

      const lines = await waitFor(
        () => {
          const all = logLines(gw.output());
          return all.some((l) => l.msg === 'connection closed') ? all : undefined;
        },
        { what: 'the connection-closed line' },
      );
      const requests = lines.filter((l) => l.msg === 'http request');
      const route = (r: string, status: number): LogLine | undefined =>
        requests.find((l) => l['route'] === r && l['status'] === status);
      const mint = route('/admin/jac/tokens', 201);
      assert.ok(mint, 'the mint request');
      assert.equal(mint['method'], 'POST');
      assert.equal(typeof mint['ms'], 'number');
      assert.equal(mint['level'], 'info');
      assert.ok(route('/admin/hatsu/sessions/:sessionId', 204), 'the route, not the path with the session id');
      assert.ok(route('/admin/connections', 401), 'a refused request too');
      const unmatched = requests.find((l) => l['status'] === 404);
      assert.equal(unmatched?.['route'], null);
      assert.equal(unmatched?.['path'], '/no/such/route', 'no query string');
      const probe = route('/health/ready', 200);
      assert.equal(probe?.['level'], 'debug', 'probes are debug detail');
      assert.equal(probe?.['ip'], '198.51.100.4', 'the forwarded client, the peer being a trusted proxy');

      const writes = lines.filter((l) => l.msg === 'admin write');
      assert.deepEqual(
        writes.map((l) => [l['method'], l['route'], l['status']]),
        [
          ['POST', '/admin/jac/tokens', 201],
          ['PUT', '/admin/hatsu/users/:id', 204],
          ['PUT', '/admin/hatsu/sessions/:sessionId', 204],
        ],
      );
      assert.deepEqual(writes[1]?.['params'], { id: '5' });
      assert.deepEqual(writes[1]?.['fields'], ['username']);
      assert.match(String((writes[2]?.['params'] as Record<string, string>)['sessionId']), /^sha256:[0-9a-f]{12}$/);

      const opened = lines.find((l) => l.msg === 'connection opened');
      const closed = lines.find((l) => l.msg === 'connection closed');
      assert.equal(opened?.['level'], 'debug');
      assert.equal(opened?.['protocol'], 'jac');
      assert.equal(opened?.['clientId'], event.data.client_id);
      assert.equal(opened?.['ip'], '198.51.100.5');
      assert.equal(closed?.['clientId'], event.data.client_id);
      assert.equal(closed?.['code'], 1005);
      assert.equal(typeof closed?.['durationMs'], 'number');

      const everything = gw.output();
      for (const secret of [ADMIN_TOKEN, token.token, session, 'Bearer nope']) {
        assert.ok(!everything.includes(secret), `${secret.slice(0, 12)}... is never logged`);
      }
    } finally {
      gw.child.kill('SIGTERM');
      await gw.exited;
    }
  });
});
