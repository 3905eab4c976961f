import { Injectable, type BeforeApplicationShutdown, type OnModuleDestroy } from '@nestjs/common';
import type { Server } from 'node:net';
import type { WebSocketServer } from 'ws';
import { AppConfig } from '../../config/app-config.js';
import { Metrics } from '../metrics/metrics.js';
import { inboundRates, type InboundRates } from './inbound-budget.js';
import { UpgradeLimits } from './upgrade-limits.js';
import type { WsProtocol } from './ws-protocol.js';

const GOING_AWAY = { code: 1001, reason: 'Server shutting down' } as const;

/** What the shutdown did with the clients it found. */
export interface ShutdownReport {
  /** Clients sent a 1001. */
  clients: number;
  /** Of those, the ones still not closed when SHUTDOWN_GRACE_MS ran out (Nest then terminates them). */
  unclosed: number;
  /** How long the clients took to go, in milliseconds. */
  drainMs: number;
}

/** A dedicated port a protocol listens on (clients hard-wired to a port). */
export interface DedicatedListener {
  protocol: string;
  server: Server;
}

/**
 * The protocols the process serves and their ws servers. Gateways register their
 * protocol in their constructor (before Nest binds gateways to the adapter); the
 * adapter registers each server it creates. It also owns the shutdown order.
 */
@Injectable()
export class GatewayCatalog implements OnModuleDestroy, BeforeApplicationShutdown {
  private readonly protocols = new Map<string, WsProtocol>();
  private readonly servers = new Map<string, WebSocketServer>();
  private readonly listeners: DedicatedListener[] = [];
  private stopping = false;
  private report: ShutdownReport | null = null;

  constructor(
    private readonly config: AppConfig,
    /** Origin, connection-cap and failed-authentication checks every upgrade passes. */
    readonly limits: UpgradeLimits,
    metrics: Metrics,
  ) {
    metrics.watchConnections(() => [...this.servers].map(([name, server]) => [name, server.clients.size]));
  }

  register(protocol: WsProtocol): void {
    if (this.protocols.has(protocol.name)) throw new Error(`protocol ${protocol.name} registered twice`);
    this.protocols.set(protocol.name, protocol);
  }

  get(name: string): WsProtocol | undefined {
    return this.protocols.get(name);
  }

  all(): WsProtocol[] {
    return [...this.protocols.values()];
  }

  attachServer(name: string, server: WebSocketServer): void {
    this.servers.set(name, server);
  }

  attachListener(protocol: string, server: Server): void {
    this.listeners.push({ protocol, server });
  }

  /** The dedicated ports, as the adapter opened them. */
  get dedicatedListeners(): readonly DedicatedListener[] {
    return this.listeners;
  }

  /** Set once shutdown has closed (or given up on) every client. */
  get shutdownReport(): ShutdownReport | null {
    return this.report;
  }

  /** Where dedicated protocol ports listen: the same interface as the main port. */
  get listenHost(): string {
    return this.config.HOST;
  }

  /** `WS_SEND_BUFFER_LIMIT`: unsent bytes one client may hold before it is cut off. */
  get sendBufferLimit(): number {
    return this.config.WS_SEND_BUFFER_LIMIT;
  }

  /** `WS_HANDSHAKE_TIMEOUT_MS`: how long a TCP connection may take to deliver its request. */
  get handshakeTimeoutMs(): number {
    return this.config.WS_HANDSHAKE_TIMEOUT_MS;
  }

  /** The inbound budget (`WS_INBOUND_*`) of a connection to a protocol with this frame limit; null: none. */
  inboundRates(maxPayload: number): InboundRates | null {
    return inboundRates(this.config, maxPayload);
  }

  private readonly failures: string[] = [];

  /** Records a fault that makes this instance unfit to serve (it reports not-ready). */
  fail(problem: string): void {
    this.failures.push(problem);
  }

  /** Faults recorded with `fail`, if any. */
  get problems(): readonly string[] {
    return this.failures;
  }

  /** True from the moment shutdown starts: upgrades are refused and readiness is down. */
  get shuttingDown(): boolean {
    return this.stopping;
  }

  // Set first, so disconnects caused by the shutdown are not mistaken for clients
  // leaving, and /health/ready turns 503 before sockets start closing.
  onModuleDestroy(): void {
    this.stopping = true;
  }

  // Nest's own teardown terminates sockets without a close frame; before it runs,
  // every client is sent 1001 and given SHUTDOWN_GRACE_MS to take it.
  async beforeApplicationShutdown(): Promise<void> {
    this.stopping = true;
    const started = performance.now();
    let open = 0;
    const closed: Promise<void>[] = [];
    for (const server of this.servers.values()) {
      for (const socket of server.clients) {
        if (socket.readyState === socket.CLOSED) continue;
        open++;
        closed.push(
          new Promise((resolve) =>
            socket.once('close', () => {
              open--;
              resolve();
            }),
          ),
        );
        if (socket.readyState === socket.OPEN) socket.close(GOING_AWAY.code, GOING_AWAY.reason);
      }
    }
    const clients = closed.length;
    if (clients > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all(closed),
        new Promise((resolve) => {
          timer = setTimeout(resolve, this.config.SHUTDOWN_GRACE_MS);
        }),
      ]);
      clearTimeout(timer);
    }
    this.report = { clients, unclosed: open, drainMs: Math.round(performance.now() - started) };
  }
}
