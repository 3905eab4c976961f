import { Injectable } from '@nestjs/common';
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { AppConfig } from '../../config/app-config.js';
import { Metrics } from '../metrics/metrics.js';
import type { ProtocolStats } from '../metrics/protocol-stats.js';
import { clientIp, type UpgradeVerdict } from './ws-protocol.js';

interface FailureWindow {
  count: number;
  endsAt: number;
}

type Refusal = Extract<UpgradeVerdict, { accept: false }>;

/**
 * One authentication in progress. It is charged to the address's failure budget when
 * it starts, so attempts made in parallel cannot all slip under the limit, and
 * refunded if it succeeds.
 */
export interface AuthAttempt {
  succeeded(): void;
  failed(): void;
}

/**
 * The checks every upgrade passes before any protocol looks at it: allowed origins,
 * connection caps (per process and per client IP) and the failed-authentication
 * throttle. All of it is in-process memory, so a refused client never costs a store
 * or Redis round trip; each instance counts its own sockets and failures. Addresses are
 * the client's as `clientIp` reads it (forwarded by a trusted proxy, else the peer).
 *
 * The per-address cap counts a TCP connection from the moment the listener accepts it
 * (`admit`), before it has sent a byte, so that idle or half-sent requests cannot hold
 * every descriptor. A connection whose peer is a trusted proxy carries many clients and
 * names the one it forwards only in its request headers: it is not counted on accept, but
 * at its upgrade, under the forwarded address.
 */
@Injectable()
export class UpgradeLimits {
  private readonly origins: ReadonlySet<string> | null;
  private readonly perIp = new Map<string, number>();
  private readonly failures = new Map<string, FailureWindow>();
  /** TCP connections already counted under their peer's address when they were accepted. */
  private readonly admitted = new WeakSet<object>();
  private open = 0;
  private lastSweep = 0;

  constructor(
    private readonly config: AppConfig,
    private readonly metrics: Metrics,
  ) {
    this.origins =
      config.WS_ALLOWED_ORIGINS === undefined
        ? null
        : new Set(config.WS_ALLOWED_ORIGINS.split(',').map((origin) => normalizeOrigin(origin.trim())));
  }

  /** Why this upgrade to `protocol` must be refused, or null to let it through to the protocol. */
  check(req: IncomingMessage, protocol: string): Refusal | null {
    const origin = req.headers.origin;
    // Clients that send no Origin (servers, bots, native apps) are not browsers and
    // cannot be the victims of cross-site requests; only a listed browser origin passes.
    if (this.origins && origin !== undefined && !this.origins.has(normalizeOrigin(origin))) {
      return { accept: false, status: 403, message: 'Origin not allowed' };
    }
    const ip = clientIp(req);
    if (this.isThrottled(ip)) {
      this.metrics.protocol(protocol).authThrottled++;
      return { accept: false, status: 429, message: 'Too many failed authentications' };
    }
    if (this.config.WS_MAX_CONNECTIONS > 0 && this.open >= this.config.WS_MAX_CONNECTIONS) {
      return { accept: false, status: 503, message: 'Connection limit reached' };
    }
    // A connection counted on accept already holds its address's slot.
    if (!this.admitted.has(transport(req.socket)) && this.ipFull(ip)) return TOO_MANY_FROM_IP;
    return null;
  }

  /**
   * Counts a freshly accepted TCP connection under its peer's address until it closes;
   * false when the address is at `WS_MAX_CONNECTIONS_PER_IP` (the caller refuses it).
   * Connections from a trusted proxy are left to the upgrade (see the class comment).
   */
  admit(socket: Socket, fromTrustedProxy: boolean): boolean {
    if (fromTrustedProxy || this.config.WS_MAX_CONNECTIONS_PER_IP === 0) return true;
    const ip = socket.remoteAddress ?? 'unknown';
    if (this.ipFull(ip)) return false;
    this.admitted.add(socket);
    this.perIp.set(ip, (this.perIp.get(ip) ?? 0) + 1);
    socket.once('close', () => this.releaseIp(ip));
    return true;
  }

