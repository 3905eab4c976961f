/**
 * How deep client JSON may nest. `JSON.parse` takes any depth, but what protocols do with
 * the value afterwards does not: `JSON.stringify` (relaying jac `data`, echoing hatsu's
 * `HEARTBEAT.s`) and class-transformer (walker contexts) recurse, and overflow the stack
 * a few thousand levels down, turning a valid-looking message into an internal error.
 * Real messages nest a handful of levels; the original servers' Python parsers stopped
 * near 1000.
 */
export const MAX_JSON_DEPTH = 512;

/**
 * True when a parsed JSON value nests arrays and objects more than `max` levels deep (a
 * scalar is 0 levels, `[]` and `{}` are 1). Iterative, so it is safe at any depth.
 */
export function jsonDeeperThan(value: unknown, max: number = MAX_JSON_DEPTH): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const stack: [object, number][] = [[value, 1]];
  for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
    const [node, depth] = next;
    if (depth > max) return true;
    const children: unknown[] = Array.isArray(node) ? node : Object.values(node);
    for (const child of children) {
      if (typeof child === 'object' && child !== null) stack.push([child, depth + 1]);
    }
  }
  return false;
}
