// Holds `count` idle sockets to `url` for the idle-connections scenario, in its own
// process so no single process needs more file descriptors than the limit allows.
// Prints "ready <ms>" once every socket has its greeting, then waits to be killed.
import { openMany } from './clients.mjs';

const [url, count, concurrency] = process.argv.slice(2);
const start = performance.now();
const sockets = await openMany(Number(count), () => url, { concurrency: Number(concurrency) });
process.stdout.write(`ready ${(performance.now() - start).toFixed(1)}\n`);
process.on('SIGTERM', () => {
  for (const ws of sockets) ws.terminate();
  process.exit(0);
});
