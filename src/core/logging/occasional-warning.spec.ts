import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createPino } from './gatehouse-logger.js';
import { OccasionalWarning } from './occasional-warning.js';

describe('OccasionalWarning', () => {
  it('writes the first warning, then one per interval carrying how many it left out', () => {
    const lines: Record<string, unknown>[] = [];
    const log = createPino('info', {
      write: (chunk: string) => void lines.push(JSON.parse(chunk) as Record<string, unknown>),
    });
    let clock = 1000;
    const warning = new OccasionalWarning(log, 'publish reached this instance only', 30, () => clock);
    for (let i = 0; i < 49; i++) warning.warn({ n: i });
    assert.equal(lines.length, 1);
    assert.equal(lines[0]?.['n'], 0);
    assert.equal(lines[0]?.['suppressed'], undefined);
    clock += 29;
    warning.warn({ n: 49 });
    assert.equal(lines.length, 1, 'still within the interval');
    clock += 1;
    warning.warn({ n: 50 });
    assert.equal(lines.length, 2);
    assert.equal(lines[1]?.['msg'], 'publish reached this instance only');
    assert.equal(lines[1]?.['suppressed'], 49);
  });
});
