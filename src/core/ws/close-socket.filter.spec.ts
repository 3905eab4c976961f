import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ExecutionContextHost } from '@nestjs/core/helpers/execution-context-host.js';
import { pino } from 'pino';
import { Writable } from 'node:stream';
import type { WebSocket } from 'ws';
import { WsPairFactory } from '../../../test/helpers/ws-pair.js';
import { CloseSocketFilter } from './close-socket.filter.js';

function wsHost(socket: WebSocket): ExecutionContextHost {
  const host = new ExecutionContextHost([socket, undefined]);
  host.setType('ws');
  return host;
}

describe('CloseSocketFilter', () => {
  let pairs: WsPairFactory;
  const logged: Record<string, unknown>[] = [];
  const log = pino(
    { base: { protocol: 'proto' } },
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        logged.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
        done();
      },
    }),
  );

  before(async () => {
    pairs = await WsPairFactory.start();
  });
  after(() => pairs.close());

  it("logs what was thrown and closes the socket with the protocol's close", async () => {
    const filter = new CloseSocketFilter(log, { code: 4500, reason: 'Internal' });
    const boom = new Error('boom');
    for (const thrown of [boom, 'a string', undefined]) {
      const { server, client } = await pairs.pair();
      filter.catch(thrown, wsHost(server));
      assert.deepEqual(await client.waitClose(), { code: 4500, reason: 'Internal' });
      assert.equal(client.received, 0, 'nothing is sent before the close');
    }
    assert.deepEqual(
      logged.map((line) => [
        typeof line['err'] === 'object' ? (line['err'] as { message: string }).message : line['err'],
        line['protocol'],
        line['level'],
      ]),
      [
        ['boom', 'proto', 50],
        ['a string', 'proto', 50],
        ['undefined', 'proto', 50],
      ],
    );
  });

  it('leaves a socket that is already closing alone', async () => {
    const { server, client } = await pairs.pair();
    server.close(1000, 'bye');
    new CloseSocketFilter(log, { code: 1011, reason: 'Internal error' }).catch(new Error('late'), wsHost(server));
    assert.deepEqual(await client.waitClose(), { code: 1000, reason: 'bye' });
  });
});
