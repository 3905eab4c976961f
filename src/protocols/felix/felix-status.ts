import type { HeartbeatAckData } from './felix.codec.js';

/** What `PUT /admin/felix/status` stored: the bot's last report and when it arrived. */
export interface StoredStatus {
  shards: Record<string, unknown>[];
  guildsCount: number;
  memoryUsage?: number;
  uptime?: number;
  /** Epoch ms at which the report was stored; `uptime` advances from here. */
  reportedAt: number;
}

/** The gateway's own figures, for whatever the bot did not report. */
export interface ProcessFigures {
  /** Heap used, in MB with two decimals (the unit the original sent). */
  memoryUsageMb: number;
  uptimeMs: number;
}

export function processFigures(): ProcessFigures {
  return {
    memoryUsageMb: Math.round((process.memoryUsage().heapUsed / 1024 / 1024) * 100) / 100,
    uptimeMs: Math.round(process.uptime() * 1000),
  };
}

/**
 * Every shard carries `ping`. The document says Eris's `latency` getter "is replaced by
 * `ping`", so a reported `latency` becomes `ping`; a shard with neither gets `ping: null`
 * (what the original sent for an unmeasured shard, `Infinity` serialised). Other fields pass
 * through untouched.
 */
export function normaliseShard(shard: Record<string, unknown>): Record<string, unknown> {
  if ('ping' in shard) return shard;
  const { latency, ...rest } = shard;
  return { ...rest, ping: typeof latency === 'number' && Number.isFinite(latency) ? latency : null };
}

/** The 10001 data for a heartbeat received at `receivedAt`. */
export function ackData(status: StoredStatus | null, receivedAt: number, own: ProcessFigures): HeartbeatAckData {
  const elapsed = status ? Math.max(0, receivedAt - status.reportedAt) : 0;
  return {
    receivedAt,
    shards: status?.shards ?? [],
    guildsCount: status?.guildsCount ?? 0,
    memoryUsage: status?.memoryUsage ?? own.memoryUsageMb,
    uptime: status?.uptime !== undefined ? status.uptime + elapsed : own.uptimeMs,
  };
}
