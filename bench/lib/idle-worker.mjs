// Holds `count` idle sockets to a server for the idle-connections scenario, in its own
// process so no single process needs more file descriptors than the limit allows.
// Prints "ready <ms>" once every socket has its greeting, then waits to be killed.
import { DRIVERS, openMany } from './drivers.mjs';

const [port, count, concurrency, kind = 'ws'] = process.argv.slice(2);
const driver = DRIVERS[kind];
const server = { port: Number(port) };
const start = performance.now();
const sockets = await openMany(driver, Number(count), {
  place: () => server,
  channel: () => null,
  concurrency: Number(concurrency),
});
process.stdout.write(`ready ${(performance.now() - start).toFixed(1)}\n`);
process.on('SIGTERM', () => {
  void driver.closeAll(sockets);
  process.exit(0);
});
