/** Bytes and frames a connection may send per second, each with the burst it may spend at once. */
export interface InboundRates {
  bytesPerSec: number;
  bytesBurst: number;
  framesPerSec: number;
  framesBurst: number;
}

/**
 * Two token buckets, bytes and frames, for one connection's inbound frames. A frame is
 * charged before anything parses it, so a flood of frames that are costly to parse (JSON
 * with tens of thousands of keys) costs at most a burst's worth of parsing before the socket
 * is closed. A few additions per frame: cheap enough for the per-message path.
 */
export class InboundBudget {
  private bytes: number;
  private frames: number;
  private last: number;

  constructor(
    private readonly rates: InboundRates,
    now: number = performance.now(),
  ) {
    this.bytes = rates.bytesBurst;
    this.frames = rates.framesBurst;
    this.last = now;
  }

  /** Charges one frame of `size` bytes; false (nothing charged) when the budget cannot cover it. */
  take(size: number, now: number = performance.now()): boolean {
    const { bytesPerSec, bytesBurst, framesPerSec, framesBurst } = this.rates;
    const seconds = (now - this.last) / 1000;
    this.last = now;
    this.bytes = Math.min(bytesBurst, this.bytes + seconds * bytesPerSec);
    this.frames = Math.min(framesBurst, this.frames + seconds * framesPerSec);
    if (this.bytes < size || this.frames < 1) return false;
    this.bytes -= size;
    this.frames -= 1;
    return true;
  }
}

/**
 * The rates a protocol's connections get from the configuration, or null when either rate
 * is 0 (no budget). The byte burst is at least the protocol's frame limit, so that one
 * frame of the largest size the protocol allows can always get through.
 */
export function inboundRates(
  config: {
    WS_INBOUND_BYTES_PER_SEC: number;
    WS_INBOUND_BYTES_BURST: number;
    WS_INBOUND_FRAMES_PER_SEC: number;
    WS_INBOUND_FRAMES_BURST: number;
  },
  maxPayload: number,
): InboundRates | null {
  if (config.WS_INBOUND_BYTES_PER_SEC === 0 || config.WS_INBOUND_FRAMES_PER_SEC === 0) return null;
  return {
    bytesPerSec: config.WS_INBOUND_BYTES_PER_SEC,
    bytesBurst: Math.max(config.WS_INBOUND_BYTES_BURST, maxPayload),
    framesPerSec: config.WS_INBOUND_FRAMES_PER_SEC,
    framesBurst: config.WS_INBOUND_FRAMES_BURST,
  };
}
