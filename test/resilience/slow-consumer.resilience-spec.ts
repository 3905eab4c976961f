import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { ClientRegistry } from '../../src/core/registry/client-registry.js';
import type { Connection } from '../../src/core/registry/connection.js';
import { startApp, type TestApp } from '../helpers/app.js';
import { fatesEvents, newBot, openFates } from '../helpers/fates-client.js';
import { createToken, openFelix } from '../helpers/felix-client.js';
import { hatsuAccount, openHatsu } from '../helpers/hatsu-client.js';
import { expectStatus } from '../helpers/http.js';
import { snowflake } from '../helpers/ids.js';
import { openJac } from '../helpers/jac-client.js';
import { waitFor } from '../helpers/wait.js';
import type { WsTestClient } from '../helpers/ws-client.js';
import { figure, memory, mib, MiB, size, type Memory } from './support.js';

/** Small, so the cut-off comes after a few MiB whatever the kernel buffers between the two ends. */
const LIMIT = 65_536;
const PAYLOAD_BYTES = size('SLOW_PAYLOAD_BYTES', 65_536);
const SLOW_CLIENTS = size('SLOW_CLIENTS', 4);
/**
 * Events published after every slow client was cut off: without the cut-off each slow
 * client would have to hold all of them, which the memory bound below could not absorb.
 */
const AFTER_CUTOFF = size('SLOW_AFTER_CUTOFF', 100);
/** Memory the process may gain besides the slow clients' buffers (allocator and JIT noise). */
const SLACK = 8 * MiB;
/** Past this much published to a client that never reads, the cut-off has failed. */
const GIVE_UP_BYTES = 96 * MiB;

interface Scenario {
  name: string;
  /** Which server-side connections are this protocol's. */
  owns(connection: Connection): boolean;
  setup(): Promise<void>;
  /** A live client (identified, listening), the `i`th of its role. */
  open(i: number, role: 'slow' | 'healthy'): Promise<WsTestClient>;
  publish(seq: number, pad: string): Promise<void>;
  /** The sequence numbers one received frame carries. */
  seqs(frame: Buffer): number[];
}

