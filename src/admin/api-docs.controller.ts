import { Controller, Get, Param, Req, Res, type OnModuleInit } from '@nestjs/common';
import { ApiExcludeEndpoint, ApiOkResponse, ApiOperation } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { ApiErrors } from '../core/http/openapi.js';
import { notFound } from '../core/http/http-errors.js';
import { send } from './ui/admin-ui.controller.js';
import { uiFile, type UiFile } from './ui/admin-ui-files.js';

const ASSETS = '/admin/docs/assets';

/** The explorer's own page: Swagger UI's bundle and stylesheet, and the script that starts it. */
const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Gatehouse API</title>
<link rel="stylesheet" href="${ASSETS}/swagger-ui.css">
<link rel="stylesheet" href="${ASSETS}/docs.css">
</head>
<body>
<form id="sign-in" hidden>
<h1>Gatehouse API</h1>
<p>The description is behind the admin token (ADMIN_TOKEN, or the one printed on stderr at start-up). It is kept in this tab only and sent as a bearer header; Authorize uses it for the calls you try.</p>
<label>Admin token <input id="token" type="password" autocomplete="off" required></label>
<button type="submit">Load</button>
<p id="problem" role="alert"></p>
</form>
<div id="swagger-ui"></div>
<script src="${ASSETS}/swagger-ui-bundle.js"></script>
<script src="${ASSETS}/docs.js"></script>
</body>
</html>
`;

/**
 * Loads the document with the token (the same tab-only key as the admin page), then starts
 * Swagger UI on it with the admin scheme already authorized. A refused token shows the form
 * again. No validator badge: it would send the document to another site.
 */
const SCRIPT = `(() => {
  const KEY = 'gatehouse.adminToken';
  const form = document.getElementById('sign-in');
  const input = document.getElementById('token');
  const problem = document.getElementById('problem');
  const ask = (message) => {
    problem.textContent = message;
    form.hidden = false;
    input.focus();
  };
  async function load(token) {
    const res = await fetch('/admin/openapi.json', { headers: { Authorization: 'Bearer ' + token } });
    if (res.status === 401) {
      sessionStorage.removeItem(KEY);
      return ask('That token was refused (401).');
    }
    if (!res.ok) return ask('The description could not be loaded (' + res.status + ').');
    sessionStorage.setItem(KEY, token);
    form.hidden = true;
    const ui = SwaggerUIBundle({
      spec: await res.json(),
      dom_id: '#swagger-ui',
      validatorUrl: null,
      onComplete: () => ui.preauthorizeApiKey('admin', token),
    });
  }
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    problem.textContent = '';
    load(input.value.trim()).catch((err) => ask(String(err)));
  });
  const saved = sessionStorage.getItem(KEY);
  if (saved) load(saved).catch((err) => ask(String(err)));
  else ask('');
})();
`;

const STYLE = `#sign-in { max-width: 40rem; margin: 2rem auto; padding: 0 1rem; font-family: sans-serif; }
#sign-in input { width: 100%; margin: 0.5rem 0; padding: 0.4rem; font: inherit; }
#sign-in button { padding: 0.4rem 1rem; font: inherit; }
#problem { color: #b00020; }
`;

/** Everything but the script may load from this origin only; inline script is refused. */
const DOCS_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/**
 * `GET /admin/docs`: Swagger UI on `/admin/openapi.json`, served from the `swagger-ui-dist`
 * package (no other site is asked for anything). The page loads without a token, like the
 * admin page; the document it shows does not.
 */
@Controller('admin/docs')
export class ApiDocsController implements OnModuleInit {
  private page: UiFile;
  private readonly assets = new Map<string, UiFile>();

  onModuleInit(): void {
    const dist = dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));
    const js = 'text/javascript; charset=utf-8';
    const css = 'text/css; charset=utf-8';
    this.page = uiFile(Buffer.from(PAGE), 'text/html; charset=utf-8');
    this.assets.set('swagger-ui-bundle.js', uiFile(readFileSync(join(dist, 'swagger-ui-bundle.js')), js));
    this.assets.set('swagger-ui.css', uiFile(readFileSync(join(dist, 'swagger-ui.css')), css));
    this.assets.set('docs.js', uiFile(Buffer.from(SCRIPT), js));
    this.assets.set('docs.css', uiFile(Buffer.from(STYLE), css));
  }

  @Get()
  @ApiOperation({ summary: 'The API explorer (Swagger UI); no token to load it, it asks for one' })
  @ApiOkResponse({ description: 'The page', content: { 'text/html': { schema: { type: 'string' } } } })
  index(@Req() req: Request, @Res() res: Response): void {
    res.setHeader('Cache-Control', 'no-cache');
    res.setHeader('Content-Security-Policy', DOCS_CSP);
    res.setHeader('X-Frame-Options', 'DENY');
    res.setHeader('Referrer-Policy', 'no-referrer');
    send(req, res, this.page);
  }

  @Get('assets/:file')
  @ApiExcludeEndpoint()
  @ApiErrors(404)
  asset(@Param('file') file: string, @Req() req: Request, @Res() res: Response): void {
    const found = this.assets.get(file);
    if (!found) throw notFound('no such file');
    res.setHeader('Cache-Control', 'no-cache');
    send(req, res, found);
  }
}
