import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setImmediate } from 'node:timers/promises';
import type { AppConfig } from '../../config/app-config.js';
import { PeerBus } from '../../../test/helpers/peer-bus.js';
import { GatehouseLogger } from '../../core/logging/gatehouse-logger.js';
import { MemoryStore } from '../../core/store/memory-store.js';
import { FelixData } from './felix-data.js';
import type { StoredStatus } from './felix-status.js';
import { FelixStatusService, STATUS_KEY, STATUS_TOPIC } from './felix-status.service.js';

/** Every promise the memory drivers chained has run: they resolve within one turn of the loop. */
const settled = (): Promise<void> => setImmediate();

const logger = new GatehouseLogger({ LOG_LEVEL: 'silent' } as AppConfig);

function setup(): { store: MemoryStore; bus: PeerBus; status: FelixStatusService } {
  const store = new MemoryStore();
  const bus = new PeerBus();
  return { store, bus, status: new FelixStatusService(new FelixData(store), bus, logger) };
}

/** A status message as another instance would publish it: its bytes on the topic. */
const pushed = (text: string) => ({
  topic: STATUS_TOPIC.name,
  target: { kind: 'all' as const },
  payload: Buffer.from(text),
});

const stored = (guildsCount: number): StoredStatus => ({ shards: [], guildsCount, reportedAt: 1_000 });

/** Writes the store behind the service's back: what a push lost in a bus gap leaves behind. */
const writeBehind = (store: MemoryStore, status: StoredStatus): Promise<void> =>
  store.set(STATUS_KEY, JSON.stringify(status));

describe('felix status service', () => {
  it('reads the stored status at start-up, then answers from memory only', async () => {
    const { store, status } = setup();
    await writeBehind(store, stored(1));
    status.onApplicationBootstrap();
    assert.equal((await status.current())?.guildsCount, 1);
    // A store change nobody announced is not seen: heartbeats do not read the store.
    await writeBehind(store, stored(2));
    for (let i = 0; i < 100; i++) assert.equal((await status.current())?.guildsCount, 1);
  });

  it('reads on first use when there was no start-up read, and waits for it', async () => {
    const { store, status } = setup();
    await writeBehind(store, stored(7));
    assert.equal((await status.current())?.guildsCount, 7);
  });

  it('answers null before anything was reported', async () => {
    const { status } = setup();
    status.onApplicationBootstrap();
    assert.equal(await status.current(), null);
  });

  it('stores a report and holds it, as pushed over the bus, with its shards normalised', async () => {
    const { store, status } = setup();
    status.onApplicationBootstrap();
    await status.report({ shards: [{ id: 0, latency: 9 }], guildsCount: 5, uptime: 60 });
    const held = await status.current();
    assert.deepEqual(held?.shards, [{ id: 0, ping: 9 }]);
    assert.equal(held?.guildsCount, 5);
    assert.equal(held?.uptime, 60);
    assert.equal(held?.memoryUsage, undefined);
    assert.deepEqual(JSON.parse((await store.get(STATUS_KEY)) ?? 'null'), held);
  });

  it('takes a status pushed by another instance, and drops a malformed push', async () => {
    const { bus, status } = setup();
    status.onApplicationBootstrap();
    bus.fromAnotherInstance(pushed(JSON.stringify(stored(3))));
    assert.equal((await status.current())?.guildsCount, 3);
    for (const bad of ['nope', '{"guildsCount":4}', 'null']) {
      bus.fromAnotherInstance(pushed(bad));
      assert.equal((await status.current())?.guildsCount, 3, bad);
    }
  });

  it('does not let a read that started before a push overwrite it', async () => {
    const { store, bus, status } = setup();
    await writeBehind(store, stored(1));
    // The first-use read is in flight (the store answers on a later microtask) when the push lands.
    const answer = status.current();
    await bus.publish(STATUS_TOPIC, { kind: 'all' }, stored(2));
    assert.equal((await answer)?.guildsCount, 2);
    assert.equal((await status.current())?.guildsCount, 2);
  });

  it('re-reads the store after a bus gap, once, and answers from memory meanwhile', async () => {
    const { store, bus, status } = setup();
    status.onApplicationBootstrap();
    await status.report({ shards: [], guildsCount: 1 });
    await writeBehind(store, stored(2));
    assert.equal((await status.current())?.guildsCount, 1);
    bus.gap();
    // The re-read is under way: a heartbeat meanwhile gets the memory at once, not a wait.
    assert.equal((await status.current())?.guildsCount, 1);
    // The memory store answers within this turn of the loop.
    await settled();
    assert.equal((await status.current())?.guildsCount, 2);
    // Once re-read, memory again: a later silent write is not picked up.
    await writeBehind(store, stored(3));
    assert.equal((await status.current())?.guildsCount, 2);
  });

  it('takes an emptied store after a gap as "nothing reported"', async () => {
    const { store, bus, status } = setup();
    status.onApplicationBootstrap();
    await status.report({ shards: [], guildsCount: 1 });
    await store.delete(STATUS_KEY);
    bus.gap();
    await settled();
    assert.equal(await status.current(), null);
  });

  it('answers as unreported, without asking again, when the stored status is unreadable', async () => {
    const { store, status } = setup();
    await store.set(STATUS_KEY, '{"damaged":');
    assert.equal(await status.current(), null);
    await writeBehind(store, stored(4));
    assert.equal(await status.current(), null);
  });
});
