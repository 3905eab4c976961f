import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import type { TestApp } from '../helpers/app.js';
import { call } from '../helpers/http.js';
import { freePort } from '../helpers/ports.js';
import { expectUpgradeRejected, WsTestClient } from '../helpers/ws-client.js';
import { FatesClient, V2_PATH } from '../helpers/fates-client.js';
import { durationMs } from './dockerfile.js';
import { buildImage, snapshot, type Image } from './image.js';
import { gatewayContainer } from './manifests.js';

const exec = promisify(execFile);

/** The checkout: the test runner runs from it, as `docker build .` does. */
const ROOT = process.cwd();

type LogLine = Record<string, unknown> & { msg?: string };

/** The process's stdout as JSON lines, with a promise for the first line that matches. */
class LogWatcher {
  private readonly lines: LogLine[] = [];
  private readonly waiters: { match: (line: LogLine) => boolean; resolve: (line: LogLine) => void }[] = [];
  private buffer = '';
  text = '';

  constructor(child: ChildProcess) {
    child.stdout?.on('data', (chunk: Buffer) => {
      this.text += chunk.toString();
      this.buffer += chunk.toString();
      let newline: number;
      while ((newline = this.buffer.indexOf('\n')) >= 0) {
        const raw = this.buffer.slice(0, newline);
        this.buffer = this.buffer.slice(newline + 1);
        if (!raw.startsWith('{')) continue;
        const line = JSON.parse(raw) as LogLine;
        this.lines.push(line);
        for (const waiter of this.waiters.filter((w) => w.match(line))) {
          this.waiters.splice(this.waiters.indexOf(waiter), 1);
          waiter.resolve(line);
        }
      }
    });
  }

  /** The first line with this `msg`; rejects when `gone` settles first (the process exited). */
  line(msg: string, gone: Promise<unknown>): Promise<LogLine> {
    const seen = this.lines.find((l) => l.msg === msg);
    if (seen) return Promise.resolve(seen);
    return Promise.race([
      new Promise<LogLine>((resolve) => this.waiters.push({ match: (l) => l.msg === msg, resolve })),
      gone.then(() => Promise.reject(new Error(`the process exited before logging "${msg}":\n${this.text}`))),
    ]);
  }
}

/** Runs the image's HEALTHCHECK command as Docker would: in the image's directory and environment. */
async function healthcheck(image: Image, env: Record<string, string>): Promise<number> {
  assert.ok(image.healthcheck, 'the image has a HEALTHCHECK');
  const [program, ...args] = image.healthcheck.command;
  assert.equal(program, 'node', 'the health check needs nothing but node');
  try {
    await exec(process.execPath, args, {
      cwd: image.dir,
      env,
      timeout: durationMs(image.healthcheck.options['timeout'] ?? '30s'),
    });
    return 0;
  } catch (err) {
    const { code } = err as { code?: unknown };
    if (typeof code === 'number') return code;
    throw err;
  }
}

