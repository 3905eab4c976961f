import { getHeapStatistics } from 'node:v8';
import { isJsonObject } from '../../core/json.js';
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

const finite = (value: unknown): value is number => typeof value === 'number' && Number.isFinite(value);

/**
 * A stored or pushed status, or null when the text is not one `report` wrote (a store
 * written by another build, a damaged key): a heartbeat must never serialise garbage.
 */
export function parseStoredStatus(text: string): StoredStatus | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  return checkStoredStatus(value);
}

/** A status report as parsed JSON, or null when it is not one. */
export function checkStoredStatus(value: unknown): StoredStatus | null {
  if (!isJsonObject(value)) return null;
  const { shards, guildsCount, memoryUsage, uptime, reportedAt } = value;
  if (!Array.isArray(shards) || !shards.every(isJsonObject)) return null;
  if (!finite(guildsCount) || !finite(reportedAt)) return null;
  if ((memoryUsage !== undefined && !finite(memoryUsage)) || (uptime !== undefined && !finite(uptime))) return null;
  const status: StoredStatus = { shards, guildsCount, reportedAt };
  if (memoryUsage !== undefined) status.memoryUsage = memoryUsage;
  if (uptime !== undefined) status.uptime = uptime;
  return status;
}

/** The gateway's own figures, for whatever the bot did not report. */
export interface ProcessFigures {
  /** Heap used, in MB with two decimals (the unit the original sent). */
  memoryUsageMb: number;
  uptimeMs: number;
}

/**
 * Read on every heartbeat, so from V8's heap statistics (a fraction of a microsecond):
 * `process.memoryUsage()` gives the same `heapUsed` but also reads the resident set size
 * from the kernel, which made it most of a heartbeat's cost.
 */
export function processFigures(): ProcessFigures {
  return {
    memoryUsageMb: Math.round((getHeapStatistics().used_heap_size / 1024 / 1024) * 100) / 100,
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
