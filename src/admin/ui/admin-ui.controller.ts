import { Controller, Get, NotFoundException, Param, Req, Res, type OnModuleInit } from '@nestjs/common';
import type { Request, Response } from 'express';
import { notFound } from '../../core/http/http-errors.js';
import { findUiFolder, loadUiFiles, type UiFile, type UiFiles } from './admin-ui-files.js';
import { ApiExcludeEndpoint, ApiOkResponse, ApiOperation } from '@nestjs/swagger';
import { ApiErrors } from '../../core/http/openapi.js';

/**
 * The page runs only its own script and stylesheet and talks only to this origin; inline
 * script and style are refused, so an injected string in the page cannot run.
 */
export const UI_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'none'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/**
 * `GET /admin/ui`: the admin page, from the files the build put in `dist/admin-ui`. It loads
 * without a token; every figure on it comes from admin routes the page calls with the token
 * it asks for. `index.html` is revalidated on every load (it names the current assets);
 * the assets carry a content hash in their names, so they are cached for good.
 */
@Controller('admin/ui')
export class AdminUiController implements OnModuleInit {
  private files: UiFiles | null = null;

  onModuleInit(): void {
    const folder = findUiFolder();
    this.files = folder === null ? null : loadUiFiles(folder);
  }

  @Get()
  @ApiOperation({ summary: 'The admin page; no token to load it, it asks for one' })
  @ApiOkResponse({ description: 'The page', content: { 'text/html': { schema: { type: 'string' } } } })
  @ApiErrors(404)
  index(@Req() req: Request, @Res() res: Response): void {
    if (!this.files) throw notFound('The admin page is not built; npm run build builds it into dist/admin-ui');
    res.setHeader('Cache-Control', 'no-cache');
    res.setHeader('Content-Security-Policy', UI_CSP);
    res.setHeader('X-Frame-Options', 'DENY');
    res.setHeader('Referrer-Policy', 'no-referrer');
    send(req, res, this.files.index);
  }

  @Get('assets/:file')
  @ApiExcludeEndpoint()
  asset(@Param('file') file: string, @Req() req: Request, @Res() res: Response): void {
    const found = this.files?.assets.get(`assets/${file}`);
    if (!found) throw assetNotFound();
    res.setHeader('Cache-Control', 'public, max-age=31536000, immutable');
    send(req, res, found);
  }
}

/** Sends `file`, or `304` when the client holds this version. */
export function send(req: Request, res: Response, file: UiFile): void {
  res.setHeader('Content-Type', file.type);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('ETag', file.etag);
  if (req.headers['if-none-match'] === file.etag) {
    res.status(304).end();
    return;
  }
  res.status(200).end(file.body);
}

function assetNotFound(): NotFoundException {
  return notFound('no such file');
}