describe('the container image, carried out without Docker', { timeout: 120_000 }, () => {
  let tmp: string;
  let image: Image;

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'gatehouse-image-'));
    image = await buildImage(ROOT, tmp);
  });

  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('holds the compiled gateway and the production dependencies only, for a non-root user', () => {
    assert.equal(new Set(image.base).size, 1, 'the build compiles on the Node line the image runs');
    assert.ok(
      image.ran.some((r) => r.stage === 'build' && r.command === 'npm run build'),
      'the build stage compiles with the project build script',
    );
    const install = image.ran.filter((r) => r.stage !== 'build').map((r) => r.command);
    assert.equal(install.length, 1, 'the image stage runs one command');
    assert.match(install[0] ?? '', /^npm ci .*--omit=dev/);

    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
      devDependencies: Record<string, string>;
    };
    for (const name of Object.keys(pkg.dependencies)) {
      assert.ok(existsSync(join(image.dir, 'node_modules', name, 'package.json')), `${name} is installed`);
    }
    for (const name of Object.keys(pkg.devDependencies)) {
      assert.ok(!existsSync(join(image.dir, 'node_modules', name)), `${name} (a dev dependency) is not`);
    }
    assert.ok(existsSync(join(image.dir, 'dist/main.js')));
    assert.ok(existsSync(join(image.dir, 'dist/admin-ui/index.html')), 'the admin page is built into the image');
    assert.ok(!existsSync(join(image.dir, 'src')), 'no TypeScript sources in the image');
    assert.ok(!existsSync(join(image.dir, 'dist/config/env.schema.spec.js')), 'no unit specs in the image');

    assert.match(image.user ?? '', /^\d+:\d+$/, 'USER is numeric, so runAsNonRoot can check it');
    assert.notEqual(Number(image.user?.split(':')[0]), 0, 'not root');
    assert.deepEqual(image.cmd, ['node', 'dist/main.js'], 'node itself is the command: PID 1, signals and all');
    assert.ok(image.expose.includes(Number(image.env['PORT'])), 'the main port is exposed');
  });

  it('serves every protocol with the image environment and drains on SIGTERM', async () => {
    // The image's ENV as it is, but for the port: the test cannot count on 8080 being free.
    const port = await freePort();
    const env = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...image.env, PORT: String(port) };
    const before = snapshot(image.dir);
    const child = spawn(process.execPath, image.cmd.slice(1), {
      cwd: image.dir,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    // 'close', not 'exit': by then every line the process wrote has been read.
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      child.once('close', (code, signal) => resolve({ code, signal }));
    });
    const log = new LogWatcher(child);
    const clients: WsTestClient[] = [];
    try {
      const started = await log.line('gatehouse started', exited);
      const listeners = started['listeners'] as { address: string }[];
      assert.equal(listeners[0]?.address, `0.0.0.0:${port}`, 'HOST from the image: every interface');
      assert.equal(started['engine'], 'memory');

      assert.equal(await healthcheck(image, env), 0, 'the HEALTHCHECK passes');
      const gw = {
        http: `http://127.0.0.1:${port}`,
        ws: (path: string) => `ws://127.0.0.1:${port}${path}`,
        port,
        app: null as never,
        close: () => Promise.resolve(),
      } satisfies TestApp;

      // The Kubernetes example's probes, on the port they name.
      const { container } = gatewayContainer(ROOT);
      for (const probe of [container.readinessProbe, container.livenessProbe]) {
        assert.equal(probe?.httpGet?.port, 'http');
        const answer = await call(gw, 'GET', probe?.httpGet?.path ?? '', { timeoutMs: 2000 });
        assert.equal(answer.status, 200, `${probe?.httpGet?.path}: ${answer.text}`);
      }

      const jac = await WsTestClient.connect(gw.ws('/websocket'));
      clients.push(jac);
      assert.equal((await jac.next<{ type: string }>()).type, 'connection');

      const fates = await FatesClient.open(gw, V2_PATH);
      clients.push(fates.ws);
      assert.equal(fates.identity.code, 'identity');

      assert.equal((await expectUpgradeRejected(gw.ws('/felix'))).status, 403, 'Felix without a token');

      const page = await call(gw, 'GET', '/admin/ui/', { timeoutMs: 2000 });
      assert.equal(page.status, 200, 'the image serves the admin page');
      assert.match(page.contentType, /^text\/html/);

      const available = await call(gw, 'GET', '/available', { timeoutMs: 2000 });
      assert.equal(available.status, 200, available.text);
      const offer = available.json as { port: number; url: string };
      assert.deepEqual(offer, { port, url: `ws://127.0.0.1:${port}/hatsu` });
      const hatsu = await WsTestClient.connect(offer.url);
      clients.push(hatsu);

      child.kill('SIGTERM');
      for (const client of clients) assert.equal((await client.waitClose(10_000)).code, 1001);
      assert.deepEqual(await exited, { code: 0, signal: null });
      const stopped = await log.line('gatehouse stopped', exited);
      assert.equal(stopped['signal'], 'SIGTERM');
      assert.equal(stopped['clients'], 3);
      assert.equal(stopped['unclosed'], 0);

      assert.equal(await healthcheck(image, env), 1, 'the HEALTHCHECK fails once nothing answers');
      assert.deepEqual(snapshot(image.dir), before, 'the process wrote nothing under its directory');
      assert.doesNotMatch(stderr, /\n\s+at /, `no stack trace on stderr:\n${stderr}`);
    } finally {
      for (const client of clients) client.terminate();
      child.kill('SIGKILL');
    }
  });
});
