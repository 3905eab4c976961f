import type { RedisConnections } from '../engine/redis-connections.js';

/**
 * Appends a bus frame to its channel's log and publishes it, in one step, so that what a
 * subscriber hears and what the log holds never disagree.
 *
 * KEYS[1] the channel's log (a stream), KEYS[2] its counter (a hash: `n`, the last position,
 * and `e`, the log's epoch: Redis' clock in ms when the log began). Both carry the channel's
 * hash tag, so on a Cluster they live on the shard that owns the channel.
 * ARGV: channel, frame, max length, time to live (ms), PUBLISH or SPUBLISH.
 *
 * The position and the epoch are written into the frame's JSON header (`"e"`, `"p"`), where
 * a build that does not know them ignores them. The entry's id is `<epoch>-<position>`.
 */
const APPEND = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = redis.call('HINCRBY', KEYS[2], 'n', 1)
local epoch = redis.call('HGET', KEYS[2], 'e')
if n == 1 or not epoch then
  epoch = tostring(now)
  redis.call('HSET', KEYS[2], 'e', epoch, 'n', 1)
  n = 1
  redis.call('DEL', KEYS[1])
end
local frame = ARGV[2]
local len = struct.unpack('>I4', frame)
local head = string.sub(frame, 5, 4 + len)
head = string.sub(head, 1, -2) .. ',"e":' .. epoch .. ',"p":' .. n .. '}'
local out = struct.pack('>I4', #head) .. head .. string.sub(frame, 5 + len)
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], epoch .. '-' .. n, 't', now, 'f', out)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
redis.call(ARGV[5], ARGV[1], out)
return { epoch, n }
`;

/**
 * Reads a channel's log from a position on: `{epoch, frame, frame, ...}`, the frames no
 * older than the age limit. When the log is not the epoch the reader knows (it began
 * again: Redis lost it, or it expired and a new one started), from its first entry.
 * An empty reply: there is no log.
 *
 * KEYS[1] the log, KEYS[2] its counter. ARGV: known epoch, first position wanted, how many
 * at most, age limit (ms).
 */
const READ = `
local epoch = redis.call('HGET', KEYS[2], 'e')
if not epoch then return {} end
local from = ARGV[2]
if epoch ~= ARGV[1] then from = '1' end
local t = redis.call('TIME')
local oldest = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - tonumber(ARGV[4])
local out = { epoch }
for _, entry in ipairs(redis.call('XRANGE', KEYS[1], epoch .. '-' .. from, '+', 'COUNT', ARGV[3])) do
  local fields = entry[2]
  local at, frame
  for i = 1, #fields, 2 do
    if fields[i] == 't' then at = tonumber(fields[i + 1]) elseif fields[i] == 'f' then frame = fields[i + 1] end
  end
  if frame and at and at >= oldest then out[#out + 1] = frame end
end
return out
`;

export interface BusLogOptions {
  /** Entries kept per channel, about (trimmed by whole blocks). */
  readonly maxLength: number;
  /** How long an entry may be repaired from, and how long a quiet channel's log is kept. */
  readonly ttlMs: number;
}

/** What a read found: the log's epoch and its frames from the position asked on, or null when there is no log. */
export type LogRead = { readonly epoch: string; readonly frames: readonly Buffer[] } | null;

interface LogScripts {
  gatehouseBusAppend(log: string, counter: string, ...args: (string | Buffer | number)[]): Promise<[string, number]>;
  gatehouseBusReadBuffer(log: string, counter: string, ...args: (string | number)[]): Promise<Buffer[]>;
}

/**
 * The bus's log in Redis: for every channel, a capped stream of the frames published on it,
 * each with its position, so an instance that missed some (its subscription dropped, a shard
 * failed over) reads them back instead of losing them. Scripts run where the channel lives.
 */
export class RedisBusLog {
  private readonly scripts: LogScripts;
  private readonly publishCommand: string;

  constructor(
    private readonly redis: RedisConnections,
    private readonly options: BusLogOptions,
  ) {
    const command = redis.command;
    command.defineCommand('gatehouseBusAppend', { numberOfKeys: 2, lua: APPEND });
    command.defineCommand('gatehouseBusRead', { numberOfKeys: 2, lua: READ });
    this.scripts = command as unknown as LogScripts;
    this.publishCommand = redis.sharded ? 'SPUBLISH' : 'PUBLISH';
  }

  /** Logs and publishes one frame on `channel`; resolves with its place in the log. */
  async append(channel: string, frame: Buffer): Promise<{ epoch: string; position: number }> {
    const [log, counter] = this.keysOf(channel);
    const [epoch, position] = await this.scripts.gatehouseBusAppend(
      log,
      counter,
      channel,
      frame,
      this.options.maxLength,
      this.options.ttlMs,
      this.publishCommand,
    );
    return { epoch, position };
  }

  /** The frames of `channel` from `position` on in log `epoch` (all of it when the log is another). */
  async read(channel: string, epoch: string, position: number): Promise<LogRead> {
    const [log, counter] = this.keysOf(channel);
    const reply = await this.scripts.gatehouseBusReadBuffer(
      log,
      counter,
      epoch,
      position,
      this.options.maxLength,
      this.options.ttlMs,
    );
    const [head, ...frames] = reply;
    return head === undefined ? null : { epoch: head.toString('utf8'), frames };
  }

  /** The log's keys beside the channel `<prefix>bus:{<tag>}`: `<prefix>bus-log:{<tag>}` and `...bus-log-n:{<tag>}`. */
  private keysOf(channel: string): [string, string] {
    const tag = channel.slice(channel.indexOf('{'));
    return [this.redis.key(`bus-log:${tag}`), this.redis.key(`bus-log-n:${tag}`)];
  }
}
