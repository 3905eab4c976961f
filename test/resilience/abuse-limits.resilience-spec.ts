import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ClientOptions } from 'ws';
import { ClientRegistry } from '../../src/core/registry/client-registry.js';
import { Store } from '../../src/core/store/store.js';
import { startApp, type TestApp } from '../helpers/app.js';
import { newBot, openFates } from '../helpers/fates-client.js';
import { createToken } from '../helpers/felix-client.js';
import { hatsuAccount, openHatsu } from '../helpers/hatsu-client.js';
import { admin } from '../helpers/http.js';
import { snowflake } from '../helpers/ids.js';
import { openJac } from '../helpers/jac-client.js';
import { connectBounded, UpgradeRejected, type WsTestClient } from '../helpers/ws-client.js';
import { figure } from './support.js';

const LIMIT = 3;

/** Every protocol's upgrade path, with what a client of it would present. */
const PATHS = ['/api/ws', '/flamepaw/ws', '/felix', '/hatsu', '/websocket'];

/** Each test acts as an address of its own (all of 127/8 is loopback). */
function from(address: string): ClientOptions {
  return { localAddress: address };
}

describe('the failed-authentication throttle counts Fates and hatsu identify failures', () => {
  let app: TestApp;
  let registry: ClientRegistry;
  /** Store calls made, by method: a refused upgrade must not add to them. */
  const storeCalls = new Map<string, number>();
  const peers: WsTestClient[] = [];

  before(async () => {
    app = await startApp({ AUTH_FAILURE_LIMIT: String(LIMIT), AUTH_FAILURE_WINDOW_MS: '60000' });
    registry = app.app.get(ClientRegistry);
    // Counts every call on the app's real Store (what each protocol's identify reads from).
    const store = app.app.get(Store);
    for (const method of ['get', 'set', 'delete', 'append', 'range', 'hit', 'peek'] as const) {
      const original = store[method].bind(store) as (...args: unknown[]) => Promise<unknown>;
      (store as unknown as Record<string, unknown>)[method] = (...args: unknown[]): Promise<unknown> => {
        storeCalls.set(method, (storeCalls.get(method) ?? 0) + 1);
        return original(...args);
      };
    }
  });

  after(async () => {
    await Promise.all(peers.map((peer) => peer.close()));
    await app?.close();
  });

  function storeCallCount(): number {
    let n = 0;
    for (const count of storeCalls.values()) n += count;
    return n;
  }

  async function connectionsTotal(): Promise<number> {
    const answer = await admin(app, 'GET', '/admin/connections');
    assert.equal(answer.status, 200, answer.text);
    return (answer.json as { total: number }).total;
  }

  /** A Fates identify with a wrong token: `invalid_auth`, then 4004. */
  async function fatesFailure(address: string, bot: { id: string }): Promise<void> {
    const peer = await connectBounded(app.ws('/api/ws'), from(address));
    assert.equal((await peer.next<{ code: string }>()).code, 'identity');
    peer.send({ id: bot.id, token: 'a-guessed-token' });
    assert.equal((await peer.next<{ code: string }>()).code, 'invalid_auth');
    assert.equal((await peer.waitClose()).code, 4004);
  }

  /** A hatsu identify with a session id nobody set: 4002 "Invalid authorization". */
  async function hatsuFailure(address: string): Promise<void> {
    const peer = await connectBounded(app.ws('/hatsu'), from(address));
    peer.send({ session_id: `guessed-${snowflake()}` });
    assert.deepEqual(await peer.waitClose(), { code: 4002, reason: 'Invalid authorization' });
  }

  /**
   * Every protocol's upgrade from `address` is refused 429, with no store call, no
   * registry entry and no socket: the refusal comes before any protocol code runs.
   */
  async function expectThrottled(label: string, address: string, headers: Record<string, string> = {}): Promise<void> {
    const total = await connectionsTotal();
    const calls = storeCallCount();
    const size = registry.size;
    const started = performance.now();
    for (const path of PATHS) {
      const refused = await connectBounded(app.ws(path), { ...from(address), headers }).then(
        async (peer) => {
          await peer.close();
          return null;
        },
        (err: unknown) => err,
      );
      assert.ok(refused instanceof UpgradeRejected, `${path} from ${address} was not refused: ${String(refused)}`);
      assert.equal(refused.status, 429, path);
    }
    figure('abuse-limits', `refusal_ms_per_upgrade_${label}`, (performance.now() - started) / PATHS.length, 'ms');
    assert.equal(storeCallCount(), calls, 'a refused upgrade read or wrote the store');
    assert.equal(registry.size, size, 'a refused upgrade was registered');
    assert.equal(await connectionsTotal(), total);
  }

  it('Fates: each invalid_auth counts; past the limit the address gets 429 before any lookup', async () => {
    const address = '127.0.0.3';
    const bot = await newBot(app);
    // A malformed identify guesses nothing and is not counted (docs/protocols/fates.md).
    for (let i = 0; i < LIMIT + 1; i++) {
      const peer = await connectBounded(app.ws('/api/ws'), from(address));
      await peer.next();
      peer.send({ id: 'not-a-number', token: 'x' });
      assert.equal((await peer.next<{ code: string }>()).code, 'invalid_payload');
      assert.equal((await peer.waitClose()).code, 4004);
    }
    for (let i = 0; i < LIMIT; i++) await fatesFailure(address, bot);
    await expectThrottled('fates', address);
    // Another address identifies with the right token as usual.
    peers.push(await openFates(app, bot, { options: from('127.0.0.2') }));
  });

  it('hatsu: each unknown session id counts; past the limit the address gets 429 before any lookup', async () => {
    const address = '127.0.0.4';
    const account = await hatsuAccount(app);
    for (let i = 0; i < LIMIT; i++) await hatsuFailure(address);
    await expectThrottled('hatsu', address);
    peers.push(await openHatsu(app, account.sessionId, { options: from('127.0.0.2') }));
  });

  it('shares one budget across protocols: Fates, hatsu and Felix failures add up, and a valid token is refused too', async () => {
    const address = '127.0.0.5';
    const bot = await newBot(app);
    const felix = await createToken(app);
    await fatesFailure(address, bot);
    await hatsuFailure(address);
    const felixRefused = await connectBounded(app.ws('/felix'), {
      ...from(address),
      headers: { Authorization: 'not-a-token' },
    }).catch((err: unknown) => err);
    assert.ok(felixRefused instanceof UpgradeRejected);
    assert.equal(felixRefused.status, 403);
    // Even Felix's valid token is refused at the upgrade now, without its lookup.
    await expectThrottled('shared', address, { Authorization: felix.token });
    const jac = await openJac(app, { options: from('127.0.0.2') });
    peers.push(jac.ws);
  });
});
