// The generated API description (/admin/openapi.json) against the routes the app really serves,
// the DTOs' validation rules and the error bodies; and the explorer at /admin/docs.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { adminAuth, startApp, type TestApp } from '../helpers/app.js';
import { admin, call } from '../helpers/http.js';

type Schema = Record<string, unknown> & { properties?: Record<string, Schema>; required?: string[] };
interface Operation {
  security?: Record<string, string[]>[];
  parameters?: { name: string; in: string; required?: boolean; schema: Schema }[];
  requestBody?: { content: Record<string, { schema: Schema }> };
  responses: Record<string, { content?: Record<string, { schema: Schema }> }>;
}
interface Document {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Schema>; securitySchemes: Record<string, Schema> };
}

const METHODS = new Set(['get', 'put', 'post', 'delete', 'patch']);
/** Routes that serve the explorer's and the admin page's files, left out of the description on purpose. */
const UNDOCUMENTED = new Set(['get /admin/ui/assets/:file', 'get /admin/docs/assets/:file']);
const ERROR_REF = '#/components/schemas/HttpErrorBody';

/** Every `method path` Express routes, with `:param` placeholders. */
function servedRoutes(app: TestApp): Set<string> {
  const express = app.app.getHttpAdapter().getInstance() as {
    router: { stack: { route?: { path: string; methods: Record<string, boolean> } }[] };
  };
  const routes = new Set<string>();
  for (const { route } of express.router.stack) {
    if (!route) continue;
    for (const [method, on] of Object.entries(route.methods))
      if (on && METHODS.has(method)) routes.add(`${method} ${route.path}`);
  }
  return routes;
}

function operations(doc: Document): [key: string, operation: Operation][] {
  return Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([method]) => METHODS.has(method))
      .map(([method, op]): [string, Operation] => [`${method} ${path.replace(/\{(\w+)\}/g, ':$1')}`, op]),
  );
}

describe('GET /admin/openapi.json', () => {
  let app: TestApp;
  let doc: Document;
  before(async () => {
    app = await startApp();
    const answer = await admin(app, 'GET', '/admin/openapi.json');
    assert.equal(answer.status, 200);
    doc = answer.json as Document;
  });
  after(() => app.close());

  it('is behind the admin token', async () => {
    const refused = await call(app, 'GET', '/admin/openapi.json');
    assert.equal(refused.status, 401);
    assert.equal(refused.json && (refused.json as { statusCode: number }).statusCode, 401);
  });

  it('is OpenAPI 3.1 and documents exactly the routes the app serves', () => {
    assert.equal(doc.openapi, '3.1.0');
    const served = servedRoutes(app);
    const documented = new Set(operations(doc).map(([key]) => key));
    for (const key of documented) assert.ok(served.has(key), `${key} is documented and served`);
    for (const key of served)
      if (!UNDOCUMENTED.has(key)) assert.ok(documented.has(key), `${key} is served and documented`);
    for (const key of [
      'get /admin/connections',
      'delete /admin/connections/:clientId',
      'post /admin/jac/notify',
      'post /walker/:name',
      'put /admin/fates/bots/:id/token',
      'post /admin/fates/global/events',
      'put /admin/felix/status',
      'delete /admin/felix/tokens/:tokenId',
      'post /admin/hatsu/dispatch',
      'put /admin/hatsu/sessions/:sessionId',
      'get /available',
      'get /metrics',
      'get /health/ready',
      'get /admin/docs',
    ]) {
      assert.ok(documented.has(key), key);
    }
  });

  it('carries the DTOs’ validation rules: types, required fields, lengths, bounds, patterns, enums, sizes', () => {
    const { schemas } = doc.components;
    const setToken = schemas['SetTokenDto'] as Schema;
    assert.deepEqual(setToken.properties?.['token'], { type: 'string', minLength: 1, maxLength: 512 });
    assert.deepEqual(setToken.required, ['token']);
    assert.equal(setToken['additionalProperties'], false);

    const issue = schemas['IssueTokenDto'] as Schema;
    assert.equal(issue.properties?.['root_id']?.['pattern'], '^n:[A-Za-z0-9_]*:[0-9a-f]{24}$');
    assert.deepEqual(issue.properties?.['expires_in_s'], {
      type: 'integer',
      minimum: 1,
      maximum: 31_536_000,
      default: 86_400,
    });
    assert.equal(issue.required, undefined, 'every field is optional');

    const dispatch = schemas['DispatchDto'] as Schema;
    assert.deepEqual(dispatch.required, ['t', 'to']);
    assert.equal(dispatch.properties?.['t']?.['pattern'], '^[A-Za-z0-9_]{1,64}$');
    assert.deepEqual(dispatch.properties?.['t']?.['not'], { enum: ['HELLO', 'READY', 'ACK'] });
    assert.equal(dispatch.properties?.['type']?.['maxLength'], 64);
    const target = schemas['DispatchTargetDto'] as Schema;
    assert.deepEqual(target.properties?.['all'], { type: 'boolean', enum: [true] });
    assert.deepEqual(target.properties?.['guild_id'], { type: 'string', pattern: '^[0-9]{1,20}$' });

    const notify = schemas['NotifyDto'] as Schema;
    assert.deepEqual(notify.properties?.['root_ids'], {
      type: 'array',
      maxItems: 10_000,
      items: { type: 'string', maxLength: 512 },
    });
    assert.equal(notify.properties?.['data']?.['type'], 'object');

    const status = schemas['ReportStatusDto'] as Schema;
    assert.deepEqual(status.required, ['shards', 'guildsCount']);
    assert.deepEqual(status.properties?.['guildsCount'], { type: 'integer', minimum: 0 });
    assert.equal(status.properties?.['shards']?.['maxItems'], 10_000);

    const felixToken = schemas['CreateTokenDto'] as Schema;
    assert.equal(felixToken.properties?.['token']?.['pattern'], '^[\\x21-\\x7e]{16,512}$');
    assert.deepEqual(felixToken.properties?.['user'], { type: 'string', minLength: 1, maxLength: 128 });

    const limit = doc.paths['/admin/connections']?.['get']?.parameters?.find((p) => p.name === 'limit');
    assert.deepEqual(limit?.schema, { type: 'integer', minimum: 1, maximum: 1000, default: 100 });
    const session = doc.paths['/admin/hatsu/sessions/{sessionId}']?.['put']?.parameters?.find((p) => p.in === 'path');
    assert.equal(session?.schema['pattern'], '^[\\x21-\\x7e]{1,512}$');
  });

  it('documents the error body every error answer has, and the errors of each admin route', async () => {
    const error = doc.components.schemas['HttpErrorBody'] as Schema;
    assert.deepEqual(error.required, ['statusCode', 'error', 'message']);
    for (const [key, op] of operations(doc)) {
      if (!op.security?.some((s) => 'admin' in s)) continue;
      for (const status of ['400', '401', '413', '503']) {
        assert.equal(
          op.responses[status]?.content?.['application/json']?.schema['$ref'],
          ERROR_REF,
          `${key} ${status}`,
        );
      }
    }
    const notFound = doc.paths['/admin/hatsu/dispatch']?.['post']?.responses['404'];
    assert.equal(notFound?.content?.['application/json']?.schema['$ref'], ERROR_REF);
    assert.ok(doc.paths['/admin/felix/tokens']?.['post']?.responses['409']);
    // A real 400 has exactly the documented fields.
    const bad = await admin(app, 'PUT', '/admin/fates/bots/1/token', { token: '' });
    assert.equal(bad.status, 400);
    assert.deepEqual(Object.keys(bad.json as object), error.required);
  });

  it('declares the bearer schemes: admin routes need the admin token, public ones nothing', () => {
    assert.deepEqual(doc.components.securitySchemes['admin'], {
      type: 'http',
      scheme: 'bearer',
      description: 'ADMIN_TOKEN',
    });
    assert.equal(doc.components.securitySchemes['metrics']?.['scheme'], 'bearer');
    assert.deepEqual(doc.paths['/admin/jac/notify']?.['post']?.security, [{ admin: [] }]);
    assert.deepEqual(doc.paths['/admin/openapi.json']?.['get']?.security, [{ admin: [] }]);
    assert.deepEqual(doc.paths['/metrics']?.['get']?.security, [{ metrics: [] }, {}]);
    assert.deepEqual(doc.paths['/walker/{name}']?.['post']?.security, [{ jac: [] }, {}]);
    for (const path of ['/health/live', '/health/ready', '/available', '/port', '/admin/docs', '/']) {
      assert.equal(doc.paths[path]?.['get']?.security, undefined, path);
    }
  });
});

