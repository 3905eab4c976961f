import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { constants, createDeflate, createInflate, inflateSync } from 'node:zlib';
import { Rng } from '../../../test/fuzz/generate.js';
import {
  HATSU_DEFLATE,
  HatsuDeflate,
  SYNC_COMPRESS_MAX,
  SYNC_FLUSH_TAIL,
  ZLIB_HEADER,
  ZlibContexts,
  syncAvailable,
} from './hatsu-deflate.js';

const noError = (): never => assert.fail('no error expected');

/** One inflate context for the whole stream, as a client keeps it. */
function streamReader(): (frame: Buffer) => Promise<Buffer> {
  const inflate = createInflate();
  let chunks: Buffer[] = [];
  inflate.on('data', (chunk: Buffer) => chunks.push(chunk));
  return (frame) =>
    new Promise((resolve) => {
      inflate.write(frame);
      inflate.flush(constants.Z_SYNC_FLUSH, () => {
        const out = Buffer.concat(chunks);
        chunks = [];
        resolve(out);
      });
    });
}

function compressAll(deflate: HatsuDeflate, messages: Buffer[]): Promise<Buffer[]> {
  return new Promise((resolve) => {
    const frames: Buffer[] = [];
    for (const message of messages) {
      deflate.compress(message, (frame) => {
        frames.push(frame);
        if (frames.length === messages.length) resolve(frames);
      });
    }
  });
}

for (const sync of [true, false])
  describe(`hatsu deflate stream (${sync ? 'small messages on the spot' : 'threadpool only'})`, () => {
    it('gives each message its own frame, ending in a sync flush, in order, readable with one inflate', async () => {
      const deflate = new HatsuDeflate(noError, new ZlibContexts(0), sync);
      const messages = Array.from({ length: 30 }, (_, i) =>
        Buffer.from(
          JSON.stringify({
            t: 'EVENT',
            d: i % 7 === 0 ? randomBytes(70_000).toString('hex') : { i, text: 'hello '.repeat(i) },
          }),
        ),
      );
      const frames = await compressAll(deflate, messages);
      assert.equal(frames.length, messages.length);
      const read = streamReader();
      for (const [i, frame] of frames.entries()) {
        assert.deepEqual(frame.subarray(-4), SYNC_FLUSH_TAIL);
        assert.deepEqual(await read(frame), messages[i]);
      }
      assert.equal(deflate.pendingBytes, 0);
      deflate.close();
    });

    it('keeps history across messages: a repeated message compresses to a few bytes', async () => {
      const deflate = new HatsuDeflate(noError, new ZlibContexts(0), sync);
      const message = Buffer.from(JSON.stringify({ t: 'GUILD_UPDATE', d: { name: 'a fairly long guild name here' } }));
      const [first, second] = (await compressAll(deflate, [message, message])) as [Buffer, Buffer];
      assert.ok(second.length < first.length / 2, `${first.length} then ${second.length}`);
      // The first frame starts the zlib stream: its header declares the small window (CINFO 4 = 2^12).
      assert.equal(first[0], 0x48);
      assert.deepEqual(inflateSync(first, { finishFlush: constants.Z_SYNC_FLUSH }), message);
      deflate.close();
    });

    it('counts queued bytes until they are compressed, and stops after close', async () => {
      const deflate = new HatsuDeflate(noError, new ZlibContexts(0), sync);
      // Larger than what is compressed on the spot, so both wait for the threadpool.
      const big = SYNC_COMPRESS_MAX + 1;
      const done = compressAll(deflate, [Buffer.alloc(big), Buffer.alloc(big)]);
      assert.equal(deflate.pendingBytes, 2 * big);
      await done;
      assert.equal(deflate.pendingBytes, 0);
      deflate.close();
      let called = false;
      deflate.compress(Buffer.from('late'), () => (called = true));
      assert.equal(called, false);
      assert.equal(deflate.pendingBytes, 0);
    });

    it('runs afterQueued once everything queued before it is out, at once when idle or closed (a close never overtakes)', async () => {
      const deflate = new HatsuDeflate(noError, new ZlibContexts(0), sync);
      const order: string[] = [];
      let immediate = false;
      deflate.afterQueued(() => (immediate = true));
      assert.equal(immediate, true, 'nothing queued: at once');
      const barrier = new Promise<void>((resolve) => {
        for (const name of ['HELLO', 'READY', 'GUILD_INIT'])
          deflate.compress(Buffer.from(name), () => order.push(name));
        deflate.afterQueued(() => {
          order.push('close');
          resolve();
        });
        deflate.compress(Buffer.from('later'), () => order.push('later'));
      });
      await barrier;
      await new Promise<void>((resolve) => deflate.afterQueued(resolve));
      assert.deepEqual(order, ['HELLO', 'READY', 'GUILD_INIT', 'close', 'later']);
      // Closed with a barrier still waiting: it runs (the socket must still be closed), the message does not.
      let ran = false;
      let sent = false;
      deflate.compress(Buffer.alloc(100_000), () => (sent = true));
      deflate.afterQueued(() => (ran = true));
      assert.equal(ran, false, 'the barrier waits for the queued message');
      deflate.close();
      assert.equal(ran, true);
      assert.equal(sent, false);
      let afterClose = false;
      deflate.afterQueued(() => (afterClose = true));
      assert.equal(afterClose, true);
    });
  });

