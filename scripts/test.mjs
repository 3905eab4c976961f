#!/usr/bin/env node
// Compiles src and test with tsc (type-checking them), builds the admin page beside them,
// then runs the compiled specs with Node's test runner.
// `node scripts/test.mjs [unit|e2e|browser|cluster|bench|resilience|fuzz|deploy ...]` runs a subset.
import { spawnSync } from 'node:child_process';
import { readdirSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { run } from 'node:test';
import { spec } from 'node:test/reporters';

// TEST_BUILD_DIR lets several runs share a checkout without clobbering each other.
const BUILD = process.env.TEST_BUILD_DIR ?? 'build';
const SUITES = {
  unit: { dir: `${BUILD}/src`, suffix: '.spec.js' },
  e2e: { dir: `${BUILD}/test/e2e`, suffix: '.e2e-spec.js' },
  // The admin page in Debian's Chromium (skipped with a notice when it is not installed, outside CI).
  browser: { dir: `${BUILD}/test/browser`, suffix: '.browser-spec.js' },
  cluster: { dir: `${BUILD}/test/cluster`, suffix: '.cluster-spec.js' },
  bench: { dir: `${BUILD}/test/bench`, suffix: '.bench-spec.js' },
  resilience: { dir: `${BUILD}/test/resilience`, suffix: '.resilience-spec.js' },
  // Seeded fuzzing of every protocol: FUZZ_SEED picks the frames, FUZZ_FRAMES how many per protocol.
  fuzz: { dir: `${BUILD}/test/fuzz`, suffix: '.fuzz-spec.js' },
  // The container image carried out without Docker, the Kubernetes example, `nest generate`.
  deploy: { dir: `${BUILD}/test/deploy`, suffix: '.deploy-spec.js' },
};

const wanted = process.argv.slice(2);
const selected = wanted.length > 0 ? wanted : Object.keys(SUITES);
for (const name of selected) {
  if (!(name in SUITES)) {
    console.error(`unknown suite "${name}"; known: ${Object.keys(SUITES).join(', ')}`);
    process.exit(2);
  }
}

rmSync(BUILD, { recursive: true, force: true });
const tsc = spawnSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.json', '--outDir', BUILD], {
  stdio: 'inherit',
});
if (tsc.status !== 0) process.exit(tsc.status ?? 1);

// The compiled server finds the page in the nearest admin-ui folder above it: this one.
if (selected.some((name) => name === 'e2e' || name === 'browser')) {
  const vite = spawnSync(
    process.execPath,
    ['node_modules/vite/bin/vite.js', 'build', '--config', 'ui/vite.config.mjs'],
    { stdio: 'inherit', env: { ...process.env, ADMIN_UI_OUT_DIR: resolve(BUILD, 'admin-ui') } },
  );
  if (vite.status !== 0) process.exit(vite.status ?? 1);
}

function find(dir, suffix) {
  let found = [];
  let entries;
  try {
    entries = readdirSync(dir);
  } catch {
    return found;
  }
  for (const entry of entries) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) found = found.concat(find(path, suffix));
    else if (entry.endsWith(suffix)) found.push(path);
  }
  return found;
}

const files = selected.flatMap((name) => find(SUITES[name].dir, SUITES[name].suffix)).sort();
if (files.length === 0) {
  console.error('no test files found');
  process.exit(1);
}

const concurrency = Number(process.env.TEST_CONCURRENCY ?? 2);
// Per test file; soak runs (npm run test:soak) raise it.
const timeout = Number(process.env.TEST_TIMEOUT_MS ?? 180_000);
const stream = run({ files, concurrency, timeout });
stream.on('test:fail', (event) => {
  // Suites report their failing children too; one failure is enough to fail the run.
  if (event.details?.error) process.exitCode = 1;
});
stream.compose(spec).pipe(process.stdout);
