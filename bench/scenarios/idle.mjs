// Scenario 2: many idle connections. Server RSS per connection and accepted
// connections per second, the load spread over several generator processes.
import { once } from 'node:events';
import { rssBytes, spawnNode } from '../lib/proc.mjs';

const PER_WORKER = 5000;

export async function idle(server, { connections }) {
  if (global.gc) global.gc();
  const rss0 = rssBytes(server.pid);
  const workers = [];
  const start = performance.now();
  for (let left = connections; left > 0; left -= PER_WORKER) {
    const count = Math.min(PER_WORKER, left);
    const child = spawnNode(
      ['bench/lib/idle-worker.mjs', String(server.port), String(count), '100', server.driver ?? 'ws'],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    workers.push(child);
  }
  await Promise.all(
    workers.map(async (child) => {
      let out = '';
      child.stdout.on('data', (c) => (out += c));
      while (!out.includes('ready')) {
        if (child.exitCode !== null) throw new Error('an idle worker died');
        await Promise.race([once(child.stdout, 'data'), once(child, 'exit')]);
      }
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  // Let the server's allocator settle before reading RSS.
  await new Promise((r) => setTimeout(r, 1000));
  const rss1 = rssBytes(server.pid);
  for (const child of workers) child.kill('SIGTERM');
  await Promise.all(workers.map((child) => (child.exitCode === null ? once(child, 'exit') : null)));
  return { rssPerConn: (rss1 - rss0) / connections, acceptRate: connections / seconds };
}
