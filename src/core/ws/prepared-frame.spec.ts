import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import { PreparedFrame, writePrepared } from './prepared-frame.js';

describe('prepared frames', () => {
  let server: WebSocketServer;
  let serverSide: WebSocket;
  let client: WebSocket;

  before(async () => {
    server = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await once(server, 'listening');
    const { port } = server.address() as { port: number };
    client = new WebSocket(`ws://127.0.0.1:${port}`);
    [serverSide] = (await once(server, 'connection')) as [WebSocket];
    await once(client, 'open');
  });

  after(async () => {
    client.terminate();
    server.close();
    await once(server, 'close');
  });

  it('frames text and binary exactly as ws would, for short, medium and long payloads', async () => {
    const payloads = [Buffer.from('{"a":1}'), Buffer.alloc(300, 0x61), Buffer.alloc(70_000, 0x62)];
    const received: [Buffer, boolean][] = [];
    client.on('message', (data: Buffer, isBinary: boolean) => received.push([data, isBinary]));
    for (const payload of payloads) {
      writePrepared(serverSide, new PreparedFrame(payload));
      writePrepared(serverSide, new PreparedFrame(payload, true));
    }
    while (received.length < payloads.length * 2) await once(client, 'message');
    payloads.forEach((payload, i) => {
      assert.deepEqual(received[2 * i], [payload, false]);
      assert.deepEqual(received[2 * i + 1], [payload, true]);
    });
  });

  it('keeps order with ordinary sends on the same socket', async () => {
    const received: string[] = [];
    client.removeAllListeners('message');
    client.on('message', (data: Buffer) => received.push(data.toString()));
    serverSide.send('one');
    writePrepared(serverSide, new PreparedFrame(Buffer.from('two')));
    serverSide.send('three');
    while (received.length < 3) await once(client, 'message');
    assert.deepEqual(received, ['one', 'two', 'three']);
  });

  it('takes the direct path on an idle socket of the ws version it was written for', async () => {
    const received: string[] = [];
    client.removeAllListeners('message');
    client.on('message', (data: Buffer) => received.push(data.toString()));
    // If ws changed the internals the direct path reads, every broadcast would silently go
    // through send() again: this is what catches it.
    assert.equal(writePrepared(serverSide, new PreparedFrame(Buffer.from('direct'))), true);
    while (received.length < 1) await once(client, 'message');
    assert.deepEqual(received, ['direct']);
  });

  it('builds the frame once however many sockets take it', () => {
    const prepared = new PreparedFrame(Buffer.from('x'));
    assert.equal(prepared.frame, prepared.frame);
  });
});
