// Private redis-servers for the cluster scenarios (one server, or a Redis Cluster of three
// masters), so their command counters see only the benchmark's traffic.
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { cpuMs, freePort } from './proc.mjs';

const NO_DISK = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];

async function serve(args) {
  const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (c) => (out += c));
  while (!out.includes('Ready to accept connections')) {
    if (child.exitCode !== null) throw new Error(`redis-server exited: ${out}`);
    await Promise.race([once(child.stdout, 'data'), once(child, 'exit')]);
  }
  return {
    pid: child.pid,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGKILL');
      await once(child, 'exit');
    },
  };
}

/** Commands a server has processed (INFO stats), and its PUBLISH and SPUBLISH calls. */
async function countersOf(port) {
  const info = await command(port, 'INFO commandstats\r\nINFO stats\r\n');
  const calls = (name) => Number(new RegExp(`cmdstat_${name}:calls=(\\d+)`).exec(info)?.[1] ?? 0);
  const total = Number(/total_commands_processed:(\d+)/.exec(info)?.[1] ?? NaN);
  return { total, publish: calls('publish') + calls('spublish') };
}

export async function startRedis(port) {
  const server = await serve(['--port', String(port), ...NO_DISK]);
  return {
    url: `redis://127.0.0.1:${port}`,
    env: { REDIS_URL: `redis://127.0.0.1:${port}` },
    counters: async () => ({ ...(await countersOf(port)), cpuMs: cpuMs(server.pid) }),
    stop: () => server.stop(),
  };
}

/** A Redis Cluster of `masters` masters and no replicas, its slots spread by redis-cli. */
export async function startCluster(masters = 3) {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-cluster-'));
  const ports = [];
  for (let i = 0; i < masters; i++) ports.push(await freePort());
  const servers = await Promise.all(
    ports.map((port) =>
      serve([
        '--port',
        String(port),
        '--dir',
        dir,
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        join(dir, `nodes-${port}.conf`),
        ...NO_DISK,
      ]),
    ),
  );
  const stop = async () => {
    await Promise.all(servers.map((s) => s.stop()));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const nodes = ports.map((port) => `127.0.0.1:${port}`);
    await promisify(execFile)('redis-cli', [
      '--cluster',
      'create',
      ...nodes,
      '--cluster-replicas',
      '0',
      '--cluster-yes',
    ]);
    // Created is not yet agreed: wait until every node sees every slot served.
    const deadline = Date.now() + 20_000;
    for (const port of ports) {
      while (!(await command(port, 'CLUSTER INFO\r\n', 'cluster_state')).includes('cluster_state:ok')) {
        if (Date.now() > deadline) throw new Error('the benchmark cluster did not agree on its slots in 20 s');
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    return {
      env: { REDIS_CLUSTER_NODES: nodes.join(',') },
      masters,
      /** Summed over the masters: the cluster's work is the sum of its shards'. */
      async counters() {
        const each = await Promise.all(ports.map(countersOf));
        return {
          total: each.reduce((sum, c) => sum + c.total, 0),
          publish: each.reduce((sum, c) => sum + c.publish, 0),
          cpuMs: servers.reduce((sum, s) => sum + cpuMs(s.pid), 0),
        };
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Sends inline commands and resolves with the reply once it contains `until`. */
function command(port, text, until = 'total_commands_processed') {
  return new Promise((resolve, reject) => {
    const socket = new Socket();
    let data = '';
    socket.on('data', (c) => {
      data += c;
      if (data.includes(until) && /\r\n$/.test(data)) {
        socket.destroy();
        resolve(data);
      }
    });
    socket.on('error', reject);
    socket.connect(port, '127.0.0.1', () => socket.write(text));
  });
}