describe('hatsu deflate stream, mixed', () => {
  it('is available on this Node: a small message is compressed before compress returns', () => {
    assert.equal(syncAvailable, true);
    const deflate = new HatsuDeflate(noError, new ZlibContexts(0));
    let frame: Buffer | null = null;
    deflate.compress(Buffer.from('{"t":"HELLO"}'), (compressed) => (frame = compressed));
    assert.ok(frame, 'compressed on the spot');
    assert.deepEqual(inflateSync(frame, { finishFlush: constants.Z_SYNC_FLUSH }).toString(), '{"t":"HELLO"}');
    deflate.close();
  });

  it('keeps order when a large message is in the threadpool and small ones follow', async () => {
    const deflate = new HatsuDeflate(noError, new ZlibContexts(0));
    const messages = [
      Buffer.from('{"t":"A"}'),
      Buffer.from(JSON.stringify({ t: 'BIG', d: randomBytes(SYNC_COMPRESS_MAX).toString('hex') })),
      Buffer.from('{"t":"B"}'),
      Buffer.from('{"t":"C"}'),
    ];
    const order: number[] = [];
    const frames = await new Promise<Buffer[]>((resolve) => {
      const out: Buffer[] = [];
      messages.forEach((message, i) =>
        deflate.compress(message, (frame) => {
          order.push(i);
          out.push(frame);
          if (out.length === messages.length) resolve(out);
        }),
      );
    });
    assert.deepEqual(order, [0, 1, 2, 3]);
    const read = streamReader();
    for (const [i, frame] of frames.entries()) assert.deepEqual(await read(frame), messages[i]);
    // Idle again: the next small message is compressed on the spot, on the same stream.
    let last: Buffer | null = null;
    deflate.compress(Buffer.from('{"t":"D"}'), (frame) => (last = frame));
    assert.ok(last);
    assert.deepEqual(await read(last), Buffer.from('{"t":"D"}'));
    deflate.close();
  });
});

/** What a zlib-wrapped deflate stream of the same settings writes for each message: the reference framing. */
async function referenceFrames(messages: Buffer[]): Promise<Buffer[]> {
  const deflate = createDeflate(HATSU_DEFLATE);
  let chunks: Buffer[] = [];
  deflate.on('data', (chunk: Buffer) => chunks.push(chunk));
  const frames: Buffer[] = [];
  for (const message of messages) {
    deflate.write(message);
    await new Promise<void>((resolve) => deflate.flush(constants.Z_SYNC_FLUSH, () => resolve()));
    frames.push(Buffer.concat(chunks));
    chunks = [];
  }
  deflate.close();
  return frames;
}

/** Resolves when the next context is given up (here: released by a sweep). */
function nextRelease(contexts: ZlibContexts): Promise<void> {
  // The sweep's interval is unref'd (it must not hold a process open); this holds the test's.
  const keepAlive = setInterval(() => undefined, 1000);
  return new Promise((resolve) => {
    const stop = contexts.onDrop(() => {
      stop();
      clearInterval(keepAlive);
      resolve();
    });
  });
}

/** A JSON event of about `size` bytes: repetitive text, or hex of random bytes (barely compressible). */
function event(random: () => number, i: number, size: number): Buffer {
  const text =
    random() < 0.3
      ? Buffer.from(Array.from({ length: Math.ceil(size / 2) }, () => Math.floor(random() * 256))).toString('hex')
      : `message ${i} `.repeat(Math.ceil(size / 12));
  return Buffer.from(JSON.stringify({ t: 'MESSAGE_CREATE', d: { i, content: text.slice(0, size) } }));
}

