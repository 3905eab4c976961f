import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { ADMIN_TOKEN, JWT_SECRET } from '../helpers/app.js';
import { runProcess, type RunningProcess } from '../helpers/gateway-process.js';
import { freePort } from '../helpers/ports.js';
import { httpsCall, servedSerial, TestCa } from '../helpers/tls-certs.js';
import { waitFor } from '../helpers/wait.js';
import { WsTestClient } from '../helpers/ws-client.js';

/** The compiled entry point of this test build. */
const MAIN = fileURLToPath(new URL('../../src/main.js', import.meta.url));

const BASE_ENV = {
  PATH: process.env['PATH'] ?? '',
  HOST: '127.0.0.1',
  ADMIN_TOKEN,
  JAC_JWT_SECRET: JWT_SECRET,
  AUTH_FAILURE_LIMIT: '0',
  LOG_LEVEL: 'info',
};

type LogLine = Record<string, unknown> & { msg?: string };

function logLines(text: string): LogLine[] {
  return text
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as LogLine);
}

function gateway(env: Record<string, string>, command = [process.execPath, MAIN]): RunningProcess {
  const [bin, ...args] = command as [string, ...string[]];
  return runProcess(bin, args, { env: { ...BASE_ENV, ...env } });
}

/** The log line `msg` (matching `where`) once the process has written it. */
function logged(child: RunningProcess, msg: string, where: (line: LogLine) => boolean = () => true): Promise<LogLine> {
  return waitFor(() => logLines(child.stdout()).find((line) => line.msg === msg && where(line)), {
    timeoutMs: 20_000,
    intervalMs: 20,
    what: `the log line "${msg}" (output: ${child.output().slice(-800)})`,
  });
}

/** The base64 lines of a PEM key: none of them may ever be printed. */
function keyLines(key: string): string[] {
  return key.split('\n').filter((line) => line !== '' && !line.startsWith('-----'));
}

function assertNoKeyMaterial(output: string, ...keys: string[]): void {
  assert.doesNotMatch(output, /-----END [A-Z ]*PRIVATE KEY-----/);
  for (const line of keys.flatMap(keyLines)) assert.ok(!output.includes(line), 'a line of the key was printed');
}

describe('TLS files at start-up', () => {
  // Every way a file can be bad is in tls-files.spec.ts; here, that a bad pair ends the process.
  it('stops with exit 78 and a line naming the problem, never the key', { timeout: 60_000 }, async (t) => {
    const authority = TestCa.create();
    t.after(() => authority.remove());
    const pair = authority.issue();
    const other = authority.issue();
    const cases: { env: Record<string, string>; problem: RegExp }[] = [
      {
        env: { TLS_CERT_FILE: pair.chainFile, TLS_KEY_FILE: other.keyFile },
        problem: /TLS_KEY_FILE: is not the private key of the certificate in TLS_CERT_FILE/,
      },
      // The files given the wrong way round: each holds the other's kind of PEM.
      {
        env: { TLS_CERT_FILE: pair.keyFile, TLS_KEY_FILE: pair.chainFile },
        problem: /TLS_CERT_FILE: holds no PEM certificate[^\n]*\n\s+TLS_KEY_FILE: holds no PEM private key/,
      },
      { env: { TLS_CERT_FILE: pair.chainFile }, problem: /TLS_KEY_FILE: must be set with TLS_CERT_FILE/ },
    ];
    await Promise.all(
      cases.map(async ({ env, problem }) => {
        const child = gateway({ PORT: String(await freePort()), ...env });
        const { code } = await child.exited;
        assert.equal(code, 78, child.output());
        assert.match(child.stderr(), /^gatehouse: invalid configuration, nothing was started:\n/);
        assert.match(child.stderr(), problem);
        assert.doesNotMatch(child.output(), /\n\s+at |node:internal/, 'no stack trace');
        assertNoKeyMaterial(child.output(), pair.key, other.key);
      }),
    );
  });
});

