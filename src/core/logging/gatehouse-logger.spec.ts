import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createPino } from './gatehouse-logger.js';

function capture(): { lines: string[]; write(chunk: string): void } {
  const lines: string[] = [];
  return { lines, write: (chunk: string) => void lines.push(chunk) };
}

describe('logging', () => {
  it('writes JSON lines and never a token or an Authorization header', () => {
    const out = capture();
    const log = createPino('debug', out).child({ protocol: 'jac', clientId: 'c1' });
    log.info({ token: 'secret-1', headers: { authorization: 'Bearer secret-2' } }, 'upgrade');
    log.info({ req: { headers: { authorization: 'Bearer secret-3', cookie: 'sid=secret-4' } } }, 'request');
    log.warn({ body: { token: 'secret-5' }, Authorization: 'secret-6' }, 'admin');
    assert.equal(out.lines.length, 3);
    for (const line of out.lines) {
      const entry = JSON.parse(line) as Record<string, unknown>;
      assert.equal(entry['protocol'], 'jac');
      assert.equal(entry['clientId'], 'c1');
      assert.equal(typeof entry['level'], 'string');
      assert.doesNotMatch(line, /secret-\d/);
    }
  });
});
