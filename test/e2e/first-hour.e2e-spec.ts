import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { VERSION } from '../../src/core/version.js';
import { ADMIN_TOKEN, adminAuth, startApp, type TestApp } from '../helpers/app.js';
import { call } from '../helpers/http.js';
import { freePort } from '../helpers/ports.js';
import { expectUpgradeRejected } from '../helpers/ws-client.js';

/** A raw request with exactly these headers and body (no JSON helper adding a Content-Type). */
async function raw(app: TestApp, method: string, path: string, headers: Record<string, string>, body?: string) {
  const res = await fetch(app.http + path, { method, headers, body });
  const text = await res.text();
  return {
    status: res.status,
    headers: res.headers,
    text,
    json: text === '' ? undefined : (JSON.parse(text) as unknown),
  };
}

const UNSUPPORTED = {
  statusCode: 415,
  error: 'Unsupported Media Type',
  message: 'The body must be JSON, sent with Content-Type: application/json',
};

describe('a first hour that works', () => {
  let app: TestApp;

  before(async () => {
    app = await startApp();
  });

  after(() => app.close());

  describe('GET /', () => {
    it('answers a JSON index: name, version, engine, every protocol with its paths, and where to go next', async () => {
      const answer = await call(app, 'GET', '/');
      assert.equal(answer.status, 200);
      assert.match(answer.contentType, /^application\/json/);
      const index = answer.json as {
        name: string;
        version: string;
        engine: string;
        protocols: { name: string; paths: string[]; port: number | null }[];
        links: Record<string, string>;
      };
      assert.equal(index.name, 'gatehouse');
      assert.equal(index.version, VERSION);
      assert.equal(index.engine, 'memory');
      assert.deepEqual(index.protocols.map((p) => p.name).sort(), [
        'fates-flamepaw',
        'fates-v2',
        'felix',
        'hatsu',
        'jac',
      ]);
      assert.deepEqual(
        index.protocols.find((p) => p.name === 'jac'),
        { name: 'jac', paths: ['/websocket'], port: null },
      );
      assert.deepEqual(index.links, {
        ready: '/health/ready',
        admin_ui: '/admin/ui',
        openapi: '/admin/openapi.json',
        docs: '/admin/docs',
      });
      for (const link of Object.values(index.links)) {
        const status = (await call(app, 'GET', link, { headers: adminAuth })).status;
        assert.equal(status, 200, `${link} answers`);
      }
    });

    it('lists each protocol on its dedicated port when it has one', async () => {
      const port = await freePort();
      const dedicated = await startApp({ FELIX_PORT: String(port) });
      try {
        const index = (await call(dedicated, 'GET', '/')).json as { protocols: { name: string; port: unknown }[] };
        assert.equal(index.protocols.find((p) => p.name === 'felix')?.port, port);
        assert.equal(index.protocols.find((p) => p.name === 'jac')?.port, null);
      } finally {
        await dedicated.close();
      }
    });

    it('is plain HTTP: a WebSocket upgrade on / is hatsu, and other unowned paths are refused with 404', async () => {
      assert.equal((await expectUpgradeRejected(app.ws('/nope'))).status, 404);
    });
  });

  describe('415 for a body that is not JSON', () => {
    const writes: [method: string, path: string][] = [
      ['POST', '/admin/jac/notify'],
      ['POST', '/admin/jac/tokens'],
      ['PUT', '/admin/fates/bots/1/token'],
      ['PUT', '/admin/felix/guilds/1'],
      ['POST', '/admin/hatsu/dispatch'],
      ['POST', '/walker/anything'],
    ];

    it('answers 415 with a clear JSON error for text/plain, a form, or no type at all', async () => {
      for (const [method, path] of writes) {
        for (const headers of [
          { 'Content-Type': 'text/plain' },
          { 'Content-Type': 'application/x-www-form-urlencoded' },
          { 'Content-Type': 'multipart/form-data; boundary=x' },
          {},
        ] as Record<string, string>[]) {
          const res = await raw(app, method, path, { ...adminAuth, ...headers }, '{"data":{}}');
          assert.equal(res.status, 415, `${method} ${path} ${JSON.stringify(headers)}`);
          assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
          assert.deepEqual(res.json, UNSUPPORTED);
        }
      }
    });

    it('answers 415 for a charset the JSON parser cannot read', async () => {
      const res = await raw(
        app,
        'POST',
        '/admin/jac/tokens',
        { ...adminAuth, 'Content-Type': 'application/json; charset=latin1' },
        '{}',
      );
      assert.equal(res.status, 415);
      assert.deepEqual(res.json, {
        statusCode: 415,
        error: 'Unsupported Media Type',
        message: 'The body must be UTF-8 JSON, uncompressed or gzip/deflate encoded',
      });
    });

    it('takes JSON with any letter case and parameters, and requests without a body', async () => {
      for (const type of ['application/json', 'Application/JSON; charset=utf-8', 'application/json;charset=UTF-8']) {
        const res = await raw(app, 'POST', '/admin/jac/tokens', { ...adminAuth, 'Content-Type': type }, '{}');
        assert.equal(res.status, 201, type);
      }
      const empty = await raw(app, 'POST', '/admin/jac/tokens', { ...adminAuth, 'Content-Length': '0' });
      assert.equal(empty.status, 201, 'no body at all is no media type to refuse');
      const deleted = await raw(app, 'DELETE', '/admin/connections/nobody', adminAuth);
      assert.equal(deleted.status, 404);
      // A GET's body is never read, so its type does not matter.
      const listed = await raw(app, 'GET', '/admin/connections', adminAuth);
      assert.equal(listed.status, 200);
    });
  });

  describe('WWW-Authenticate on a 401', () => {
    it('names the Bearer scheme on every admin 401, and never on other answers', async () => {
      for (const [method, path] of [
        ['GET', '/admin/connections'],
        ['GET', '/admin/stream'],
        ['POST', '/admin/jac/notify'],
        ['DELETE', '/admin/connections/x'],
        ['GET', '/admin/openapi.json'],
      ] as const) {
        for (const headers of [
          {},
          { Authorization: 'Bearer wrong-token' },
          { Authorization: `Basic ${ADMIN_TOKEN}` },
        ] as Record<string, string>[]) {
          const res = await raw(app, method, path, headers);
          assert.equal(res.status, 401, `${method} ${path}`);
          assert.equal(res.headers.get('www-authenticate'), 'Bearer', `${method} ${path}`);
          assert.deepEqual(res.json, {
            statusCode: 401,
            error: 'Unauthorized',
            message: 'A valid admin bearer token is required',
          });
        }
      }
      const ok = await raw(app, 'GET', '/admin/connections', adminAuth);
      assert.equal(ok.status, 200);
      assert.equal(ok.headers.get('www-authenticate'), null);
      const notFound = await raw(app, 'DELETE', '/admin/connections/x', adminAuth);
      assert.equal(notFound.status, 404);
      assert.equal(notFound.headers.get('www-authenticate'), null);
    });
  });
});
