import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

// The page is served by the gateway at /admin/ui/ from dist/admin-ui; ADMIN_UI_OUT_DIR
// lets the test runner build a copy beside its compiled server instead.
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/admin/ui/',
  publicDir: false,
  logLevel: 'warn',
  build: {
    outDir: process.env.ADMIN_UI_OUT_DIR ?? fileURLToPath(new URL('../dist/admin-ui', import.meta.url)),
    emptyOutDir: true,
    assetsDir: 'assets',
    // Inlined assets would need data: URLs for scripts and styles, which the page's CSP refuses.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
    target: 'es2022',
  },
});
