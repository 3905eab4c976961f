import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { WsPairFactory } from '../../../test/helpers/ws-pair.js';
import {
  closeSlowConsumer,
  Connection,
  NORMAL_CLOSE,
  SLOW_CONSUMER_CLOSE,
  SLOW_CONSUMER_GRACE_MS,
  type ClientId,
} from './connection.js';

describe('slow consumers', () => {
  let pairs: WsPairFactory;
  let counter = 0;

  before(async () => {
    pairs = await WsPairFactory.start();
  });
  after(() => pairs.close());

  it('sends the close, and lets a client that reads take it', async () => {
    const { server, client } = await pairs.pair();
    const started = Date.now();
    closeSlowConsumer(server, { code: 4008, reason: 'too slow' });
    assert.deepEqual(await client.waitClose(), { code: 4008, reason: 'too slow' });
    await once(server, 'close');
    assert.ok(Date.now() - started < SLOW_CONSUMER_GRACE_MS, 'closed by the handshake, not the grace timer');
  });

  it('destroys the socket of a client that does not read once the grace period is over', async () => {
    const { server, client } = await pairs.pair();
    client.socket.pause();
    const started = Date.now();
    closeSlowConsumer(server, SLOW_CONSUMER_CLOSE);
    await once(server, 'close');
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= SLOW_CONSUMER_GRACE_MS - 20, `terminated after ${elapsed} ms`);
    assert.ok(elapsed < SLOW_CONSUMER_GRACE_MS + 2000, `terminated after ${elapsed} ms`);
  });

  it('sends no second close to a socket already closing', async () => {
    const { server, client } = await pairs.pair();
    server.close(4000, 'first');
    closeSlowConsumer(server, SLOW_CONSUMER_CLOSE);
    assert.deepEqual(await client.waitClose(), { code: 4000, reason: 'first' });
  });

  it('cuts a connection off with its protocol close: nothing more is written', async () => {
    const { server, client } = await pairs.pair();
    const connection = new Connection({
      id: `slow-${++counter}` as ClientId,
      protocol: 'test',
      socket: server,
      slowConsumerClose: { code: 4013, reason: 'slow' },
      sendBufferLimit: 1 << 20,
    });
    assert.equal(connection.isOpen, true);
    connection.dropSlowConsumer();
    assert.equal(connection.isOpen, false);
    assert.equal(connection.send('late'), false);
    assert.deepEqual(await client.waitClose(), { code: 4013, reason: 'slow' });
    assert.equal(client.received, 0);
  });

  it('closes with the plain defaults when a protocol names none', async () => {
    const { server, client } = await pairs.pair();
    const connection = new Connection({
      id: `plain-${++counter}` as ClientId,
      protocol: 'test',
      socket: server,
      sendBufferLimit: 1 << 20,
    });
    assert.deepEqual(connection.normalClose, { code: 1000, reason: 'Closed by server' });
    assert.deepEqual(SLOW_CONSUMER_CLOSE, { code: 1013, reason: 'Send buffer limit exceeded' });
    connection.close();
    assert.deepEqual(await client.waitClose(), NORMAL_CLOSE);
  });
});
