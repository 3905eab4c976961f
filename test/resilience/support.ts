// What only the resilience suites use: sizes from the environment (soak runs raise them), a
// bounded worker pool, memory readings with a forced GC, and the figure lines
// docs/reliability.md is filled from. Protocol clients and HTTP calls are in test/helpers/.
import assert from 'node:assert/strict';
import { collectGarbage } from '../helpers/gc.js';

/** Reads an integer size from the environment (soak runs raise them), else the CI default. */
export function size(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  assert.ok(Number.isInteger(value) && value > 0, `${name} must be a positive integer, got ${raw}`);
  return value;
}

/** Runs `task(i)` for i in [0, n) with at most `concurrency` in flight; rejects on the first failure. */
export async function pool(n: number, concurrency: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const failures: Error[] = [];
  const worker = async (): Promise<void> => {
    while (failures.length === 0 && next < n) {
      const i = next++;
      try {
        await task(i);
      } catch (err) {
        failures.push(err instanceof Error ? err : new Error(String(err)));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  if (failures[0]) throw failures[0];
}

// ---- memory -------------------------------------------------------------------------------

export interface Memory {
  /** V8 heap in use plus memory held outside it by Buffers and other external objects, after a full GC. */
  used: number;
  heapUsed: number;
  external: number;
  rss: number;
}

/** This process's memory after forced full collections. */
export function memory(): Memory {
  collectGarbage(2);
  const m = process.memoryUsage();
  return { used: m.heapUsed + m.external, heapUsed: m.heapUsed, external: m.external, rss: m.rss };
}

export const MiB = 1024 * 1024;

export function mib(bytes: number): string {
  return (bytes / MiB).toFixed(1);
}

// ---- figures --------------------------------------------------------------------------------

export { figure } from '../helpers/figure.js';
