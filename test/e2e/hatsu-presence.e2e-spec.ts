import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Engine } from '../../src/core/engine/engine.js';
import { HatsuModule } from '../../src/protocols/hatsu/hatsu.module.js';
import { startApp, type TestApp } from '../helpers/app.js';
import { connectHatsu, newUser, putGuild, type HatsuClient } from '../helpers/hatsu-client.js';
import { snowflake } from '../helpers/ids.js';

const LIMIT = 3;
const WINDOW_MS = 300;

describe('hatsu PRESENCE budget: HATSU_PRESENCE_LIMIT per HATSU_PRESENCE_WINDOW_MS, the rest coalesced', () => {
  let app: TestApp;
  const clients: HatsuClient[] = [];
  const user = (): Promise<{ userId: string; sessionId: string }> => newUser(app);

  async function connect(sessionId: string, options: Parameters<typeof connectHatsu>[2] = {}): Promise<HatsuClient> {
    const client = await connectHatsu(app, sessionId, options);
    clients.push(client);
    return client;
  }

  /** A sender and a watcher (json, and zlib when asked) in one guild. */
  async function pair(encoding: 'json' | 'zlib' = 'json'): Promise<{
    sender: { userId: string; sessionId: string };
    s: HatsuClient;
    w: HatsuClient;
  }> {
    const sender = await user();
    const watcher = await user();
    const guild = snowflake();
    await putGuild(app, guild, [sender.userId, watcher.userId]);
    const s = await connect(sender.sessionId, { guilds: 1 });
    const w = await connect(watcher.sessionId, { guilds: 1, encoding });
    return { sender, s, w };
  }

  function presence(description: string): Record<string, unknown> {
    return { t: 'PRESENCE', type: 1, description };
  }

  /** The descriptions of the next `n` messages, each of which must be a PRESENCE_UPDATE of `userId`. */
  async function updates(client: HatsuClient, userId: string, n: number): Promise<string[]> {
    const seen: string[] = [];
    for (let i = 0; i < n; i++) {
      const update = await client.expect('PRESENCE_UPDATE');
      assert.equal(update['id'], userId);
      seen.push((update['d'] as { description: string }).description);
    }
    return seen;
  }

  async function stored(userId: string): Promise<unknown> {
    const raw = await app.app.get(Engine).store.get(`hatsu:presence:${userId}`);
    return raw === null ? null : (JSON.parse(raw) as unknown);
  }

  before(async () => {
    app = await startApp(
      { HATSU_PRESENCE_LIMIT: String(LIMIT), HATSU_PRESENCE_WINDOW_MS: String(WINDOW_MS) },
      { protocols: [HatsuModule] },
    );
  });

  after(async () => {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    await app.close();
  });

  it('sends the first LIMIT of a flood at once and then only the last one, when the window ends', async () => {
    for (const encoding of ['json', 'zlib'] as const) {
      const { sender, s, w } = await pair(encoding);
      const flood = Array.from({ length: 40 }, (_, i) => `${encoding}-${i}`);
      const started = performance.now();
      for (const description of flood) s.send(presence(description));
      const expected = [...flood.slice(0, LIMIT), flood[flood.length - 1]];
      // The watcher and the sender's own session see the same: the budget, then the latest.
      assert.deepEqual(await updates(w, sender.userId, LIMIT + 1), expected);
      const coalescedAfter = performance.now() - started;
      assert.deepEqual(await updates(s, sender.userId, LIMIT + 1), expected);
      assert.ok(coalescedAfter >= WINDOW_MS - 50, `the held presence went out after ${coalescedAfter} ms`);
      // Nothing else was queued behind it, and the stored presence is the last one sent.
      await w.expectNothingPending();
      await s.expectNothingPending();
      assert.deepEqual(await stored(sender.userId), {
        type: 1,
        description: flood[flood.length - 1],
        emoji: null,
        embed: null,
      });
    }
  });

  it('counts the presence it held in the window that sending it opens', async () => {
    const { sender, s, w } = await pair();
    for (let i = 0; i <= LIMIT; i++) s.send(presence(`first-${i}`));
    assert.deepEqual(await updates(w, sender.userId, LIMIT + 1), [
      ...Array.from({ length: LIMIT }, (_, i) => `first-${i}`),
      `first-${LIMIT}`,
    ]);
    const released = performance.now();
    // The held one used one slot of the new window: LIMIT - 1 go at once, the next is held again.
    for (let i = 0; i < LIMIT; i++) s.send(presence(`second-${i}`));
    assert.deepEqual(
      await updates(w, sender.userId, LIMIT),
      Array.from({ length: LIMIT }, (_, i) => `second-${i}`),
    );
    const held = performance.now() - released;
    assert.ok(held >= WINDOW_MS - 50, `second-${LIMIT - 1} went out after ${held} ms, inside the window`);
    await w.expectNothingPending();
  });

  it('drops a held presence when its session closes, and each session has a budget of its own', async () => {
    const { sender, s, w } = await pair();
    for (let i = 0; i <= LIMIT; i++) s.send(presence(`gone-${i}`));
    assert.deepEqual(
      await updates(w, sender.userId, LIMIT),
      Array.from({ length: LIMIT }, (_, i) => `gone-${i}`),
    );
    await s.close();
    // A second session of the same user starts after the first closed: its held presence goes
    // out when its own window ends, later than the first session's would have. So a leaked
    // held presence of the closed session would arrive before it.
    const again = await connect(sender.sessionId, { guilds: 1 });
    for (let i = 0; i <= LIMIT; i++) again.send(presence(`again-${i}`));
    assert.deepEqual(await updates(w, sender.userId, LIMIT + 1), [
      ...Array.from({ length: LIMIT }, (_, i) => `again-${i}`),
      `again-${LIMIT}`,
    ]);
    await w.expectNothingPending();
    assert.deepEqual(await stored(sender.userId), {
      type: 1,
      description: `again-${LIMIT}`,
      emoji: null,
      embed: null,
    });
  });
});
