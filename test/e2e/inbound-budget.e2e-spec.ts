import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { createToken } from '../helpers/felix-client.js';
import { figure } from '../helpers/figure.js';
import { spawnGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { connectBounded, type Closed, type WsTestClient } from '../helpers/ws-client.js';

/** The bound no flood may push another client's ping round trip past. */
const PING_BOUND_MS = 250;
/** Pings measured during each flood: their 99th percentile is the largest but one. */
const PINGS = 100;
/** Each flood is sent this many times over, on fresh sockets, while the pings go on. */
const ROUNDS = 3;

/** The frame limits the gateway runs with by default (README, docs/protocols/*.md). */
const LIMIT = { jac: 131_072, fates: 4096, felix: 65_536, hatsu: 16_384 };

let unique = 0;

/**
 * The costliest JSON object of at most `size` bytes: as many distinct keys as fit (object
 * members are what `JSON.parse` pays most for). Every frame's names are new, so no frame is
 * cheaper for following another.
 */
function costly(size: number): Buffer {
  const members: string[] = [];
  let length = 2;
  for (;;) {
    const member = `"${(unique++).toString(36)}":0`;
    if (length + member.length + 1 > size) break;
    members.push(member);
    length += member.length + 1;
  }
  const frame = Buffer.from(`{${members.join(',')}}`);
  assert.ok(frame.length <= size, `${frame.length} > ${size}`);
  return frame;
}

/**
 * The other client, on a thread of its own: the flood is written from this test's event loop,
 * and a prober sharing it would measure the test's own sends. It connects to jac, then on each
 * `start` message pings `PINGS` times, one every 5 ms, and answers with the round trips.
 */
const PROBER = `
const { parentPort, workerData } = require('node:worker_threads');
const WebSocket = require('ws');
const ws = new WebSocket(workerData.url, { perMessageDeflate: false });
ws.once('message', () => parentPort.postMessage('ready'));
const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
parentPort.on('message', async (count) => {
  const times = [];
  while (times.length < count) {
    const started = performance.now();
    await new Promise((resolve) => { ws.once('pong', resolve); ws.ping(); });
    times.push(performance.now() - started);
    await pause(5);
  }
  parentPort.postMessage(times);
});
`;

class Prober {
  private constructor(private readonly worker: Worker) {}

  static async start(url: string): Promise<Prober> {
    const worker = new Worker(PROBER, { eval: true, workerData: { url } });
    const [first] = (await once(worker, 'message')) as [unknown];
    assert.equal(first, 'ready');
    return new Prober(worker);
  }

  /** Pings `PINGS` times while `flood` runs; the round trips, sorted. */
  async during(flood: () => Promise<void>): Promise<number[]> {
    const answer = once(this.worker, 'message');
    this.worker.postMessage(PINGS);
    await flood();
    const [times] = (await answer) as [number[]];
    return times.sort((a, b) => a - b);
  }

  stop(): Promise<number> {
    return this.worker.terminate();
  }
}

function p99(sorted: number[]): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.99) - 1)] as number;
}

/** Sends every frame at once (text frames) and resolves with the close the server sent (within 10 s). */
async function flood(client: WsTestClient, frames: Buffer[]): Promise<Closed> {
  for (const frame of frames) client.socket.send(frame, { binary: false });
  let timer: NodeJS.Timeout | undefined;
  const never = new Promise<Closed>((_, reject) => {
    timer = setTimeout(() => reject(new Error('the flooding socket was never closed')), 10_000);
  });
  try {
    return await Promise.race([client.closed, never]);
  } finally {
    clearTimeout(timer);
    client.terminate();
  }
}

describe('inbound budget: a flood of the costliest frames allowed', () => {
  let gw: GatewayProcess;
  let prober: Prober;
  let felixToken: string;

  before(async () => {
    // The gateway in a process of its own, with its default limits: the flood is what it measures.
    gw = await spawnGateway({});
    felixToken = (await createToken(gw)).token;
    prober = await Prober.start(gw.ws('/websocket'));
  });
  after(async () => {
    await prober?.stop();
    gw?.child.kill('SIGKILL');
    await gw?.exited;
  });

  async function measure(name: string, run: () => Promise<Closed[]>, expected: number): Promise<void> {
    const closes: Closed[] = [];
    let closedMs = 0;
    const started = performance.now();
    const times = await prober.during(async () => {
      for (let round = 0; round < ROUNDS; round++) closes.push(...(await run()));
      closedMs = (performance.now() - started) / ROUNDS;
    });
    figure('inbound', `${name} ping p99`, p99(times), 'ms');
    figure('inbound', `${name} ping max`, times[times.length - 1] as number, 'ms');
    figure('inbound', `${name} flood sent until every flooder was closed (per round)`, closedMs, 'ms');
    for (const close of closes) assert.equal(close.code, expected, `${name}: ${close.code} ${close.reason}`);
    assert.ok(p99(times) < PING_BOUND_MS, `${name}: ping p99 ${p99(times).toFixed(1)} ms (${times.join(', ')})`);
  }

  it('jac: a socket sending frames of the largest size, all members, is cut off by the byte budget (1008)', async () => {
    const frames = Array.from({ length: 8 }, () => costly(LIMIT.jac));
    await measure('jac', async () => [await flood(await connectBounded(gw.ws('/websocket')), frames)], 1008);
  });

  it('Fates: 20 unidentified sockets flooding 4 KiB frames are closed on the first (4004)', async () => {
    await measure(
      'fates',
      async () => {
        const sockets = await Promise.all(Array.from({ length: 20 }, () => connectBounded(gw.ws('/api/ws'))));
        await Promise.all(sockets.map((socket) => socket.next()));
        const frames = sockets.map(() => Array.from({ length: 50 }, () => costly(LIMIT.fates)));
        return Promise.all(sockets.map((socket, i) => flood(socket, frames[i] as Buffer[])));
      },
      4004,
    );
  });

  it('Felix: 64 KiB frames from an authenticated socket are cut off by the budget (1008)', async () => {
    const frames = Array.from({ length: 40 }, () => costly(LIMIT.felix));
    await measure(
      'felix',
      async () => {
        const socket = await connectBounded(gw.ws('/felix'), { headers: { Authorization: felixToken } });
        return [await flood(socket, frames)];
      },
      1008,
    );
  });

  it('hatsu: 20 sockets, each identifying with the largest frame allowed, are closed (4002)', async () => {
    await measure(
      'hatsu',
      async () => {
        const sockets = await Promise.all(Array.from({ length: 20 }, () => connectBounded(gw.ws('/hatsu'))));
        const frames = sockets.map(() => costly(LIMIT.hatsu));
        return Promise.all(sockets.map((socket, i) => flood(socket, [frames[i] as Buffer])));
      },
      4002,
    );
  });

  it('closes a frame over a protocol frame limit with 1009, hatsu included', async () => {
    const socket = await connectBounded(gw.ws('/hatsu'));
    socket.socket.send(Buffer.alloc(LIMIT.hatsu + 1, 0x20), { binary: false });
    assert.equal((await socket.closed).code, 1009);
  });
});