describe('hatsu deflate stream across idle releases', () => {
  it('writes the same bytes as one zlib-wrapped deflate stream while it keeps its context', async () => {
    const rng = new Rng(7);
    const messages = Array.from({ length: 12 }, (_, i) => event(() => rng.next(), i, i % 5 === 0 ? 40_000 : 300));
    const deflate = new HatsuDeflate(noError, new ZlibContexts(0));
    assert.deepEqual(await compressAll(deflate, messages), await referenceFrames(messages));
    assert.deepEqual((await compressAll(deflate, messages.slice(0, 1)))[0]?.subarray(0, 2).equals(ZLIB_HEADER), false);
    deflate.close();
  });

  for (const sync of [true, false])
    it(`continues the same stream with a fresh context after a release (${sync ? 'on the spot' : 'threadpool'})`, async () => {
      const contexts = new ZlibContexts(0);
      const deflate = new HatsuDeflate(noError, contexts, sync);
      assert.equal(deflate.holding, false, 'no context before the first message');
      assert.equal(contexts.active, 0);
      const message = Buffer.from(JSON.stringify({ t: 'GUILD_UPDATE', d: { name: 'a fairly long guild name here' } }));
      const [first, again] = (await compressAll(deflate, [message, message])) as [Buffer, Buffer];
      assert.deepEqual(first.subarray(0, 2), ZLIB_HEADER, 'the zlib header once, at the start');
      assert.equal(contexts.active, 1);
      assert.equal(deflate.release(), true);
      assert.equal(deflate.holding, false);
      assert.equal(contexts.active, 0);
      assert.equal(deflate.release(), false, 'nothing left to release');
      const [afterRelease] = (await compressAll(deflate, [message])) as [Buffer];
      assert.equal(contexts.active, 1, 'picked up again');
      // No header the second time, and no history: the message compresses as the first one did.
      assert.equal(afterRelease.length, first.length - ZLIB_HEADER.length);
      assert.ok(again.length < afterRelease.length / 2);
      const read = streamReader();
      for (const frame of [first, again, afterRelease]) assert.deepEqual(await read(frame), message);
      deflate.close();
      assert.equal(contexts.active, 0);
    });

  it('is not released while a message is in the threadpool', async () => {
    const contexts = new ZlibContexts(0);
    const deflate = new HatsuDeflate(noError, contexts);
    const big = Buffer.from(randomBytes(SYNC_COMPRESS_MAX).toString('hex'));
    const done = compressAll(deflate, [big]);
    assert.equal(deflate.release(), false);
    const [frame] = (await done) as [Buffer];
    assert.equal(deflate.release(), true);
    assert.deepEqual(inflateSync(frame, { finishFlush: constants.Z_SYNC_FLUSH }), big);
    deflate.close();
  });

  it('releases a context idle for idleMs on the shared sweep, and never with idleMs 0', async () => {
    const contexts = new ZlibContexts(20);
    const forever = new ZlibContexts(0);
    const idle = new HatsuDeflate(noError, contexts);
    const kept = new HatsuDeflate(noError, forever);
    const read = streamReader();
    for (let round = 0; round < 3; round++) {
      const message = Buffer.from(`{"t":"EVENT","round":${round}}`);
      const [frame] = (await compressAll(idle, [message])) as [Buffer];
      await compressAll(kept, [message]);
      assert.deepEqual(await read(frame), message);
      assert.equal(contexts.active, 1);
      await nextRelease(contexts);
      assert.equal(idle.holding, false);
      assert.equal(contexts.active, 0);
      assert.equal(contexts.released, round + 1);
      assert.equal(kept.holding, true, 'idleMs 0 keeps the context');
    }
    idle.close();
    kept.close();
    contexts.stop();
  });

  for (const seed of [1, 2, 3])
    it(`fuzz (seed ${seed}): random sizes up to 200 KB and random releases, read by one inflate and as one stream`, async () => {
      const rng = new Rng(seed);
      const random = (): number => rng.next();
      const contexts = new ZlibContexts(0);
      const deflate = new HatsuDeflate(noError, contexts);
      const read = streamReader();
      const messages: Buffer[] = [];
      const frames: Buffer[] = [];
      let releases = 0;
      for (let i = 0; i < 60; i++) {
        const roll = random();
        const size =
          roll < 0.7 ? 10 + Math.floor(random() * 2000) : roll < 0.9 ? 2000 + Math.floor(random() * 20_000) : 200_000;
        // A burst of one to four messages queued together, then maybe an idle release.
        const burst = Array.from({ length: 1 + Math.floor(random() * 4) }, (_, j) => event(random, i * 10 + j, size));
        const out = await compressAll(deflate, burst);
        for (const [j, frame] of out.entries())
          assert.deepEqual(await read(frame), burst[j], `seed ${seed}, message ${i}.${j}`);
        messages.push(...burst);
        frames.push(...out);
        if (random() < 0.4 && deflate.release()) releases++;
      }
      assert.ok(releases > 10, `${releases} releases`);
      // As Python's zlib.decompressobj() reads it: the frames are one zlib stream, header once, never ended.
      const whole = inflateSync(Buffer.concat(frames), { finishFlush: constants.Z_SYNC_FLUSH });
      assert.deepEqual(whole, Buffer.concat(messages));
      // And fed in pieces cut anywhere, not at frame boundaries.
      const pieces = createInflate({ finishFlush: constants.Z_SYNC_FLUSH });
      const inflated: Buffer[] = [];
      pieces.on('data', (chunk: Buffer) => inflated.push(chunk));
      const all = Buffer.concat(frames);
      for (let at = 0; at < all.length;) {
        const next = Math.min(all.length, at + 1 + Math.floor(random() * 50_000));
        pieces.write(all.subarray(at, next));
        at = next;
      }
      pieces.end();
      await once(pieces, 'end');
      assert.deepEqual(Buffer.concat(inflated), whole);
      deflate.close();
    });
});
