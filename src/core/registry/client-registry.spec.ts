import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import type { WsTestClient } from '../../../test/helpers/ws-client.js';
import { WsPairFactory } from '../../../test/helpers/ws-pair.js';
import { PeerBus } from '../../../test/helpers/peer-bus.js';
import { bytesTopic } from '../bus/bus-topic.js';
import type { Target } from '../bus/event-bus.js';
import type { CountTarget } from './client-registry.js';
import { Connection, type ClientId, type CloseSpec } from './connection.js';
import { MemoryClientRegistry } from './memory-client-registry.js';

const log = pino({ level: 'silent' });

interface Client {
  connection: Connection;
  client: WsTestClient;
}

describe('MemoryClientRegistry', () => {
  let pairs: WsPairFactory;
  let bus: PeerBus;
  let registry: MemoryClientRegistry;
  let counter = 0;

  before(async () => {
    pairs = await WsPairFactory.start();
  });
  after(() => pairs.close());

  function fresh(): void {
    bus = new PeerBus({ log });
    registry = new MemoryClientRegistry(bus, log);
  }

  async function open(
    protocol: string,
    user: string | null,
    channels: string[] = [],
    { add = true } = {},
  ): Promise<Client> {
    const { server, client } = await pairs.pair();
    const connection = new Connection({
      id: `c${++counter}` as ClientId,
      protocol,
      socket: server,
      user,
      normalClose: { code: protocol === 'jac' ? 1000 : 4000, reason: `${protocol} close` },
      slowConsumerClose: { code: 1013, reason: 'slow' },
      sendBufferLimit: 1 << 20,
    });
    if (channels.length > 0) registry.setChannels(connection, channels);
    if (add) registry.add(connection);
    return { connection, client };
  }

  function ids(protocol: string, target: Target): string[] {
    return [...registry.resolve(protocol, target)].map((c) => c.id).sort();
  }

  /**
   * Proves a client received nothing before now: deliver a marker to everyone of its
   * protocol and require the marker to be the very next message.
   */
  async function assertNothingBefore(c: Client, marker: string): Promise<void> {
    registry.deliver(c.connection.protocol, { kind: 'client', ids: [c.connection.id] }, Buffer.from(marker));
    assert.equal((await c.client.nextRaw()).data.toString(), marker);
  }

  it('adds and removes connections', async () => {
    fresh();
    const a = await open('jac', 'u1', ['ch1']);
    const b = await open('jac', 'u2');
    assert.equal(registry.size, 2);
    assert.equal(registry.get(a.connection.id), a.connection);
    assert.deepEqual([...registry.local()].map((c) => c.id).sort(), [a.connection.id, b.connection.id].sort());
    registry.remove(a.connection);
    assert.equal(registry.size, 1);
    assert.equal(registry.get(a.connection.id), undefined);
    assert.deepEqual(ids('jac', { kind: 'user', ids: ['u1'] }), []);
    assert.deepEqual(ids('jac', { kind: 'channel', ids: ['ch1'] }), []);
    assert.deepEqual(ids('jac', { kind: 'client', ids: [a.connection.id] }), []);
    registry.remove(a.connection); // twice is harmless
    assert.equal(registry.size, 1);
  });

  it('ignores the removal of a stale connection object that shares an id', async () => {
    fresh();
    const a = await open('jac', 'u1');
    const impostor = new Connection({
      id: a.connection.id,
      protocol: 'jac',
      socket: a.connection.socket,
      user: 'u1',
      normalClose: { code: 1000, reason: '' },
      slowConsumerClose: { code: 1013, reason: '' },
      sendBufferLimit: 1,
    });
    registry.remove(impostor);
    assert.equal(registry.get(a.connection.id), a.connection);
    assert.deepEqual(ids('jac', { kind: 'user', ids: ['u1'] }), [a.connection.id]);
  });

  it('keeps the user index right through setUser', async () => {
    fresh();
    const a = await open('jac', 'u1');
    registry.setUser(a.connection, 'u2');
    assert.equal(a.connection.user, 'u2');
    assert.deepEqual(ids('jac', { kind: 'user', ids: ['u1'] }), []);
    assert.deepEqual(ids('jac', { kind: 'user', ids: ['u2'] }), [a.connection.id]);
    registry.setUser(a.connection, null);
    assert.equal(a.connection.user, null);
    assert.deepEqual(ids('jac', { kind: 'user', ids: ['u2'] }), []);
    registry.setUser(a.connection, 'u3');
    assert.deepEqual(ids('jac', { kind: 'user', ids: ['u3'] }), [a.connection.id]);
    registry.remove(a.connection);
    assert.deepEqual(ids('jac', { kind: 'user', ids: ['u3'] }), []);
  });

  it('indexes a user or channels set before add, and not before', async () => {
    fresh();
    const a = await open('jac', 'u1', [], { add: false });
    registry.setUser(a.connection, 'u9');
    registry.setChannels(a.connection, ['early']);
    assert.deepEqual(ids('jac', { kind: 'user', ids: ['u9'] }), []);
    assert.deepEqual(ids('jac', { kind: 'channel', ids: ['early'] }), []);
    registry.add(a.connection);
    assert.deepEqual(ids('jac', { kind: 'user', ids: ['u9'] }), [a.connection.id]);
    assert.deepEqual(ids('jac', { kind: 'user', ids: ['u1'] }), []);
    assert.deepEqual(ids('jac', { kind: 'channel', ids: ['early'] }), [a.connection.id]);
  });

  it('keeps the channel index right through setChannels', async () => {
    fresh();
    const a = await open('jac', null, ['x', 'y']);
    const b = await open('jac', null, ['y']);
    assert.deepEqual([...a.connection.channels].sort(), ['x', 'y']);
    registry.setChannels(a.connection, ['y', 'z', 'z']);
    assert.deepEqual([...a.connection.channels].sort(), ['y', 'z']);
    assert.deepEqual(ids('jac', { kind: 'channel', ids: ['x'] }), []);
    assert.deepEqual(ids('jac', { kind: 'channel', ids: ['y'] }), [a.connection.id, b.connection.id].sort());
    assert.deepEqual(ids('jac', { kind: 'channel', ids: ['z'] }), [a.connection.id]);
    registry.setChannels(a.connection, []);
    assert.deepEqual(ids('jac', { kind: 'channel', ids: ['y'] }), [b.connection.id]);
    assert.deepEqual(ids('jac', { kind: 'channel', ids: ['z'] }), []);
  });

  it('resolves by user, channel, client and all, scoped by protocol and without duplicates', async () => {
    fresh();
    const a = await open('jac', 'u1', ['ch1', 'ch2']);
    const b = await open('jac', 'u1', ['ch2']);
    const c = await open('jac', 'u2', ['ch3']);
    const other = await open('fates', 'u1', ['ch1']);
    const [ia, ib, ic, io] = [a.connection.id, b.connection.id, c.connection.id, other.connection.id];

    assert.deepEqual(ids('jac', { kind: 'user', ids: ['u1'] }), [ia, ib].sort());
    assert.deepEqual(ids('jac', { kind: 'user', ids: ['u1', 'u1', 'u2', 'nobody'] }), [ia, ib, ic].sort());
    assert.deepEqual(ids('fates', { kind: 'user', ids: ['u1'] }), [io]);
    assert.deepEqual(ids('jac', { kind: 'channel', ids: ['ch1'] }), [ia]);
    assert.deepEqual(ids('jac', { kind: 'channel', ids: ['ch1', 'ch2'] }), [ia, ib].sort());
    assert.deepEqual(ids('fates', { kind: 'channel', ids: ['ch1', 'ch2'] }), [io]);
    assert.deepEqual(ids('jac', { kind: 'client', ids: [ia, ic, ia, io, 'missing'] }), [ia, ic].sort());
    assert.deepEqual(ids('fates', { kind: 'client', ids: [ia, io] }), [io]);
    assert.deepEqual(ids('jac', { kind: 'all' }), [ia, ib, ic].sort());
    assert.deepEqual(ids('fates', { kind: 'all' }), [io]);
    assert.deepEqual(ids('hatsu', { kind: 'all' }), []);
    assert.deepEqual(ids('jac', { kind: 'user', ids: [] }), []);
  });

  it('delivers the same bytes once to every matching connection, and nothing to the others', async () => {
    fresh();
    const a = await open('jac', 'u1', ['ch1', 'ch2']);
    const b = await open('jac', 'u1', ['ch2']);
    const c = await open('jac', 'u2', ['ch2']);
    const other = await open('fates', 'u1', ['ch2']);

    const payload = Buffer.from('{"type":"chat","data":{"message":"héllo"}}');
    assert.equal(registry.deliver('jac', { kind: 'user', ids: ['u1', 'u1'] }, payload), 2);
    for (const x of [a, b]) {
      const got = await x.client.nextRaw();
      assert.ok(got.data.equals(payload));
      assert.equal(got.isBinary, false);
    }
    await assertNothingBefore(a, 'marker-a');
    await assertNothingBefore(b, 'marker-b');
    await assertNothingBefore(c, 'marker-c');
    await assertNothingBefore(other, 'marker-other');

    // A connection in two targeted channels gets the message once.
    assert.equal(registry.deliver('jac', { kind: 'channel', ids: ['ch1', 'ch2'] }, Buffer.from('ch')), 3);
    for (const x of [a, b, c]) {
      assert.equal((await x.client.nextRaw()).data.toString(), 'ch');
      await assertNothingBefore(x, 'after-ch');
    }
    await assertNothingBefore(other, 'other-after-ch');

    const bytes = Buffer.from([0x00, 0xff, 0x80, 0x78, 0x9c]);
    assert.equal(registry.deliver('jac', { kind: 'client', ids: [c.connection.id] }, bytes, true), 1);
    const got = await c.client.nextRaw();
    assert.equal(got.isBinary, true);
    assert.ok(got.data.equals(bytes));

    assert.equal(registry.deliver('fates', { kind: 'all' }, Buffer.from('all-fates')), 1);
    assert.equal((await other.client.nextRaw()).data.toString(), 'all-fates');
    await assertNothingBefore(a, 'a-after-fates');
  });

  it('skips connections whose socket is no longer open', async () => {
    fresh();
    const a = await open('jac', 'u1');
    const b = await open('jac', 'u1');
    await b.client.close();
    assert.equal(registry.deliver('jac', { kind: 'user', ids: ['u1'] }, Buffer.from('x')), 1);
    assert.equal((await a.client.nextRaw()).data.toString(), 'x');
  });

  it('counts connections per protocol, user and channel from its indexes, following every change', async () => {
    fresh();
    const count = (protocol: string, target: CountTarget): number => registry.localCount(protocol, target);
    const a = await open('jac', 'u1', ['x', 'y']);
    const b = await open('jac', 'u1', ['y']);
    const c = await open('jac', null);
    const other = await open('fates', 'u1', ['y']);
    assert.equal(count('jac', { kind: 'all' }), 3);
    assert.equal(count('fates', { kind: 'all' }), 1);
    assert.equal(count('hatsu', { kind: 'all' }), 0);
    assert.equal(count('jac', { kind: 'user', id: 'u1' }), 2);
    assert.equal(count('jac', { kind: 'channel', id: 'y' }), 2);
    assert.equal(count('jac', { kind: 'channel', id: 'x' }), 1);
    assert.equal(count('fates', { kind: 'channel', id: 'y' }), 1);
    assert.equal(count('jac', { kind: 'channel', id: 'nowhere' }), 0);
    // The same connection added again changes nothing.
    registry.add(a.connection);
    assert.equal(count('jac', { kind: 'all' }), 3);
    assert.equal(count('jac', { kind: 'user', id: 'u1' }), 2);

    registry.setUser(b.connection, 'u2');
    registry.setUser(c.connection, 'u2');
    registry.setChannels(a.connection, ['x']);
    assert.equal(count('jac', { kind: 'user', id: 'u1' }), 1);
    assert.equal(count('jac', { kind: 'user', id: 'u2' }), 2);
    assert.equal(count('jac', { kind: 'channel', id: 'y' }), 1);
    registry.remove(a.connection);
    registry.remove(a.connection);
    assert.equal(count('jac', { kind: 'all' }), 2);
    assert.equal(count('jac', { kind: 'user', id: 'u1' }), 0);
    assert.equal(count('jac', { kind: 'channel', id: 'x' }), 0);
    // Every count agrees with what resolve finds.
    for (const target of [
      { kind: 'user', id: 'u2' },
      { kind: 'channel', id: 'y' },
    ] as const) {
      assert.equal(count('jac', target), ids('jac', { kind: target.kind, ids: [target.id] }).length);
    }
    assert.equal(count('jac', { kind: 'all' }), ids('jac', { kind: 'all' }).length);
    // One process: the cluster-wide count is the local one, and no other instance adds to it.
    assert.equal(await registry.count('jac', { kind: 'user', id: 'u2' }), 2);
    assert.equal(await registry.remoteCount('jac', { kind: 'all' }), 0);
    for (const x of [b, c, other]) registry.remove(x.connection);
    assert.equal(count('jac', { kind: 'all' }), 0);
    assert.equal(count('fates', { kind: 'channel', id: 'y' }), 0);
  });

  it('replaces a connection added under the id of another, counts included', async () => {
    fresh();
    const a = await open('jac', 'u1', ['x']);
    const twin = new Connection({
      id: a.connection.id,
      protocol: 'jac',
      socket: a.connection.socket,
      user: 'u2',
      normalClose: { code: 1000, reason: '' },
      slowConsumerClose: { code: 1013, reason: '' },
      sendBufferLimit: 1 << 20,
    });
    registry.add(twin);
    assert.equal(registry.get(a.connection.id), twin);
    assert.equal(registry.localCount('jac', { kind: 'all' }), 1);
    assert.equal(registry.localCount('jac', { kind: 'user', id: 'u1' }), 0);
    assert.equal(registry.localCount('jac', { kind: 'channel', id: 'x' }), 0);
    assert.equal(registry.localCount('jac', { kind: 'user', id: 'u2' }), 1);
  });

  it("lists and locates this instance's clients", async () => {
    fresh();
    const a = await open('jac', 'u1', ['ch1']);
    const list = await registry.list();
    assert.equal(list.length, 1);
    const info = list[0];
    assert.deepEqual(info && { ...info, since: undefined }, {
      id: a.connection.id,
      protocol: 'jac',
      user: 'u1',
      channels: ['ch1'],
      instance: bus.instanceId,
      since: undefined,
    });
    assert.ok(!Number.isNaN(Date.parse(info?.since ?? '')));
    assert.deepEqual(await registry.locate(a.connection.id), info);
    assert.equal(await registry.locate('nobody'), null);
    assert.equal(registry.instanceId, bus.instanceId);
  });

  it("disconnects a client with its protocol's normal close, and says false for an unknown id", async () => {
    fresh();
    const a = await open('jac', 'u1');
    const f = await open('fates', 'u1');
    assert.equal(await registry.disconnect(a.connection.id), true);
    assert.deepEqual(await a.client.waitClose(), { code: 1000, reason: 'jac close' });
    assert.equal(await registry.disconnect(f.connection.id), true);
    assert.deepEqual(await f.client.waitClose(), { code: 4000, reason: 'fates close' });
    assert.equal(await registry.disconnect('unknown'), false);
  });

  it('closes a client named by a control message on the bus (how another instance asks)', async () => {
    fresh();
    const a = await open('jac', 'u1');
    const b = await open('jac', 'u1');
    bus.fromAnotherInstance({
      topic: 'control.disconnect',
      target: { kind: 'client', ids: [a.connection.id] },
      payload: Buffer.alloc(0),
    });
    assert.equal((await a.client.waitClose()).code, 1000);
    // Other messages on the topic are not a close.
    bus.fromAnotherInstance({
      topic: 'control.disconnect',
      target: { kind: 'client', ids: [b.connection.id] },
      payload: Buffer.from('ping'),
    });
    bus.fromAnotherInstance({
      topic: 'control.disconnect',
      target: { kind: 'user', ids: ['u1'] },
      payload: Buffer.alloc(0),
    });
    registry.deliver('jac', { kind: 'client', ids: [b.connection.id] }, Buffer.from('still open'));
    assert.equal((await b.client.nextRaw()).data.toString(), 'still open');
  });

  // ---- revocations ---------------------------------------------------------------

  const REVOKED: CloseSpec = { code: 4004, reason: 'revoked' };

  /** Proves a client is still open and got nothing: a marker must be the very next message. */
  async function assertUntouched(c: Client): Promise<void> {
    assert.equal(c.connection.send('marker'), true, 'still open');
    assert.equal((await c.client.nextRaw()).data.toString(), 'marker');
  }

  async function withCredential(protocol: string, credential: string | null, { before = false } = {}): Promise<Client> {
    const c = await open(protocol, 'u1', [], { add: !before });
    registry.setCredential(c.connection, credential);
    if (before) registry.add(c.connection);
    return c;
  }

  it('revokes every connection of the protocol filed under the credential, with the given close, and no other', async () => {
    fresh();
    const first = await withCredential('felix', 'token-1');
    const second = await withCredential('felix', 'token-1', { before: true });
    const otherToken = await withCredential('felix', 'token-2');
    const otherProtocol = await withCredential('hatsu', 'token-1');
    const none = await withCredential('felix', null);

    await registry.revoke('felix', 'token-1', REVOKED);
    assert.deepEqual(await first.client.waitClose(), REVOKED);
    assert.deepEqual(await second.client.waitClose(), REVOKED);
    for (const c of [otherToken, otherProtocol, none]) await assertUntouched(c);
  });

  it('spares the connections of the version a revocation keeps, and reaches every protocol it names', async () => {
    fresh();
    const old = await withCredential('fates-v2', 'bot-1');
    registry.setCredential(old.connection, 'bot-1', 'digest-old');
    const rotated = await withCredential('fates-v2', 'bot-1');
    registry.setCredential(rotated.connection, 'bot-1', 'digest-new');
    const otherEra = await withCredential('fates-flamepaw', 'bot-1');
    registry.setCredential(otherEra.connection, 'bot-1', 'digest-old');
    assert.equal(rotated.connection.credentialVersion, 'digest-new');

    await registry.revoke(['fates-v2', 'fates-flamepaw'], 'bot-1', REVOKED, { keep: 'digest-new' });
    assert.deepEqual(await old.client.waitClose(), REVOKED);
    assert.deepEqual(await otherEra.client.waitClose(), REVOKED);
    await assertUntouched(rotated);
    // Without `keep`, every version goes.
    await registry.revoke(['fates-v2', 'fates-flamepaw'], 'bot-1', REVOKED);
    assert.deepEqual(await rotated.client.waitClose(), REVOKED);
  });

  it('lists the live credentials of one protocol, and forgets a connection once it is removed', async () => {
    fresh();
    const a = await withCredential('felix', 'token-a');
    const b = await withCredential('felix', 'token-b');
    await withCredential('hatsu', 'token-a');
    const listed = (protocol: string): [string, string[]][] =>
      registry.credentials(protocol).map(([credential, set]) => [credential, [...set].map((c) => c.id)]);
    assert.deepEqual(listed('felix'), [
      ['token-a', [a.connection.id]],
      ['token-b', [b.connection.id]],
    ]);
    assert.equal(a.connection.credential, 'token-a');

    registry.remove(a.connection);
    registry.setCredential(b.connection, 'token-c');
    assert.deepEqual(listed('felix'), [['token-c', [b.connection.id]]]);
    await registry.revoke('felix', 'token-a', REVOKED);
    await registry.revoke('felix', 'token-b', REVOKED);
    await assertUntouched(a);
    await assertUntouched(b);
    registry.setCredential(b.connection, null);
    assert.deepEqual(listed('felix'), []);
  });

  it("leaves credentials out of the admin API's listing", async () => {
    fresh();
    const c = await withCredential('felix', 'secret-key');
    const [info] = await registry.list();
    assert.equal(info?.id, c.connection.id);
    assert.equal(JSON.stringify(info).includes('secret-key'), false);
  });

  it("hands revoked connections to the protocol's own handler instead of closing them", async () => {
    fresh();
    const c = await withCredential('hatsu', 'key-1');
    const handled: [string, CloseSpec][] = [];
    const stop = registry.onRevoke('hatsu', (connection, close) => handled.push([connection.id, close]));
    await registry.revoke('hatsu', 'key-1', REVOKED);
    assert.deepEqual(handled, [[c.connection.id, REVOKED]]);
    await assertUntouched(c);

    stop();
    await registry.revoke('hatsu', 'key-1', REVOKED);
    assert.equal(handled.length, 1);
    assert.deepEqual(await c.client.waitClose(), REVOKED);
  });

  it('drops what is not a revocation on its topic', async () => {
    fresh();
    const c = await withCredential('felix', 'token-1');
    for (const payload of [
      'not json',
      '[]',
      '{"protocols":["felix"],"credential":"token-1"}',
      '{"protocols":"felix","credential":"token-1","close":{"code":4004,"reason":"x"}}',
      '{"protocols":[1]}',
    ]) {
      bus.fromAnotherInstance({ topic: 'control.revoke', target: { kind: 'all' }, payload: Buffer.from(payload) });
    }
    await assertUntouched(c);
  });

  it("relays the protocol's own topic to its connections, bytes as published", async () => {
    fresh();
    const c = await open('jac', 'u1');
    const other = await open('felix', 'u1');
    const stop = registry.relay(bytesTopic('jac'));
    await bus.publish(bytesTopic('jac'), { kind: 'user', ids: ['u1'] }, Buffer.from('{"x":1}'));
    assert.equal((await c.client.nextRaw()).data.toString(), '{"x":1}');
    await assertUntouched(other);
    stop();
    await bus.publish(bytesTopic('jac'), { kind: 'all' }, Buffer.from('late'));
    await assertUntouched(c);
  });
});
