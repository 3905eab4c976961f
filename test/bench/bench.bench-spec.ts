import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { redisAnswers } from '../helpers/redis.js';

interface Row {
  scenario: string;
  metric: string;
  baseline: number | null;
  gatehouse: number | null;
  ratio: number | null;
}

interface Report {
  machine: string;
  repeat: number;
  rows: Row[];
}

const run = promisify(execFile);
/** The gateway this test run compiled, so the smoke measures the code under test. */
const main = fileURLToPath(new URL('../../src/main.js', import.meta.url));

async function redisServerInstalled(): Promise<boolean> {
  try {
    await run('redis-server', ['--version']);
    return true;
  } catch {
    return false;
  }
}

// The benchmark harness at tiny sizes, so it cannot rot: every scenario runs end to
// end against the baseline relay and the real gateway and yields sane figures.
describe('benchmark harness (smoke)', () => {
  it('runs every scenario and reports finite figures with nothing lost', { timeout: 170_000 }, async () => {
    const scenarios = ['fanout-1000', 'fanout-max', 'roundtrip', 'metrics', 'idle', 'fates-replay', 'hatsu-zlib'];
    if (process.env.CI || ((await redisServerInstalled()) && (await redisAnswers())))
      scenarios.push('cluster', 'sharded', 'routing', 'bus-log');
    else console.log('NOTICE: redis-server not available; the cluster benchmark scenario is not smoke-tested');
    const args = ['bench/run.mjs', '--smoke', '--json', ...scenarios.flatMap((s) => ['--scenario', s])];
    const { stdout } = await run(process.execPath, args, {
      env: { ...process.env, GATEHOUSE_MAIN: main },
      maxBuffer: 10 * 1024 * 1024,
    });
    const { machine, rows } = JSON.parse(stdout) as Report;
    assert.match(machine, /Node v\d+/);
    assert.ok(rows.length >= scenarios.length * 2, 'every scenario reported');
    for (const row of rows) {
      assert.equal(typeof row.gatehouse, 'number', `${row.scenario} / ${row.metric}`);
      assert.ok(Number.isFinite(row.gatehouse), `${row.scenario} / ${row.metric}: ${row.gatehouse}`);
      if (row.metric === 'loss') assert.equal(row.gatehouse, 0, `${row.scenario} lost messages`);
      if (row.metric.startsWith('all replayed')) assert.equal(row.gatehouse, 1, 'Fates replay out of order');
      if (row.metric.startsWith('Redis PUBLISH')) assert.equal(row.gatehouse, 1, 'one PUBLISH per publish');
    }
  });
});