  private ipFull(ip: string): boolean {
    const cap = this.config.WS_MAX_CONNECTIONS_PER_IP;
    return cap > 0 && (this.perIp.get(ip) ?? 0) >= cap;
  }

  private releaseIp(ip: string): void {
    const left = (this.perIp.get(ip) ?? 1) - 1;
    if (left <= 0) this.perIp.delete(ip);
    else this.perIp.set(ip, left);
  }

  /**
   * Starts an authentication for `ip`, or returns null when the address has no budget
   * left: the caller refuses it (HTTP 429, or the protocol's own close) without looking
   * at any credential store.
   */
  beginAuth(ip: string, protocol: string): AuthAttempt | null {
    const stats = this.metrics.protocol(protocol);
    if (this.config.AUTH_FAILURE_LIMIT === 0) return uncharged(stats);
    if (this.isThrottled(ip)) {
      stats.authThrottled++;
      return null;
    }
    const window = this.charge(ip);
    let settled = false;
    return {
      succeeded: () => {
        if (settled) return;
        settled = true;
        // Only refund the window that was charged; a new one started without this attempt.
        if (this.failures.get(ip) === window) window.count--;
      },
      failed: () => {
        if (settled) return;
        settled = true;
        stats.authFailures++;
      },
    };
  }

  /** Counts a socket (reserved before its handshake); returns the function that uncounts it. */
  opened(req: IncomingMessage): () => void {
    const ip = clientIp(req);
    const perIp = !this.admitted.has(transport(req.socket));
    this.open++;
    if (perIp) this.perIp.set(ip, (this.perIp.get(ip) ?? 0) + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.open--;
      if (perIp) this.releaseIp(ip);
    };
  }

  /** Every protocol reports its failed authentications here (one shared budget per IP). */
  authFailed(ip: string, protocol: string): void {
    this.metrics.protocol(protocol).authFailures++;
    if (this.config.AUTH_FAILURE_LIMIT === 0) return;
    this.charge(ip);
  }

  /** True while `ip` has used up its failed-authentication budget. */
  isThrottled(ip: string): boolean {
    if (this.config.AUTH_FAILURE_LIMIT === 0) return false;
    const window = this.failures.get(ip);
    return window !== undefined && window.endsAt > Date.now() && window.count >= this.config.AUTH_FAILURE_LIMIT;
  }

  private charge(ip: string): FailureWindow {
    const now = Date.now();
    this.sweep(now);
    let window = this.failures.get(ip);
    if (!window || window.endsAt <= now) {
      window = { count: 0, endsAt: now + this.config.AUTH_FAILURE_WINDOW_MS };
      this.failures.set(ip, window);
    }
    window.count++;
    return window;
  }

  /** Sockets open on this process. */
  get openSockets(): number {
    return this.open;
  }

  /** Expired windows go at most once a second, so an address scan cannot grow the map forever. */
  private sweep(now: number): void {
    if (now - this.lastSweep < 1000) return;
    this.lastSweep = now;
    for (const [ip, window] of this.failures) if (window.endsAt <= now) this.failures.delete(ip);
  }
}

const TOO_MANY_FROM_IP: Refusal = { accept: false, status: 429, message: 'Too many connections from this address' };

/**
 * The TCP connection under a request's socket: the socket itself, or the one a TLS socket
 * wraps (the listener's `connection` event sees the latter).
 */
export function transport(socket: object): object {
  return (socket as { _parent?: object | null })._parent ?? socket;
}

/** An attempt with the throttle off: nothing to charge, but a failure is still counted. */
function uncharged(stats: ProtocolStats): AuthAttempt {
  return {
    succeeded: () => undefined,
    failed: () => {
      stats.authFailures++;
    },
  };
}

function normalizeOrigin(origin: string): string {
  return origin.toLowerCase().replace(/\/+$/, '');
}
