import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { HatsuPresence } from './hatsu.codec.js';
import { PresenceThrottle } from './hatsu-presence.js';

const presence = (description: string): HatsuPresence => ({ type: 1, description }) as HatsuPresence;

describe('PresenceThrottle', () => {
  it('sends the budget at once, holds only the latest past it, and sends that when the window ends', async () => {
    const sent: string[] = [];
    let released!: () => void;
    const windowEnded = new Promise<void>((resolve) => (released = resolve));
    const throttle = new PresenceThrottle(2, 40, (p) => {
      sent.push(p.description as string);
      if (sent.length === 3) released();
    });
    for (const d of ['a', 'b', 'c', 'd', 'e']) throttle.received(presence(d));
    assert.deepEqual(sent, ['a', 'b'], 'the budget goes out at once');
    // The throttle's timer does not keep a process alive (a session must not); this test's does.
    const alive = setInterval(() => undefined, 1000);
    await windowEnded;
    clearInterval(alive);
    assert.deepEqual(sent, ['a', 'b', 'e'], 'then only the latest, when the window ends');
    // The held presence opened the next window and spent one of its two.
    throttle.received(presence('f'));
    assert.deepEqual(sent, ['a', 'b', 'e', 'f']);
    throttle.received(presence('g'));
    assert.deepEqual(sent, ['a', 'b', 'e', 'f'], 'over the budget again: held');
    throttle.stop();
  });

  it('drops what it holds when the session ends', async () => {
    const sent: string[] = [];
    const throttle = new PresenceThrottle(1, 20, (p) => sent.push(p.description as string));
    throttle.received(presence('a'));
    throttle.received(presence('b'));
    throttle.stop();
    // Wait past the window with a timer of our own: the throttle's must not fire any more.
    await new Promise((resolve) => setTimeout(resolve, 40));
    assert.deepEqual(sent, ['a']);
  });
});
