import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { collectDefaultMetrics, Registry } from 'prom-client';

/**
 * How often the event-loop delay is sampled. Each sample is a timer that wakes the process:
 * at 10 ms (Node's and prom-client's usual choice) an idle gateway spends about 1% of a core
 * on it, at 100 ms almost nothing, and a stall of 100 ms or more is still always seen.
 */
export const LAG_RESOLUTION_MS = 100;

/** The lag gauge reports the worst delay of the current and the previous window. */
export const LAG_WINDOW_MS = 5000;

interface Runtime {
  registry: Registry;
  lag: IntervalHistogram;
  lastWindowMaxNs: number;
}

let runtime: Runtime | null = null;

/**
 * The process's own metrics: Node's standard runtime families (`process_*`, `nodejs_*`) and
 * the event-loop delay. One set per process, however many applications it hosts (the tests
 * run several), started the first time an application with metrics starts.
 */
function start(): Runtime {
  if (runtime) return runtime;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: LAG_RESOLUTION_MS });
  const lag = monitorEventLoopDelay({ resolution: LAG_RESOLUTION_MS });
  lag.enable();
  const state: Runtime = { registry, lag, lastWindowMaxNs: 0 };
  setInterval(() => {
    state.lastWindowMaxNs = lag.max;
    lag.reset();
  }, LAG_WINDOW_MS).unref();
  runtime = state;
  return state;
}

export const runtimeMetrics = {
  start(): void {
    start();
  },
  /** The runtime families, in the text format. */
  text(): Promise<string> {
    return start().registry.metrics();
  },
  /** The longest event-loop delay of the last `LAG_WINDOW_MS` to twice that, in seconds. */
  lagSeconds(): number {
    const state = start();
    return Math.max(state.lastWindowMaxNs, state.lag.max) / 1e9;
  },
};
