/** Close codes of RFC 6455 that a peer or the server may use; anything else a protocol did not declare is `other`. */
const STANDARD_CLOSE_CODES: readonly number[] = [
  1000, 1001, 1002, 1003, 1005, 1006, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 1015,
];

/**
 * One protocol's counters on this instance. The fields are plain numbers that the hot
 * paths (every inbound frame, every delivery) increment in place: no label lookup, no
 * allocation. `Metrics` reads them when Prometheus scrapes.
 */
export class ProtocolStats {
  opened = 0;
  inboundFrames = 0;
  inboundBytes = 0;
  deliveredFrames = 0;
  deliveredBytes = 0;
  slowConsumers = 0;
  authFailures = 0;
  authThrottled = 0;
  /** Closes by code label; a code no protocol declared is counted as `other`, so a client cannot grow the label set. */
  readonly closes = new Map<string, number>();
  /** Upgrades refused, by HTTP status. */
  readonly refusals = new Map<number, number>();
  private knownCodes: ReadonlySet<number> = new Set(STANDARD_CLOSE_CODES);

  constructor(readonly protocol: string) {}

  /** The protocol's own close codes (4000-4999), labelled as themselves. */
  declareCloseCodes(codes: Iterable<number>): void {
    this.knownCodes = new Set([...STANDARD_CLOSE_CODES, ...codes]);
  }

  closed(code: number): void {
    const label = this.knownCodes.has(code) ? String(code) : 'other';
    this.closes.set(label, (this.closes.get(label) ?? 0) + 1);
  }

  refused(status: number): void {
    this.refusals.set(status, (this.refusals.get(status) ?? 0) + 1);
  }
}

/** Counts nothing anyone reads: a connection's stats until the registry adds it. */
export const UNCOUNTED = new ProtocolStats('');
