// A private redis-server for the cluster scenario, so its command counters see only
// the benchmark's traffic.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { Socket } from 'node:net';

export async function startRedis(port) {
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  child.stdout.on('data', (c) => (out += c));
  while (!out.includes('Ready to accept connections')) {
    if (child.exitCode !== null) throw new Error(`redis-server exited: ${out}`);
    await Promise.race([once(child.stdout, 'data'), once(child, 'exit')]);
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    /** Total commands Redis has processed (INFO stats), and PUBLISH calls. */
    async counters() {
      const info = await command(port, 'INFO commandstats\r\nINFO stats\r\n');
      const total = Number(/total_commands_processed:(\d+)/.exec(info)?.[1] ?? NaN);
      const publish = Number(/cmdstat_publish:calls=(\d+)/.exec(info)?.[1] ?? 0);
      return { total, publish };
    },
    async stop() {
      child.kill('SIGKILL');
      await once(child, 'exit');
    },
  };
}

function command(port, text) {
  return new Promise((resolve, reject) => {
    const socket = new Socket();
    let data = '';
    socket.on('data', (c) => {
      data += c;
      if ((data.match(/\r\n\r\n|\r\n$/g) ?? []).length && data.includes('total_commands_processed')) {
        socket.destroy();
        resolve(data);
      }
    });
    socket.on('error', reject);
    socket.connect(port, '127.0.0.1', () => socket.write(text));
  });
}