describe('slow consumers are cut off without costing memory or anyone else', () => {
  let app: TestApp;
  let registry: ClientRegistry;
  const peers: WsTestClient[] = [];

  before(async () => {
    app = await startApp({
      WS_SEND_BUFFER_LIMIT: String(LIMIT),
      // Identifies are not what is measured here, and stored histories would count as memory.
      FATES_RATE_LIMIT: '1000000',
      FATES_HISTORY_LIMIT: '5',
    });
    registry = app.app.get(ClientRegistry);
  });

  after(async () => {
    await Promise.all(peers.map((peer) => peer.close()));
    await app?.close();
  });

  function local(scenario: Scenario): Connection[] {
    return [...registry.local()].filter((connection) => scenario.owns(connection));
  }

  /** Opens a client and returns it with its server-side connection. */
  async function openTracked(
    scenario: Scenario,
    i: number,
    role: 'slow' | 'healthy',
  ): Promise<[WsTestClient, Connection]> {
    const known = new Set(local(scenario));
    const peer = await scenario.open(i, role);
    peers.push(peer);
    const added = local(scenario).filter((connection) => !known.has(connection));
    assert.equal(added.length, 1, `one new ${scenario.name} connection`);
    return [peer, added[0] as Connection];
  }

  async function run(scenario: Scenario): Promise<void> {
    await scenario.setup();
    const healthy: WsTestClient[] = [];
    for (let i = 0; i < 2; i++) healthy.push((await openTracked(scenario, i, 'healthy'))[0]);
    const slow: [WsTestClient, Connection][] = [];
    for (let i = 0; i < SLOW_CLIENTS; i++) slow.push(await openTracked(scenario, i, 'slow'));
    for (const [peer] of slow) {
      peer.socket.pause();
      // Whatever it reads once it resumes is counted, not kept: the process measured is the server's.
      peer.stream(() => undefined);
    }
    const received = healthy.map(() => [] as number[]);
    healthy.forEach((peer, k) => peer.stream((frame) => received[k]?.push(...scenario.seqs(frame))));

    const pad = randomBytes(Math.ceil((PAYLOAD_BYTES * 3) / 4))
      .toString('base64')
      .slice(0, PAYLOAD_BYTES);
    let seq = 0;
    let maxBuffered = 0;
    const step = async (): Promise<void> => {
      await scenario.publish(seq++, pad);
      for (const [peer, connection] of slow) {
        maxBuffered = Math.max(maxBuffered, connection.socket.bufferedAmount);
        // Read again as soon as the server gave up, so the close frame behind the backlog
        // arrives within the server's grace period.
        if (!connection.isOpen && peer.socket.isPaused) peer.socket.resume();
      }
    };
    // The first events compile the publish path; memory is measured from after them.
    for (let i = 0; i < 10; i++) await step();
    const baseline = memory();
    let peak: Memory = baseline;
    let peakRss = baseline.rss;
    let cutoffSeq: number | null = null;
    let cutoffMs = 0;
    const started = performance.now();
    const sample = (): void => {
      const now = memory();
      if (now.used > peak.used) peak = now;
      peakRss = Math.max(peakRss, now.rss);
    };
    for (;;) {
      await step();
      if (cutoffSeq === null && slow.every(([, connection]) => !connection.isOpen)) {
        cutoffSeq = seq;
        cutoffMs = performance.now() - started;
      }
      if (seq % 10 === 0) sample();
      if (cutoffSeq !== null && seq >= cutoffSeq + AFTER_CUTOFF) break;
      assert.ok(seq * PAYLOAD_BYTES < GIVE_UP_BYTES, `no slow ${scenario.name} client was cut off after ${seq} events`);
    }
    sample();
    const total = seq;

    // Every healthy client got every event, once, in publish order.
    const expected = Array.from({ length: total }, (_, i) => i);
    await waitFor(() => received.every((seqs) => seqs.length >= total), {
      timeoutMs: 10_000,
      what: `the healthy ${scenario.name} clients to get all ${total} events`,
    });
    for (const seqs of received) assert.deepEqual(seqs, expected);

    // Every slow client was closed with its protocol's slow-consumer code, well short of everything.
    for (const [peer] of slow) {
      const closed = await peer.waitClose(5000);
      assert.equal(closed.code, 1013, `${scenario.name}: ${closed.code} ${closed.reason}`);
      assert.equal(closed.reason, 'Send buffer limit exceeded');
      assert.ok(peer.received < total, `a slow ${scenario.name} client got all ${total} events`);
    }
    await waitFor(() => slow.every(([, connection]) => registry.get(connection.id) === undefined), {
      what: 'the slow connections to leave the registry',
    });

    // Bytes queued in the process for a client never passed the limit by more than one
    // message, and memory stayed within those buffers plus noise while far more was published.
    const frameBound = PAYLOAD_BYTES + 1024;
    assert.ok(maxBuffered <= LIMIT + frameBound, `${maxBuffered} bytes queued for one client`);
    const bound = SLOW_CLIENTS * (LIMIT + 2 * frameBound) + SLACK;
    const growth = peak.used - baseline.used;
    const withoutLimit = SLOW_CLIENTS * AFTER_CUTOFF * PAYLOAD_BYTES;
    assert.ok(withoutLimit > bound, 'the test publishes more than the bound could hide');
    assert.ok(growth < bound, `memory grew ${mib(growth)} MiB (bound ${mib(bound)} MiB)`);

    const suite = `slow-consumer ${scenario.name}`;
    figure(suite, 'cutoff_ms', cutoffMs, 'ms');
    figure(suite, 'published_before_cutoff', mib((cutoffSeq ?? 0) * PAYLOAD_BYTES), 'MiB');
    figure(suite, 'events_total', total);
    figure(suite, 'max_queued_per_client', (maxBuffered / 1024).toFixed(1), 'KiB');
    figure(suite, 'peak_heap_external_growth', mib(growth), 'MiB');
    figure(suite, 'peak_rss_growth', mib(peakRss - baseline.rss), 'MiB');
  }

  it('jac: channel notifications', async () => {
    const channel = `firehose-${snowflake()}`;
    await run({
      name: 'jac',
      owns: (c) => c.protocol === 'jac',
      setup: () => Promise.resolve(),
      open: async () => (await openJac(app, { channel })).ws,
      publish: async (seq, pad) => {
        await expectStatus(app, 202, 'POST', '/admin/jac/notify', { channel_ids: [channel], data: { seq, pad } });
      },
      seqs: (frame) => [(JSON.parse(frame.toString('utf8')) as { seq: number }).seq],
    });
  });

  it('Fates: bot events, both eras', async () => {
    let bot = { id: '', token: '' };
    await run({
      name: 'fates',
      owns: (c) => c.protocol.startsWith('fates'),
      setup: async () => {
        bot = await newBot(app);
      },
      open: (i) => openFates(app, bot, { era: i % 2 === 0 ? 'v2' : 'flamepaw' }),
      publish: async (seq, pad) => {
        await expectStatus(app, 202, 'POST', `/admin/fates/bots/${bot.id}/events`, {
          m: { e: 0, seq },
          ctx: { pad },
        });
      },
      seqs: (frame) => fatesEvents(frame).map((event) => (event['m'] as { seq: number }).seq),
    });
  });

  it('Felix: guild updates', async () => {
    const guild = snowflake();
    let token = '';
    await run({
      name: 'felix',
      owns: (c) => c.protocol === 'felix',
      setup: async () => {
        token = (await createToken(app)).token;
      },
      open: () => openFelix(app, token, [guild]),
      publish: async (seq, pad) => {
        await expectStatus(app, 204, 'PUT', `/admin/felix/guilds/${guild}`, { seq, pad });
      },
      seqs: (frame) => {
        const message = JSON.parse(frame.toString('utf8')) as { code: number; data: { guildData: { seq: number } } };
        return message.code === 10002 ? [message.data.guildData.seq] : [];
      },
    });
  });

  it('hatsu: guild dispatches, json and zlib', async () => {
    let account = { userId: '', guildId: '', sessionId: '' };
    await run({
      name: 'hatsu',
      owns: (c) => c.protocol === 'hatsu',
      setup: async () => {
        account = await hatsuAccount(app);
      },
      open: (i, role) =>
        openHatsu(app, account.sessionId, { encoding: role === 'slow' && i % 2 === 1 ? 'zlib' : 'json' }),
      publish: async (seq, pad) => {
        await expectStatus(app, 202, 'POST', '/admin/hatsu/dispatch', {
          t: 'FIREHOSE',
          d: { seq, pad },
          to: { guild_id: account.guildId },
        });
      },
      seqs: (frame) => {
        const message = JSON.parse(frame.toString('utf8')) as { t: string; d: { seq: number } };
        return message.t === 'FIREHOSE' ? [message.d.seq] : [];
      },
    });
  });
});
