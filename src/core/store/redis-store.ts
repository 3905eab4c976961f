import { EngineUnavailableError } from '../errors/engine-unavailable.error.js';
import type { RedisConnections } from '../engine/redis-connections.js';
import { Store, type WindowHit } from './store.js';

// INCRBY and an expiry set only when the key has none: the window starts with its
// first hit and always ends, even if a client keeps hitting it.
const HIT_SCRIPT = `
local used = redis.call('INCRBY', KEYS[1], ARGV[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  ttl = tonumber(ARGV[2])
end
return {used, ttl}
`;

/** The Redis store: shared by every instance and kept across restarts. */
export class RedisStore extends Store {
  constructor(private readonly redis: RedisConnections) {
    super();
  }

  get(key: string): Promise<string | null> {
    return this.run('get', () => this.redis.command.get(this.k(key)));
  }

  async set(key: string, value: string, ttlMs?: number): Promise<void> {
    await this.run('set', () =>
      ttlMs === undefined
        ? this.redis.command.set(this.k(key), value)
        : this.redis.command.set(this.k(key), value, 'PX', ttlMs),
    );
  }

  async delete(key: string): Promise<boolean> {
    const removed = await this.run('delete', () => this.redis.command.del(this.k(key)));
    return removed > 0;
  }

  async append(key: string, value: string, limit: number): Promise<number> {
    const results = await this.run('append', () =>
      this.redis.command.multi().rpush(this.k(key), value).ltrim(this.k(key), -limit, -1).llen(this.k(key)).exec(),
    );
    const length = results?.[2]?.[1];
    return typeof length === 'number' ? length : 0;
  }

  range(key: string): Promise<string[]> {
    return this.run('range', () => this.redis.command.lrange(this.k(key), 0, -1));
  }

  async hit(key: string, cost: number, windowMs: number): Promise<WindowHit> {
    const [used, ttl] = (await this.run('hit', () =>
      this.redis.command.eval(HIT_SCRIPT, 1, this.k(key), cost, windowMs),
    )) as [number, number];
    return { used, resetInMs: ttl };
  }

  async peek(key: string): Promise<WindowHit> {
    const [used, ttl] = await this.run('peek', () =>
      Promise.all([this.redis.command.get(this.k(key)), this.redis.command.pttl(this.k(key))]),
    );
    if (used === null || ttl < 0) return { used: 0, resetInMs: 0 };
    return { used: Number(used), resetInMs: ttl };
  }

  private k(key: string): string {
    return this.redis.key('store', key);
  }

  private async run<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw new EngineUnavailableError(operation, err);
    }
  }
}
