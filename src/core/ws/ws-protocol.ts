import type { IncomingMessage } from 'node:http';
import type { WebSocket } from 'ws';
import type { CloseSpec } from '../registry/connection.js';

/** A frame routed to one of a gateway's `@SubscribeMessage` handlers. */
export interface RoutedMessage {
  event: string;
  data: unknown;
}

/**
 * A protocol's wire format, as pure functions. The adapter calls `decode` on every
 * inbound frame instead of Nest's single `{event, data}` JSON parser, and `encode` on
 * whatever a handler returns.
 */
export interface WsCodec {
  /** `undefined` drops the frame silently (protocols that ignore bad input). */
  decode(data: Buffer, isBinary: boolean): RoutedMessage | undefined;
  encode(message: unknown): Buffer | string;
  /**
   * The frame type of `encode`'s output: text unless this is true. (`ws` would send a
   * Buffer as a binary frame by default, which text-JSON clients cannot read.)
   */
  binary?: boolean;
}

export type UpgradeVerdict =
  | { accept: true; principal?: unknown }
  | {
      accept: false;
      status: 400 | 401 | 403 | 404 | 426 | 429 | 503;
      message?: string;
      /** Extra response headers (`426` names the WebSocket version the server speaks). */
      headers?: Readonly<Record<string, string>>;
    };

export interface HeartbeatSpec {
  /** A WebSocket ping goes to every client this often. */
  intervalMs: number;
  /** A client that has not answered a ping this long after it was sent is closed. */
  timeoutMs: number;
  /** The close it gets; `null` terminates the socket without a close frame. */
  close: CloseSpec | null;
  /** Runs with every ping, for protocols that also send an application-level ping. */
  onPing?: (socket: WebSocket) => void;
}

/** Everything the adapter needs to serve one protocol; registered by its gateway. */
export interface WsProtocol {
  name: string;
  /** Every path the protocol answers on; matched with or without a trailing slash. */
  paths: readonly string[];
  /** A port of its own on which any path is this protocol, for clients hard-wired to a port. */
  dedicatedPort?: number;
  /** Largest inbound frame; a bigger one closes the socket with 1009. */
  maxPayload: number;
  /**
   * The close a client gets when replies to its own messages pile up past
   * `WS_SEND_BUFFER_LIMIT` (it sends but does not read); `1013` by default.
   */
  slowConsumerClose?: CloseSpec;
  /**
   * The close a client gets when it sends past its inbound budget (`WS_INBOUND_*`), before
   * the frame is parsed; `1008 "Inbound rate limit exceeded"` by default.
   */
  rateLimitClose?: CloseSpec;
  codec: WsCodec;
  heartbeat: HeartbeatSpec;
  /**
   * Every close the protocol sends (its codes file's table). The metrics label a close by
   * its code when it is one of these or a standard one, and as `other` otherwise.
   */
  closes?: Readonly<Record<string, CloseSpec>>;
  /**
   * Runs before the socket opens. A refusal is answered with a real HTTP status; an
   * accepted principal is handed to the gateway through `upgradePrincipal(req)`.
   */
  authenticate?: (req: IncomingMessage) => UpgradeVerdict | Promise<UpgradeVerdict>;
}

const principals = new WeakMap<IncomingMessage, unknown>();
const clientIps = new WeakMap<IncomingMessage, string>();

/** Set by the adapter before any check runs: the client address as `ProxyTrust` reads it. */
export function setClientIp(req: IncomingMessage, ip: string): void {
  clientIps.set(req, ip);
}

/**
 * The client's address for an upgrade request: behind a trusted proxy the one it forwarded
 * (`TRUST_PROXY`), else the socket's peer. Every per-IP limit counts by it.
 */
export function clientIp(req: IncomingMessage): string {
  return clientIps.get(req) ?? req.socket.remoteAddress ?? 'unknown';
}

export function setUpgradePrincipal(req: IncomingMessage, principal: unknown): void {
  principals.set(req, principal);
}

/** What the protocol's `authenticate` accepted for this upgrade request. */
export function upgradePrincipal<T>(req: IncomingMessage): T | undefined {
  return principals.get(req) as T | undefined;
}