describe('TLS reload in a gateway process: SIGHUP and a watched file change', () => {
  let authority: TestCa;
  let gw: RunningProcess;
  let port: number;
  let store: string;
  let live: string;
  let firstSerial: string;
  const keys: string[] = [];

  /** Rewrites the files the symlinks point to, in place: no event in the directory that is watched. */
  function rewrite(chain: string, key: string): void {
    writeFileSync(join(store, 'cert.pem'), chain);
    writeFileSync(join(store, 'key.pem'), key);
  }

  before(async () => {
    authority = TestCa.create();
    // certbot's layout: live/ holds symlinks into the directory the certificates are kept in.
    store = join(authority.dir, 'archive');
    live = join(authority.dir, 'live');
    mkdirSync(store);
    mkdirSync(live);
    const issued = authority.issue();
    firstSerial = issued.serial;
    keys.push(issued.key);
    rewrite(issued.chain, issued.key);
    symlinkSync(join(store, 'cert.pem'), join(live, 'tls.crt'));
    symlinkSync(join(store, 'key.pem'), join(live, 'tls.key'));
    port = await freePort();
    gw = gateway({ PORT: String(port), TLS_CERT_FILE: join(live, 'tls.crt'), TLS_KEY_FILE: join(live, 'tls.key') });
    const started = await logged(gw, 'gatehouse started');
    assert.equal((started['tls'] as { serial: string }).serial, firstSerial);
    const [main] = started['listeners'] as { serves: string[] }[];
    assert.ok(main?.serves.includes('wss /websocket (jac)'), JSON.stringify(main));
    assert.match(main?.serves[0] ?? '', /^https \//);
  });

  after(async () => {
    if (gw && gw.child.exitCode === null) {
      gw.child.kill('SIGTERM');
      await gw.exited;
    }
    authority?.remove();
  });

  it('keeps the certificate it has when the files are bad, and takes a good pair', { timeout: 60_000 }, async () => {
    const open = await WsTestClient.connect(`wss://127.0.0.1:${port}/websocket`, { ca: authority.ca });
    assert.equal((await open.next<{ type: string }>()).type, 'connection');

    // A certificate whose key does not match, then SIGHUP: an error line, the old pair kept.
    const wrong = authority.issue();
    const stray = authority.issue();
    keys.push(wrong.key, stray.key);
    rewrite(wrong.chain, stray.key);
    gw.child.kill('SIGHUP');
    const failed = await logged(
      gw,
      'tls reload failed: still serving the previous certificate',
      (line) => line['reason'] === 'SIGHUP',
    );
    assert.equal(failed['reason'], 'SIGHUP');
    assert.deepEqual(failed['problems'], ['TLS_KEY_FILE: is not the private key of the certificate in TLS_CERT_FILE']);
    assert.equal(await servedSerial(port, authority.ca), firstSerial);
    assert.equal(gw.child.exitCode, null, 'still running');

    // A good pair, then SIGHUP: one line for the reload, and new connections get the new one.
    const next = authority.issue();
    keys.push(next.key);
    rewrite(next.chain, next.key);
    gw.child.kill('SIGHUP');
    const reloaded = await logged(gw, 'tls certificate reloaded', (line) => line['serial'] === next.serial);
    assert.equal(reloaded['reason'], 'SIGHUP');
    assert.equal(reloaded['listeners'], 1);
    assert.equal(await servedSerial(port, authority.ca), next.serial);
    const answer = await httpsCall(`https://127.0.0.1:${port}`, authority.ca, 'GET', '/health/ready');
    assert.equal(answer.status, 200);

    // The socket opened before both reloads is still open and still answers.
    const pong = new Promise<void>((resolve) => open.socket.once('pong', () => resolve()));
    open.socket.ping();
    await pong;

    // The key's symlink swapped (a rename in the watched directory) for another certificate's
    // key: the watch reloads, finds the pair bad, logs it and keeps serving the old one.
    const stranger = authority.issue();
    keys.push(stranger.key);
    symlinkSync(stranger.keyFile, join(live, 'tls.key.tmp'));
    renameSync(join(live, 'tls.key.tmp'), join(live, 'tls.key'));
    const refused = await logged(
      gw,
      'tls reload failed: still serving the previous certificate',
      (line) => line['reason'] === 'file change',
    );
    assert.equal(refused['serving'], next.serial);
    assert.equal(await servedSerial(port, authority.ca), next.serial);

    gw.child.kill('SIGTERM');
    assert.deepEqual((await open.closed).code, 1001);
    assert.deepEqual(await gw.exited, { code: 0, signal: null });
    assertNoKeyMaterial(gw.output(), ...keys);
  });
});

/** Whether this machine lets the tests start a process as PID 1 of a new PID namespace. */
function pidNamespaces(): boolean {
  const probe = spawnSync('unshare', ['--user', '--map-root-user', '--pid', '--fork', 'true'], { stdio: 'ignore' });
  return probe.status === 0;
}

describe('a signal during start-up', () => {
  let blackHole: ReturnType<typeof createServer>;
  let redisPort: number;
  const held: Socket[] = [];
  let connected: (() => void) | null = null;

  before(async () => {
    // A "Redis" that takes the connection and never answers: start-up waits for it.
    blackHole = createServer((socket) => {
      held.push(socket);
      connected?.();
    });
    redisPort = await freePort();
    blackHole.listen(redisPort, '127.0.0.1');
  });

  after(() => {
    for (const socket of held) socket.destroy();
    blackHole.close();
  });

  async function stopDuringStartUp(command: string[], pidOf: (child: RunningProcess) => number): Promise<void> {
    const reached = new Promise<void>((resolve) => (connected = resolve));
    const child = gateway({ PORT: String(await freePort()), REDIS_URL: `redis://127.0.0.1:${redisPort}` }, command);
    try {
      // Start-up has reached the engine (the modules are loaded and it is connecting).
      await reached;
      process.kill(pidOf(child), 'SIGTERM');
      const exit = await child.exited;
      assert.deepEqual(exit, { code: 0, signal: null }, child.output());
      const lines = logLines(child.stdout());
      assert.ok(!lines.some((line) => line.msg === 'gatehouse started'), 'it never started serving');
      const stopped = lines.find((line) => line.msg === 'gatehouse stopped');
      assert.ok(stopped, child.output());
      assert.equal(stopped['signal'], 'SIGTERM');
      assert.equal(stopped['duringStartUp'], true);
    } finally {
      if (child.child.exitCode === null) child.child.kill('SIGKILL');
    }
  }

  it('stops cleanly with exit 0 instead of being killed half-way', { timeout: 60_000 }, async () => {
    await stopDuringStartUp([process.execPath, MAIN], (child) => child.child.pid as number);
  });

  it('is handled as PID 1, where a signal without a handler is ignored', { timeout: 60_000 }, async (t) => {
    if (!pidNamespaces()) {
      t.diagnostic('unshare cannot create a PID namespace here: the PID 1 case is not run');
      if (process.env['CI'] === undefined) {
        t.skip('no PID namespaces');
        return;
      }
    }
    // unshare forks the gateway as PID 1 of a new namespace and waits for it; the signal goes
    // to the gateway itself, from outside the namespace, as a container runtime sends it.
    await stopDuringStartUp(
      ['unshare', '--user', '--map-root-user', '--pid', '--fork', '--kill-child', process.execPath, MAIN],
      (child) => {
        const pid = child.child.pid as number;
        const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/);
        assert.equal(children.length, 1);
        const status = readFileSync(`/proc/${children[0]}/status`, 'utf8');
        assert.match(status, /^NSpid:\s+\d+\s+1$/m, 'the gateway is PID 1 in its namespace');
        return Number(children[0]);
      },
    );
  });
});
