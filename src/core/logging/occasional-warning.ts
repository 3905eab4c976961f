import type { Logger as Pino } from 'pino';

/** How often a repeated warning is written at most, by default. */
export const OCCASIONAL_WARNING_INTERVAL_MS = 10_000;

/**
 * A warning that can fire once per message (a publish that Redis refused, say) and so could
 * flood the log while Redis is down: the first is written, then at most one per interval,
 * carrying how many were left out since the last (`suppressed`).
 */
export class OccasionalWarning {
  private writtenAt = Number.NEGATIVE_INFINITY;
  private suppressed = 0;

  constructor(
    private readonly log: Pino,
    private readonly message: string,
    private readonly intervalMs = OCCASIONAL_WARNING_INTERVAL_MS,
    private readonly now: () => number = () => performance.now(),
  ) {}

  warn(fields: Record<string, unknown>): void {
    const now = this.now();
    if (now - this.writtenAt < this.intervalMs) {
      this.suppressed++;
      return;
    }
    this.writtenAt = now;
    const suppressed = this.suppressed;
    this.suppressed = 0;
    this.log.warn(suppressed > 0 ? { ...fields, suppressed } : fields, this.message);
  }
}
