import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { memoryCore } from '../../../test/helpers/memory-core.js';
import type { WsTestClient } from '../../../test/helpers/ws-client.js';
import { WsPairFactory } from '../../../test/helpers/ws-pair.js';
import { validateEnv } from '../../config/env.schema.js';
import { MemoryStore } from '../../core/store/memory-store.js';
import { parseHatsuFrame } from './hatsu.codec.js';
import { HatsuData } from './hatsu-data.js';
import { HatsuMembers } from './hatsu-members.js';
import { HatsuService } from './hatsu.service.js';

/**
 * The hatsu state machine on the memory drivers and real sockets: identify racing a
 * revocation and a membership change, in the order the event loop runs them.
 */
const config = validateEnv({ LOG_LEVEL: 'silent', METRICS_ENABLED: 'false' });

type Message = Record<string, unknown> & { t: string };

/**
 * The memory store, with one kind of read held at a gate: the test learns when the state
 * machine has reached that read, does what must race it, then lets the read answer.
 */
class GatedStore extends MemoryStore {
  private gate: { match: string; reached: () => void; open: Promise<void> } | null = null;

  /** Holds the next read of a key containing `match`; resolves once it is held, with the function that lets it go. */
  hold(match: string): Promise<() => void> {
    let release!: () => void;
    const open = new Promise<void>((resolve) => (release = resolve));
    return new Promise((reached) => {
      this.gate = { match, reached: () => reached(release), open };
    });
  }

  override async get(key: string): Promise<string | null> {
    await this.wait(key);
    return super.get(key);
  }

  override async range(key: string): Promise<string[]> {
    await this.wait(key);
    return super.range(key);
  }

  private async wait(key: string): Promise<void> {
    const gate = this.gate;
    if (!gate || !key.includes(gate.match)) return;
    this.gate = null;
    gate.reached();
    await gate.open;
  }
}

describe('HatsuService', () => {
  let pairs: WsPairFactory;
  let hatsu: HatsuService;
  let data: HatsuData;
  let store: GatedStore;
  let members: HatsuMembers;

  before(async () => {
    pairs = await WsPairFactory.start();
  });
  after(() => pairs.close());

  function fresh(): void {
    const { registry, bus, logger, limits } = memoryCore(config);
    store = new GatedStore();
    data = new HatsuData(store);
    members = new HatsuMembers(bus, registry);
    hatsu = new HatsuService(registry, bus, data, members, config, limits, logger);
  }

  async function connect(): Promise<WsTestClient> {
    const { server, client } = await pairs.pair();
    hatsu.open(server, '127.0.0.1');
    server.on('message', (raw: Buffer) => hatsu.receive(server, parseHatsuFrame(raw)));
    server.on('close', () => hatsu.close(server));
    return client;
  }

  const next = async (client: WsTestClient): Promise<Message> => client.next<Message>();

  it('closes an identify whose session id is revoked while it is looked up', async () => {
    fresh();
    await data.putUser('7', { username: 'seven' });
    await data.putSession('sid-1', '7');
    const client = await connect();
    const lookup = store.hold('hatsu:session:');
    client.send({ session_id: 'sid-1' });
    const release = await lookup;
    // The socket is filed under the session id before the lookup, so the revocation made
    // while the lookup is out finds it.
    await data.deleteSession('sid-1');
    await hatsu.revoke('sid-1');
    release();
    const closed = await client.waitClose();
    assert.deepEqual(closed, { code: 4002, reason: 'Invalid authorization' });
  });

  it('applies a membership change that arrives while identify reads the guilds', async () => {
    fresh();
    await data.putUser('8', { username: 'eight' });
    await data.putSession('sid-2', '8');
    await data.putGuild('100', { guild: { name: 'kept' }, channels: [] }, ['8']);
    const client = await connect();
    const guildsRead = store.hold('hatsu:user-guilds:');
    client.send({ session_id: 'sid-2' });
    const release = await guildsRead;
    // Announced while identify reads the user's guilds: the user leaves guild 100 (which the
    // read will still find) and joins 200. The session must end up in 200 and not in 100.
    await members.announce('200', ['8'], []);
    await members.announce('100', [], ['8']);
    release();
    assert.equal((await next(client)).t, 'HELLO');
    assert.equal((await next(client)).t, 'READY');
    const dispatched = await hatsu.dispatch({ guildId: '200' }, Buffer.from('{"t":"IN_200","d":null}'), false);
    const missed = await hatsu.dispatch({ guildId: '100' }, Buffer.from('{"t":"IN_100","d":null}'), false);
    assert.deepEqual([dispatched, missed], [1, 0]);
    // No GUILD_INIT for 100 (left) and none for 200 (not stored): the next message is the dispatch.
    assert.equal((await next(client)).t, 'IN_200');
  });

  it('answers heartbeats sent before READY after it, in order', async () => {
    fresh();
    await data.putUser('9', { username: 'nine' });
    await data.putSession('sid-3', '9');
    const client = await connect();
    client.send({ session_id: 'sid-3' });
    client.send({ t: 'HEARTBEAT', s: 1 });
    client.send({ t: 'HEARTBEAT', s: 2 });
    const seen = [];
    for (let i = 0; i < 4; i++) {
      const message = await next(client);
      seen.push(message.t === 'ACK' ? `ACK ${String(message['s'])}` : message.t);
    }
    assert.deepEqual(seen, ['HELLO', 'READY', 'ACK 1', 'ACK 2']);
  });
});
