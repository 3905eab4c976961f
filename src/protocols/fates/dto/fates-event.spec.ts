import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BadRequestException } from '@nestjs/common';
import { completeFatesEvent, FatesEventPipe, validateFatesEvent } from './fates-event.js';

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('fates event bodies', () => {
  it('accepts an event with m.e and ctx and keeps every extra key', () => {
    const body = { votes: 3, id: '9', m: { e: 0, t: -1, user: '9', wt: 1 }, ctx: { user: '9', votes: 3, test: true } };
    assert.deepEqual(validateFatesEvent(body), { event: body });
  });

  it('lists one message per bad field', () => {
    assert.deepEqual(validateFatesEvent([]), { problems: ['body: must be a JSON object'] });
    assert.deepEqual(validateFatesEvent({}), { problems: ['m: must be an object', 'ctx: must be an object'] });
    assert.deepEqual(validateFatesEvent({ m: { e: '0', t: 1.5, eid: '', ts: 'now' }, ctx: [] }), {
      problems: [
        'm.e: must be an integer',
        'm.t: must be an integer',
        'm.eid: must be a string of 1 to 128 characters',
        'm.ts: must be a number',
        'ctx: must be an object',
      ],
    });
    // The staff events of flamepaw used `event` instead of `e`; clients reading m.e saw nothing.
    assert.deepEqual(validateFatesEvent({ m: { event: 80 }, ctx: {} }), { problems: ['m.e: must be an integer'] });
  });

  it('sets m.eid (uuid v4) and m.ts (seconds with a fraction) unless given', () => {
    const done = completeFatesEvent({ m: { e: 16 }, ctx: { user: null, widget: false } }, 1_700_000_000_123);
    assert.match(done.m.eid as string, UUID_V4);
    assert.equal(done.m.ts, 1_700_000_000.123);
    assert.deepEqual(done.ctx, { user: null, widget: false });
    const kept = completeFatesEvent({ m: { e: 16, eid: 'mine', ts: 5 }, ctx: {} });
    assert.equal(kept.m.eid, 'mine');
    assert.equal(kept.m.ts, 5);
  });

  it('the pipe answers 400 with the messages', () => {
    const pipe = new FatesEventPipe();
    assert.throws(
      () => pipe.transform({ m: {} }),
      (err: unknown) =>
        err instanceof BadRequestException && JSON.stringify(err.getResponse()).includes('m.e: must be an integer'),
    );
    assert.deepEqual(pipe.transform({ m: { e: 1 }, ctx: {} }), { m: { e: 1 }, ctx: {} });
  });
});
