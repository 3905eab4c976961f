import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from './ports.js';
import { waitFor } from './wait.js';

/**
 * Private Redis topologies for the engine's tests: a master with replicas watched by
 * Sentinels, and a Redis Cluster of three masters (with replicas for failover tests). Every
 * process is a `redis-server` of the test's own on a free loopback port, in a directory of its
 * own, started here and stopped by pid; nothing is written outside that directory.
 */

/** One redis-server process, started with `args`, ready once it says so. */
export class ServerProcess {
  private child: ChildProcess | null = null;

  constructor(
    readonly port: number,
    private readonly args: readonly string[],
  ) {}

  get address(): { host: string; port: number } {
    return { host: '127.0.0.1', port: this.port };
  }

  get running(): boolean {
    return this.child !== null && this.child.exitCode === null;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  async start(): Promise<void> {
    if (this.running) return;
    const child = spawn('redis-server', [...this.args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    let output = '';
    await new Promise<void>((resolve, reject) => {
      const onData = (chunk: Buffer): void => {
        output += chunk.toString();
        if (/Ready to accept connections|Sentinel ID is/.test(output)) resolve();
      };
      child.stdout?.on('data', onData);
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`redis-server exited (${code}): ${output.slice(-800)}`)));
    });
  }

  /** SIGKILL, as a crash: no shutdown, no save. */
  async kill(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null) return;
    child.kill('SIGKILL');
    await once(child, 'exit');
  }

  /** SIGSTOP / SIGCONT: a Redis that hangs instead of refusing. */
  pause(): void {
    this.child?.kill('SIGSTOP');
  }

  resume(): void {
    this.child?.kill('SIGCONT');
  }
}

const NO_DISK = ['--save', '', '--appendonly', 'no', '--protected-mode', 'no', '--bind', '127.0.0.1'];

/**
 * Whether `replicas` replicas have a write just made on the master. A replica reported
 * online after a diskless sync is sent no writes until its first acknowledgement (up to a
 * second later): a master killed in that window takes them with it, so a test's setup must
 * not count a replica before it streams. The probe key is one the master serves (on a
 * Cluster the first few names may belong to other masters), and expires by itself.
 */
async function streaming(master: { host: string; port: number }, replicas: number): Promise<boolean> {
  for (let i = 0; ; i++) {
    try {
      await command(master, 'SET', `gatehouse-test:replication-probe:${i}`, '1', 'PX', 5000);
      break;
    } catch (err) {
      if (!/MOVED/.test(String(err)) || i >= 64) throw err;
    }
  }
  return (await command<number>(master, 'WAIT', replicas, 1000)) >= replicas;
}

