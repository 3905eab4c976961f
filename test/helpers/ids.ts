let lastId = BigInt(Date.now()) * 1000n + BigInt(process.pid % 1000);

/**
 * A snowflake (16 decimal digits) no other test uses: ids of bots, servers, guilds and users
 * never collide, so neither do their budgets, histories and documents. Test files run in
 * processes of their own; the process id keeps two started in the same millisecond apart.
 */
export function snowflake(): string {
  lastId += 1000n;
  return lastId.toString();
}
