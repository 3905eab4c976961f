/** Upper bounds in seconds: sub-millisecond local fan-out up to a Redis stall. */
export const LATENCY_BUCKETS: readonly number[] = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
];

/**
 * A fixed-bucket histogram whose `observe` is a scan of a small array: no label hashing and
 * no allocation per observation (prom-client's histograms hash their labels on every call).
 * `Metrics` exposes it in Prometheus' histogram format.
 */
export class LatencyHistogram {
  /** Per bucket, not cumulative; the last one is +Inf. */
  readonly counts = new Float64Array(LATENCY_BUCKETS.length + 1);
  sum = 0;
  count = 0;

  observe(seconds: number): void {
    const value = seconds > 0 ? seconds : 0;
    let i = 0;
    while (i < LATENCY_BUCKETS.length && value > (LATENCY_BUCKETS[i] as number)) i++;
    this.counts[i] = (this.counts[i] ?? 0) + 1;
    this.sum += value;
    this.count++;
  }
}

/** Milliseconds since the epoch with sub-millisecond resolution, comparable across processes on one host. */
export function epochMs(): number {
  return performance.timeOrigin + performance.now();
}