async function command<T>(address: { host: string; port: number }, ...args: (string | number)[]): Promise<T> {
  const client = new Redis({ ...address, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return (await client.call(...(args.map(String) as [string, ...string[]]))) as T;
  } finally {
    client.disconnect();
  }
}

// ---- Sentinel --------------------------------------------------------------------------

export interface SentinelSetOptions {
  replicas?: number;
  sentinels?: number;
  /** How long a master may not answer before the sentinels call it down. */
  downAfterMs?: number;
}

/** A master, its replicas and the sentinels that watch them, under one master name. */
export class SentinelSet {
  readonly name = 'gatehouse-test';

  private constructor(
    private readonly dir: string,
    readonly servers: ServerProcess[],
    readonly sentinels: ServerProcess[],
  ) {}

  static async start(options: SentinelSetOptions = {}): Promise<SentinelSet> {
    const { replicas = 1, sentinels = 3, downAfterMs = 1000 } = options;
    const dir = await mkdtemp(join(tmpdir(), 'gatehouse-sentinel-'));
    const masterPort = await freePort();
    const servers = [new ServerProcess(masterPort, ['--port', String(masterPort), '--dir', dir, ...NO_DISK])];
    for (let i = 0; i < replicas; i++) {
      const port = await freePort();
      servers.push(
        new ServerProcess(port, [
          '--port',
          String(port),
          '--dir',
          dir,
          '--replicaof',
          '127.0.0.1',
          String(masterPort),
          '--replica-announce-ip',
          '127.0.0.1',
          ...NO_DISK,
        ]),
      );
    }
    const watchers: ServerProcess[] = [];
    for (let i = 0; i < sentinels; i++) {
      const port = await freePort();
      const conf = join(dir, `sentinel-${port}.conf`);
      await writeFile(
        conf,
        [
          `port ${port}`,
          'bind 127.0.0.1',
          `dir ${dir}`,
          'sentinel resolve-hostnames no',
          `sentinel monitor gatehouse-test 127.0.0.1 ${masterPort} ${Math.floor(sentinels / 2) + 1}`,
          `sentinel down-after-milliseconds gatehouse-test ${downAfterMs}`,
          'sentinel failover-timeout gatehouse-test 5000',
          'sentinel parallel-syncs gatehouse-test 1',
          '',
        ].join('\n'),
      );
      watchers.push(new ServerProcess(port, [conf, '--sentinel']));
    }
    const set = new SentinelSet(dir, servers, watchers);
    try {
      for (const server of servers) await server.start();
      for (const sentinel of watchers) await sentinel.start();
      await set.waitSettled(masterPort);
    } catch (err) {
      await set.stop();
      throw err;
    }
    return set;
  }

  /** `host:port,host:port` of the sentinels, as `REDIS_SENTINELS` takes them. */
  get sentinelList(): string {
    return this.sentinels.map((s) => `127.0.0.1:${s.port}`).join(',');
  }

  /** The master the sentinels name now. */
  async masterPort(): Promise<number> {
    for (const sentinel of this.sentinels) {
      if (!sentinel.running) continue;
      try {
        const [, port] = await command<[string, string]>(
          sentinel.address,
          'SENTINEL',
          'get-master-addr-by-name',
          this.name,
        );
        return Number(port);
      } catch {
        // try the next sentinel
      }
    }
    throw new Error('no sentinel answers');
  }

  server(port: number): ServerProcess {
    const found = this.servers.find((s) => s.port === port);
    if (!found) throw new Error(`no server on ${port}`);
    return found;
  }

  /**
   * Kills the master and waits until the sentinels have promoted a replica and it accepts
   * writes; resolves with the new master's port.
   */
  async failover(): Promise<number> {
    const old = await this.masterPort();
    await this.server(old).kill();
    const promoted = await waitFor(
      async () => {
        const port = await this.masterPort();
        if (port === old) return undefined;
        const role = await command<unknown[]>({ host: '127.0.0.1', port }, 'ROLE');
        return role[0] === 'master' ? port : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 100, what: 'the sentinels to promote a replica' },
    );
    return promoted;
  }

  /** Every replica has synced with the master and every sentinel knows them all. */
  private async waitSettled(masterPort: number): Promise<void> {
    const replicas = this.servers.length - 1;
    await waitFor(
      async () => {
        const info = await command<string>({ host: '127.0.0.1', port: masterPort }, 'INFO', 'replication');
        const online = (info.match(/state=online/g) ?? []).length;
        return online === replicas && (await streaming({ host: '127.0.0.1', port: masterPort }, replicas));
      },
      { timeoutMs: 20_000, intervalMs: 50, what: 'the replicas to sync' },
    );
    await waitFor(
      async () => {
        for (const sentinel of this.sentinels) {
          const seen = await command<unknown[]>(sentinel.address, 'SENTINEL', 'replicas', this.name);
          const others = await command<unknown[]>(sentinel.address, 'SENTINEL', 'sentinels', this.name);
          if (seen.length !== replicas || others.length !== this.sentinels.length - 1) return false;
        }
        return true;
      },
      { timeoutMs: 30_000, intervalMs: 100, what: 'the sentinels to know every replica and each other' },
    );
  }

  async stop(): Promise<void> {
    await Promise.all([...this.sentinels, ...this.servers].map((s) => s.kill()));
    await rm(this.dir, { recursive: true, force: true });
  }
}

// ---- Cluster ---------------------------------------------------------------------------

export interface ClusterSetOptions {
  masters?: number;
  replicasPerMaster?: number;
  /** How long a master may not answer before the cluster fails it over. */
  nodeTimeoutMs?: number;
}

/** A Redis Cluster: masters sharing the 16384 slots, optionally with a replica each. */
export class ClusterSet {
  private constructor(
    private readonly dir: string,
    readonly nodes: ServerProcess[],
    private readonly replicasPerMaster: number,
  ) {}

  static async start(options: ClusterSetOptions = {}): Promise<ClusterSet> {
    const { masters = 3, replicasPerMaster = 0, nodeTimeoutMs = 1000 } = options;
    const dir = await mkdtemp(join(tmpdir(), 'gatehouse-cluster-'));
    const nodes: ServerProcess[] = [];
    for (let i = 0; i < masters * (1 + replicasPerMaster); i++) {
      const port = await freePort();
      nodes.push(
        new ServerProcess(port, [
          '--port',
          String(port),
          '--dir',
          dir,
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          join(dir, `nodes-${port}.conf`),
          '--cluster-node-timeout',
          String(nodeTimeoutMs),
          '--cluster-announce-ip',
          '127.0.0.1',
          ...NO_DISK,
        ]),
      );
    }
    const set = new ClusterSet(dir, nodes, replicasPerMaster);
    try {
      await Promise.all(nodes.map((node) => node.start()));
      await run('redis-cli', [
        '--cluster',
        'create',
        ...nodes.map((node) => `127.0.0.1:${node.port}`),
        '--cluster-replicas',
        String(replicasPerMaster),
        '--cluster-yes',
      ]);
      await set.waitHealthy();
      await set.waitReplicas();
    } catch (err) {
      await set.stop();
      throw err;
    }
    return set;
  }

  /** Every master has its replicas connected and in sync. */
  private async waitReplicas(): Promise<void> {
    if (this.replicasPerMaster === 0) return;
    await waitFor(
      async () => {
        const masters = await this.masters();
        for (const port of masters) {
          const info = await command<string>({ host: '127.0.0.1', port }, 'INFO', 'replication');
          if ((info.match(/state=online/g) ?? []).length < this.replicasPerMaster) return false;
          if (!(await streaming({ host: '127.0.0.1', port }, this.replicasPerMaster))) return false;
        }
        return masters.length > 0;
      },
      { timeoutMs: 30_000, intervalMs: 100, what: 'every master to have its replicas in sync' },
    );
  }

  /** `host:port,...` of every node, as `REDIS_CLUSTER_NODES` takes them. */
  get nodeList(): string {
    return this.nodes.map((n) => `127.0.0.1:${n.port}`).join(',');
  }

  /** The ports of the nodes that are masters now. */
  async masters(): Promise<number[]> {
    const ports: number[] = [];
    for (const node of this.nodes) {
      if (!node.running) continue;
      const role = await command<unknown[]>(node.address, 'ROLE').catch(() => null);
      if (role?.[0] === 'master') ports.push(node.port);
    }
    return ports;
  }

  /** The port of the master that serves `key`'s slot now. */
  async ownerOf(key: string): Promise<number> {
    const node = this.nodes.find((n) => n.running);
    if (!node) throw new Error('no node is running');
    const slot = await command<number>(node.address, 'CLUSTER', 'KEYSLOT', key);
    const ranges = await command<[number, number, [string, number, ...unknown[]], ...unknown[]][]>(
      node.address,
      'CLUSTER',
      'SLOTS',
    );
    const range = ranges.find(([from, to]) => slot >= from && slot <= to);
    if (!range) throw new Error(`no master serves slot ${slot}`);
    return Number(range[2][1]);
  }

  /**
   * Moves the slot of `key` from its master to another one, as `redis-cli --cluster reshard`
   * does: importing and migrating marks, the slot's keys migrated, then every master told the
   * new owner. Resolves with the new owner's port.
   */
  async moveSlotOf(key: string): Promise<number> {
    const from = await this.ownerOf(key);
    const to = (await this.masters()).find((port) => port !== from);
    if (to === undefined) throw new Error('no other master to move the slot to');
    const at = (port: number) => ({ host: '127.0.0.1', port });
    const slot = await command<number>(at(from), 'CLUSTER', 'KEYSLOT', key);
    const fromId = await command<string>(at(from), 'CLUSTER', 'MYID');
    const toId = await command<string>(at(to), 'CLUSTER', 'MYID');
    await command(at(to), 'CLUSTER', 'SETSLOT', slot, 'IMPORTING', fromId);
    await command(at(from), 'CLUSTER', 'SETSLOT', slot, 'MIGRATING', toId);
    for (;;) {
      const keys = await command<string[]>(at(from), 'CLUSTER', 'GETKEYSINSLOT', slot, 100);
      if (keys.length === 0) break;
      await command(at(from), 'MIGRATE', '127.0.0.1', to, '', 0, 5000, 'KEYS', ...keys);
    }
    for (const port of [to, from, ...(await this.masters()).filter((p) => p !== from && p !== to)]) {
      await command(at(port), 'CLUSTER', 'SETSLOT', slot, 'NODE', toId);
    }
    await waitFor(async () => (await this.ownerOf(key)) === to, { what: 'every node to agree on the new owner' });
    return to;
  }

  /**
   * Kills a master that has a replica (`victim`, or any) and waits until the cluster has
   * promoted the replica and every slot is served again; resolves with the killed port.
   */
  async failover(victim?: number): Promise<number> {
    let chosen = victim;
    if (chosen === undefined) {
      for (const port of await this.masters()) {
        const info = await command<string>({ host: '127.0.0.1', port }, 'INFO', 'replication');
        if (/state=online/.test(info)) chosen = port;
      }
    }
    if (chosen === undefined) throw new Error('no master with a replica to fail over');
    const count = (await this.masters()).length;
    await this.nodes.find((n) => n.port === chosen)?.kill();
    // Until the others notice, they still call the cluster healthy: wait for the promotion.
    await waitFor(async () => (await this.masters()).length === count, {
      timeoutMs: 30_000,
      intervalMs: 100,
      what: 'a replica to take over the killed master',
    });
    await this.waitHealthy();
    return chosen;
  }

  /** Every live node says the cluster is ok and every slot is covered. */
  async waitHealthy(): Promise<void> {
    await waitFor(
      async () => {
        for (const node of this.nodes) {
          if (!node.running) continue;
          const info = await command<string>(node.address, 'CLUSTER', 'INFO');
          if (!/cluster_state:ok/.test(info) || !/cluster_slots_ok:16384/.test(info)) return false;
        }
        return true;
      },
      { timeoutMs: 30_000, intervalMs: 100, what: 'the cluster to be healthy' },
    );
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.kill()));
    await rm(this.dir, { recursive: true, force: true });
  }
}

async function run(command: string, args: string[]): Promise<string> {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`${command} ${args.join(' ')} exited ${code}: ${output.slice(-800)}`);
  return output;
}
