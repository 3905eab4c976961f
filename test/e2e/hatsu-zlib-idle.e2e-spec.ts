import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, afterEach, before, describe, it } from 'node:test';
import { constants, createInflate, inflateSync } from 'node:zlib';
import type { ZlibContexts } from '../../src/protocols/hatsu/hatsu-deflate.js';
import { HatsuService } from '../../src/protocols/hatsu/hatsu.service.js';
import { startApp, type TestApp } from '../helpers/app.js';
import { connectHatsu, dispatch, hatsuAccount, putGuild, type HatsuClient } from '../helpers/hatsu-client.js';
import { snowflake } from '../helpers/ids.js';
import { metricValue, scrapeMetrics } from '../helpers/prom-text.js';
import { WsTestClient } from '../helpers/ws-client.js';
import { Rng } from '../fuzz/generate.js';

const IDLE_MS = 20;
const ZLIB_HEADER = Buffer.from([0x48, 0x89]);

/** An event's `d` whose JSON is about `bytes` long, half of it barely compressible. */
function payload(i: number, bytes: number): Record<string, unknown> {
  const half = Math.max(1, Math.floor(bytes / 4));
  return { i, noise: randomBytes(Math.ceil(half / 2)).toString('hex'), text: 'lorem ipsum '.repeat(half / 12) };
}

