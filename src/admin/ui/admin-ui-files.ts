import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, extname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The folder the page is built into, beside the compiled server (`dist/admin-ui`). */
export const UI_FOLDER = 'admin-ui';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
};

/** The built page is a few files; anything beyond this is not the page. */
const MAX_TOTAL_BYTES = 8 * 1024 * 1024;

export interface UiFile {
  body: Buffer;
  type: string;
  etag: string;
}

/** The built admin page, read into memory once: `index.html` and its hashed assets. */
export interface UiFiles {
  folder: string;
  index: UiFile;
  /** By path under the folder (`assets/index-4f2a.js`). */
  assets: Map<string, UiFile>;
}

/**
 * Finds the built page: the first `admin-ui/index.html` walking up from this module, which
 * is `dist/admin-ui` for the compiled server (`dist/admin/ui/`) and the test build's own copy
 * for the test runner. Null when the page was not built.
 */
export function findUiFolder(from = dirname(fileURLToPath(import.meta.url))): string | null {
  let dir = from;
  for (;;) {
    const candidate = join(dir, UI_FOLDER);
    try {
      if (statSync(join(candidate, 'index.html')).isFile()) return candidate;
    } catch {
      // not here; one level up
    }
    const parent = dirname(dir);
    if (parent === dir) return null;
    dir = parent;
  }
}

export function loadUiFiles(folder: string): UiFiles {
  const assets = new Map<string, UiFile>();
  let index: UiFile | null = null;
  let total = 0;
  for (const path of walk(folder)) {
    const type = TYPES[extname(path)];
    if (type === undefined) continue;
    const body = readFileSync(path);
    total += body.length;
    if (total > MAX_TOTAL_BYTES) throw new Error(`${folder} holds more than ${MAX_TOTAL_BYTES} bytes`);
    const file = uiFile(body, type);
    const name = relative(folder, path).split(sep).join('/');
    if (name === 'index.html') index = file;
    else assets.set(name, file);
  }
  if (!index) throw new Error(`${folder} has no index.html`);
  return { folder, index, assets };
}

/** A file to serve, with an ETag from its content. */
export function uiFile(body: Buffer, type: string): UiFile {
  return { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` };
}

function walk(dir: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) found.push(...walk(path));
    else if (entry.isFile()) found.push(path);
  }
  return found;
}
