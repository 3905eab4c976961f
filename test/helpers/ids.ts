/** A UUID v4, as the gateway hands out for event ids and Felix token ids. */
export const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

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
