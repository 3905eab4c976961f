import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { memoryCore } from '../../../test/helpers/memory-core.js';
import type { WsTestClient } from '../../../test/helpers/ws-client.js';
import { WsPairFactory } from '../../../test/helpers/ws-pair.js';
import { validateEnv } from '../../config/env.schema.js';
import { MemoryStore } from '../../core/store/memory-store.js';
import type { FatesTarget } from './fates.codec.js';
import { FatesData } from './fates-data.js';
import { FatesService } from './fates.service.js';

/**
 * The Fates state machine on the memory drivers and real sockets: its races, played out in
 * the order the event loop runs them, in milliseconds.
 */
const config = validateEnv({ LOG_LEVEL: 'silent', METRICS_ENABLED: 'false', FATES_RATE_LIMIT: '1000' });
const req = { socket: { remoteAddress: '127.0.0.1' } } as unknown as IncomingMessage;

interface Frame {
  control?: boolean;
  code?: string;
  events?: { m: { eid: string } }[];
}

/** The next frame: a control payload, or the events of an event frame (v2 era: bare, `\x1f`-terminated). */
async function next(client: WsTestClient): Promise<Frame> {
  const text = (await client.nextRaw()).data.toString('utf8');
  if (text.endsWith('\x1f')) {
    return {
      events: text
        .split('\x1f')
        .filter((p) => p !== '')
        .map((p) => JSON.parse(p) as { m: { eid: string } }),
    };
  }
  return JSON.parse(text) as Frame;
}

async function control(client: WsTestClient): Promise<string | undefined> {
  return (await next(client)).code;
}

describe('FatesService', () => {
  let pairs: WsPairFactory;
  let fates: FatesService;

  before(async () => {
    pairs = await WsPairFactory.start();
  });
  after(() => pairs.close());

  function fresh(): void {
    const { registry, bus, logger, limits } = memoryCore(config);
    fates = new FatesService(registry, bus, new FatesData(new MemoryStore()), config, logger, limits);
  }

  async function connect(): Promise<WsTestClient> {
    const { server, client } = await pairs.pair();
    fates.open(server, 'v2', req);
    server.on('message', (data: Buffer) => fates.receive(server, data));
    server.on('close', () => fates.close(server));
    assert.equal(await control(client), 'identity');
    return client;
  }

  const bot: FatesTarget = { kind: 'bot', id: '42' };
  const identify = (client: WsTestClient, token: string, extra: Record<string, unknown> = {}): void =>
    client.send({ id: bot.id, token, ...extra });

  it('closes an identify whose token is deleted while it is being checked', async () => {
    fresh();
    await fates.setToken(bot, 'token-one');
    const client = await connect();
    identify(client, 'token-one');
    // The identify's store reads and the deletion interleave on the event loop; whichever
    // reads first, the connection must not stay open on a token that is gone.
    await fates.deleteToken(bot);
    const closed = await client.waitClose();
    assert.equal(closed.code, 4004);
  });

  it('closes connections of the rotated-away token, keeps those of the new one', async () => {
    fresh();
    await fates.setToken(bot, 'token-one');
    const old = await connect();
    identify(old, 'token-one');
    assert.equal(await control(old), 'ready');
    await fates.setToken(bot, 'token-two');
    assert.equal((await old.waitClose()).code, 4004);
    const renewed = await connect();
    identify(renewed, 'token-two');
    assert.equal(await control(renewed), 'ready');
    // Setting the same token again is a rotation to itself: nobody holding it goes.
    await fates.setToken(bot, 'token-two');
    await fates.publish('bot-42', { m: { e: 0 }, ctx: {} });
    const frame = await next(renewed);
    assert.equal(frame.events?.length, 1);
  });

  it('delivers every event once and in order when live events arrive during the replay', async () => {
    fresh();
    await fates.setToken(bot, 'token');
    const stored = [await fates.publish('bot-42', { m: { e: 1 }, ctx: {} })];
    stored.push(await fates.publish('bot-42', { m: { e: 2 }, ctx: {} }));
    const client = await connect();
    identify(client, 'token', { send_all: true });
    // Published while the identify and the replay are under way: each is either in the
    // stored history the replay reads or held and sent after it, never both, never neither.
    const live = await Promise.all([
      fates.publish('bot-42', { m: { e: 3 }, ctx: {} }),
      fates.publish('bot-42', { m: { e: 4 }, ctx: {} }),
    ]);
    const seen: string[] = [];
    let replayDone = false;
    while (seen.length < 4) {
      const frame = await next(client);
      if (frame.code === 'done_prior') replayDone = true;
      for (const event of frame.events ?? []) seen.push(event.m.eid);
    }
    assert.deepEqual(seen, [...stored, ...live]);
    if (!replayDone) assert.equal(await control(client), 'done_prior');
    // Nothing more: a duplicate would have come before this.
    await fates.publish('bot-42', { m: { e: 5 }, ctx: {} });
    assert.equal((await next(client)).events?.length, 1);
  });
});
