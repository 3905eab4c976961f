import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startApp, type TestApp } from '../helpers/app.js';

async function get(app: TestApp, path: string, headers: Record<string, string> = {}) {
  const res = await fetch(app.http + path, { headers });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

describe('GET /admin/ui', () => {
  let app: TestApp;
  let index: string;

  before(async () => {
    app = await startApp();
    index = (await get(app, '/admin/ui')).text;
  });

  after(() => app.close());

  it('serves the page without a token, with and without the trailing slash, revalidated on each load', async () => {
    for (const path of ['/admin/ui', '/admin/ui/']) {
      const res = await get(app, path);
      assert.equal(res.status, 200, path);
      assert.equal(res.headers.get('content-type'), 'text/html; charset=utf-8');
      assert.equal(res.headers.get('cache-control'), 'no-cache');
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
      assert.equal(res.headers.get('x-frame-options'), 'DENY');
      assert.match(res.text, /<title>Gatehouse admin<\/title>/);
      const etag = res.headers.get('etag') ?? '';
      assert.match(etag, /^"[\w-]+"$/);
      const again = await get(app, path, { 'If-None-Match': etag });
      assert.equal(again.status, 304);
      assert.equal(again.text, '');
    }
  });

  it('has a strict Content-Security-Policy: its own origin only, no inline script or style', async () => {
    const csp = (await get(app, '/admin/ui')).headers.get('content-security-policy') ?? '';
    const directives = new Map(csp.split('; ').map((d) => [d.split(' ')[0], d.split(' ').slice(1).join(' ')]));
    assert.equal(directives.get('default-src'), "'self'");
    assert.equal(directives.get('script-src'), "'self'");
    assert.equal(directives.get('style-src'), "'self'");
    assert.equal(directives.get('connect-src'), "'self'");
    assert.equal(directives.get('frame-ancestors'), "'none'");
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|https?:/);
    // Nothing inline for the policy to refuse, and nothing from elsewhere.
    assert.doesNotMatch(index, /<script(?![^>]*\ssrc=)[^>]*>/);
    assert.doesNotMatch(index, /<style|\sstyle=|\son\w+=/i);
    assert.doesNotMatch(index, /(?:src|href)="(?:https?:)?\/\//);
  });

  it('serves the hashed assets it names, cached for good, with their types', async () => {
    const assets = [...index.matchAll(/(?:src|href)="(\/admin\/ui\/assets\/[^"]+)"/g)].map((m) => m[1] as string);
    assert.ok(assets.some((a) => a.endsWith('.js')) && assets.some((a) => a.endsWith('.css')), assets.join(', '));
    for (const asset of assets) {
      const res = await get(app, asset);
      assert.equal(res.status, 200, asset);
      assert.equal(res.headers.get('cache-control'), 'public, max-age=31536000, immutable');
      assert.equal(
        res.headers.get('content-type'),
        asset.endsWith('.js') ? 'text/javascript; charset=utf-8' : 'text/css; charset=utf-8',
      );
      assert.ok(res.text.length > 100);
      // The built script reaches nowhere but this origin.
      assert.doesNotMatch(res.text, /https?:\/\/(?!www\.w3\.org)[a-z]/i, asset);
    }
  });

  it('answers 404 JSON, not cached, for anything else under it', async () => {
    for (const path of [
      '/admin/ui/assets/nope.js',
      '/admin/ui/assets/..%2Findex.html',
      '/admin/ui/assets/%2e%2e%2f%2e%2e%2fpackage.json',
      '/admin/ui/index.html',
      '/admin/ui/src/main.ts',
    ]) {
      const res = await get(app, path);
      assert.equal(res.status, 404, path);
      assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
      assert.equal(res.headers.get('cache-control'), null, path);
      assert.equal((JSON.parse(res.text) as { statusCode: number }).statusCode, 404);
    }
  });
});