describe('GET /admin/docs', () => {
  let app: TestApp;
  before(async () => {
    app = await startApp();
  });
  after(() => app.close());

  it('serves the explorer without a token, every script and stylesheet from the gateway itself', async () => {
    const page = await call(app, 'GET', '/admin/docs');
    assert.equal(page.status, 200);
    assert.match(page.contentType, /^text\/html/);
    const assets = [...page.text.matchAll(/<(?:script|link)\b[^>]*?\b(?:src|href)="([^"]+)"/g)].map(
      (m) => m[1] as string,
    );
    assert.ok(assets.length >= 4, `scripts and stylesheets: ${assets.join(', ')}`);
    assert.doesNotMatch(page.text, /\bhttps?:\/\//, 'no URL of another site');
    for (const asset of assets) {
      assert.match(asset, /^\/admin\/docs\/assets\//, asset);
      const answer = await call(app, 'GET', asset);
      assert.equal(answer.status, 200, asset);
      assert.match(answer.contentType, asset.endsWith('.css') ? /^text\/css/ : /^text\/javascript/, asset);
      assert.ok(answer.text.length > 0, asset);
    }
    assert.equal((await call(app, 'GET', '/admin/docs/assets/package.json')).status, 404);
  });

  it('runs only its own scripts, and loads the description with the token it asks for', async () => {
    const page = await fetch(`${app.http}/admin/docs`);
    const csp = page.headers.get('content-security-policy') ?? '';
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.match(csp, /default-src 'self'/);
    const script = await call(app, 'GET', '/admin/docs/assets/docs.js');
    assert.match(
      script.text,
      /fetch\('\/admin\/openapi\.json', \{ headers: \{ Authorization: 'Bearer ' \+ token \} \}\)/,
    );
    assert.match(script.text, /preauthorizeApiKey\('admin', token\)/);
    assert.match(script.text, /validatorUrl: null/);
    // The index links the explorer.
    const index = await call(app, 'GET', '/', { headers: adminAuth });
    assert.equal((index.json as { links: Record<string, string> }).links['docs'], '/admin/docs');
  });
});
