import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { constants, createInflate, inflateSync } from 'node:zlib';
import { HatsuDeflate, SYNC_COMPRESS_MAX, SYNC_FLUSH_TAIL, syncAvailable } from './hatsu-deflate.js';

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
      const deflate = new HatsuDeflate(() => assert.fail('no error expected'), sync);
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
      const deflate = new HatsuDeflate(() => assert.fail('no error expected'), sync);
      const message = Buffer.from(JSON.stringify({ t: 'GUILD_UPDATE', d: { name: 'a fairly long guild name here' } }));
      const [first, second] = (await compressAll(deflate, [message, message])) as [Buffer, Buffer];
      assert.ok(second.length < first.length / 2, `${first.length} then ${second.length}`);
      // The first frame starts the zlib stream: its header declares the small window (CINFO 4 = 2^12).
      assert.equal(first[0], 0x48);
      assert.deepEqual(inflateSync(first, { finishFlush: constants.Z_SYNC_FLUSH }), message);
      deflate.close();
    });

    it('counts queued bytes until they are compressed, and stops after close', async () => {
      const deflate = new HatsuDeflate(() => assert.fail('no error expected'), sync);
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
      const deflate = new HatsuDeflate(() => assert.fail('no error expected'), sync);
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
    const deflate = new HatsuDeflate(() => assert.fail('no error expected'));
    let frame: Buffer | null = null;
    deflate.compress(Buffer.from('{"t":"HELLO"}'), (compressed) => (frame = compressed));
    assert.ok(frame, 'compressed on the spot');
    assert.deepEqual(inflateSync(frame, { finishFlush: constants.Z_SYNC_FLUSH }).toString(), '{"t":"HELLO"}');
    deflate.close();
  });

  it('keeps order when a large message is in the threadpool and small ones follow', async () => {
    const deflate = new HatsuDeflate(() => assert.fail('no error expected'));
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