describe(`hatsu zlib across idle: contexts released after HATSU_ZLIB_IDLE_MS (${IDLE_MS} ms), one inflate reads on`, () => {
  let app: TestApp;
  let zlib: ZlibContexts;
  const clients: { close(): Promise<void> }[] = [];

  /** Resolves once no zlib session holds a deflate context: the sweep released (or a close gave up) the last. */
  function allReleased(): Promise<void> {
    if (zlib.active === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const stop = zlib.onDrop(() => {
        if (zlib.active !== 0) return;
        stop();
        resolve();
      });
    });
  }

  async function zlibSession(): Promise<{ client: HatsuClient; guildId: string }> {
    const { sessionId, guildId } = await hatsuAccount(app);
    const client = await connectHatsu(app, sessionId, { encoding: 'zlib', guilds: 1 });
    clients.push(client);
    return { client, guildId };
  }

  before(async () => {
    app = await startApp({ HATSU_ZLIB_IDLE_MS: String(IDLE_MS) });
    zlib = app.app.get(HatsuService).zlib;
  });

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
  });

  after(() => app.close());

  it('decodes every message with the connection’s one inflate across idle and busy cycles, 200 KB messages included', async () => {
    const { client, guildId } = await zlibSession();
    const released = zlib.released;
    for (let cycle = 0; cycle < 8; cycle++) {
      await allReleased();
      assert.equal(zlib.active, 0, 'idle: no context held');
      // Busy: a burst of events of every size, then an ACK the client asked for.
      const sent = [payload(cycle, 200), payload(cycle, 200_000), payload(cycle, 3000), payload(cycle, 200_000)];
      for (const d of sent) await dispatch(app, { t: 'GUILD_UPDATE', d, to: { guild_id: guildId } });
      for (const d of sent) assert.deepEqual(await client.next(), { t: 'GUILD_UPDATE', d });
      await client.expectNothingPending(cycle);
      assert.equal(zlib.active, 1, 'busy: one context, picked up again');
    }
    await allReleased();
    // A message the client triggers itself, right after a release, comes back readable too.
    await client.expectNothingPending('after idle');
    assert.ok(zlib.released - released >= 9, `${zlib.released - released} releases`);
    // The 200 KB events still went out compressed.
    assert.ok(Math.max(...client.binarySizes) < 150_000);
  });

  it('sends one zlib stream: header once, every frame ends 00 00 ff ff, read whole or frame by frame as decompressobj does', async () => {
    const { sessionId, guildId } = await hatsuAccount(app);
    const ws = await WsTestClient.connect(app.ws('/hatsu'));
    clients.push(ws);
    ws.send({ session_id: sessionId, encoding: 'zlib' });
    const frames: Buffer[] = [];
    const nextFrame = async (): Promise<Buffer> => {
      const { data, isBinary } = await ws.nextRaw();
      assert.equal(isBinary, true);
      assert.deepEqual(data.subarray(-4), Buffer.from([0x00, 0x00, 0xff, 0xff]));
      frames.push(data);
      return data;
    };
    for (let i = 0; i < 3; i++) await nextFrame(); // HELLO, READY, GUILD_INIT
    const expected: unknown[] = [];
    for (let cycle = 0; cycle < 5; cycle++) {
      await allReleased();
      for (const size of [100, 200_000]) {
        const d = payload(cycle, size);
        expected.push({ t: 'GUILD_UPDATE', d });
        await dispatch(app, { t: 'GUILD_UPDATE', d, to: { guild_id: guildId } });
        await nextFrame();
      }
    }
    assert.deepEqual(frames[0]?.subarray(0, 2), ZLIB_HEADER, 'the stream starts with the zlib header');
    for (const frame of frames.slice(1)) assert.notDeepEqual(frame.subarray(0, 2), ZLIB_HEADER);

    // Python: d = zlib.decompressobj(); d.decompress(frame) for each frame, nothing else.
    const decompressobj = createInflate({ finishFlush: constants.Z_SYNC_FLUSH });
    let out: Buffer[] = [];
    decompressobj.on('data', (chunk: Buffer) => out.push(chunk));
    const decoded: unknown[] = [];
    for (const frame of frames) {
      await new Promise<void>((resolve) => decompressobj.write(frame, () => resolve()));
      await new Promise<void>((resolve) => decompressobj.flush(constants.Z_SYNC_FLUSH, () => resolve()));
      decoded.push(JSON.parse(Buffer.concat(out).toString('utf8')));
      out = [];
    }
    decompressobj.close();
    assert.deepEqual(decoded.slice(3), expected);
    // All frames together are one stream that was never ended.
    const whole = inflateSync(Buffer.concat(frames), { finishFlush: constants.Z_SYNC_FLUSH }).toString('utf8');
    assert.equal(whole, decoded.map((m) => JSON.stringify(m)).join(''));
  });

  it('a json session never takes a context; the gauge and the counter follow the zlib sessions', async () => {
    await allReleased();
    const json = await hatsuAccount(app);
    const jsonClient = await connectHatsu(app, json.sessionId, { guilds: 1 });
    clients.push(jsonClient);
    await jsonClient.expectNothingPending();
    assert.equal(zlib.active, 0);

    const { client } = await zlibSession();
    await client.expectNothingPending();
    let families = await scrapeMetrics(app);
    assert.equal(metricValue(families, 'gatehouse_zlib_contexts', { protocol: 'hatsu' }), 1);
    const before = metricValue(families, 'gatehouse_zlib_contexts_released_total', { protocol: 'hatsu' });
    await allReleased();
    families = await scrapeMetrics(app);
    assert.equal(metricValue(families, 'gatehouse_zlib_contexts', { protocol: 'hatsu' }), 0);
    assert.equal(metricValue(families, 'gatehouse_zlib_contexts_released_total', { protocol: 'hatsu' }), before + 1);
    await jsonClient.expectNothingPending();
    assert.equal(zlib.active, 0);
  });

  for (const seed of [11, 12])
    it(`fuzz (seed ${seed}): random idle gaps and sizes, three sessions in one guild, every message decoded`, async () => {
      const rng = new Rng(seed);
      const random = (): number => rng.next();
      const guildId = snowflake();
      const accounts = await Promise.all([hatsuAccount(app), hatsuAccount(app), hatsuAccount(app)]);
      await putGuild(
        app,
        guildId,
        accounts.map((a) => a.userId),
      );
      const peers: HatsuClient[] = [];
      for (const { sessionId } of accounts) {
        const peer = await connectHatsu(app, sessionId, { encoding: 'zlib', guilds: 2 });
        clients.push(peer);
        peers.push(peer);
      }
      let waits = 0;
      for (let step = 0; step < 30; step++) {
        // Idle long enough for every context to go, or not at all.
        if (random() < 0.4) {
          await allReleased();
          waits++;
        }
        const roll = random();
        const size = roll < 0.6 ? 50 + Math.floor(random() * 1000) : roll < 0.85 ? 20_000 : 200_000;
        const d = payload(step, size);
        await dispatch(app, { t: 'GUILD_UPDATE', d, to: { guild_id: guildId } });
        for (const peer of peers) assert.deepEqual(await peer.next(), { t: 'GUILD_UPDATE', d }, `step ${step}`);
        // Sometimes one session alone is busy (its own ACK) while the others idle.
        if (random() < 0.3)
          await (peers[Math.floor(random() * peers.length)] as HatsuClient).expectNothingPending(step);
      }
      assert.ok(waits >= 5, `${waits} idle gaps`);
      for (const peer of peers) await peer.expectNothingPending('end');
    });
});
