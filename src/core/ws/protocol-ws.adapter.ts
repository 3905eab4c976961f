import type { INestApplicationContext } from '@nestjs/common';
import type { Logger as Pino } from 'pino';
import { WsAdapter } from '@nestjs/platform-ws';
import type { MessageMappingProperties } from '@nestjs/websockets';
import { STATUS_CODES, type IncomingMessage, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Observable } from 'rxjs';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { ProxyTrust } from '../http/proxy-trust.js';
import { GatehouseLogger } from '../logging/gatehouse-logger.js';
import { Metrics } from '../metrics/metrics.js';
import type { ProtocolStats } from '../metrics/protocol-stats.js';
import { ClientRegistry } from '../registry/client-registry.js';
import { createListener } from '../tls/tls-context.js';
import { GatewayCatalog } from './gateway-catalog.js';
import { GatewayDispatch, type Reply } from './gateway-dispatch.js';
import { HandshakeGuard } from './handshake-guard.js';
import { InboundBudget } from './inbound-budget.js';
import { clientIp, setClientIp, setUpgradePrincipal, type UpgradeVerdict, type WsProtocol } from './ws-protocol.js';

interface Route {
  protocol: WsProtocol;
  server: WebSocketServer;
  stats: ProtocolStats;
}

/** The parts of the application the adapter reads, resolved once the application exists. */
interface Services {
  catalog: GatewayCatalog;
  metrics: Metrics;
  trust: ProxyTrust;
  registry: ClientRegistry;
  log: Pino;
  dispatch: GatewayDispatch;
}

interface PingState {
  awaiting: boolean;
  sentAt: number;
}

/** How long a socket closed for a missed pong may take before it is destroyed. */
const DEAD_PEER_GRACE_MS = 1000;

/** What a client that sends past its inbound budget gets, unless its protocol names a close. */
const RATE_LIMITED = { code: 1008, reason: 'Inbound rate limit exceeded' } as const;

/** The one WebSocket version there is (RFC 6455); ws would also accept draft version 8. */
const WS_VERSION = '13';

/**
 * The platform-ws adapter, made protocol-aware. A gateway declared with
 * `@WebSocketGateway({ path, protocol: '<name>' })` is served with the `WsProtocol` its
 * module registered in the `GatewayCatalog`: its own codec instead of Nest's single
 * parser, several paths matched with or without a trailing slash, authentication
 * that can refuse the upgrade with an HTTP status, its own frame limit and heartbeat.
 * Upgrades to a path nobody serves get a real `404`.
 */
export class ProtocolWsAdapter extends WsAdapter {
  private readonly routes = new Map<string, Route>();
  private readonly protocolOfSocket = new WeakMap<WebSocket, WsProtocol>();
  private readonly replies = new Map<string, Reply>();
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly dedicated: Server[] = [];
  private mainListener: ((req: IncomingMessage, socket: Duplex, head: Buffer) => void) | null = null;
  private servicesRef: Services | null = null;
  private guardRef: HandshakeGuard | null = null;

  constructor(private readonly app: INestApplicationContext) {
    super(app);
  }

  private get services(): Services {
    if (!this.servicesRef) {
      const catalog: GatewayCatalog | null = this.app.get(GatewayCatalog, { strict: false });
      if (!catalog) throw new Error('GatewayCatalog is missing: import CoreModule');
      const log = this.app.get(GatehouseLogger, { strict: false }).child({ context: 'WsAdapter' });
      this.servicesRef = {
        catalog,
        metrics: this.app.get(Metrics, { strict: false }),
        trust: this.app.get(ProxyTrust, { strict: false }),
        registry: this.app.get(ClientRegistry, { strict: false }),
        log,
        dispatch: new GatewayDispatch(this.app, log),
      };
    }
    return this.servicesRef;
  }

  private get catalog(): GatewayCatalog {
    return this.services.catalog;
  }

  /** Caps connections per address and times their first request, on every listener. */
  private get guard(): HandshakeGuard {
    if (!this.guardRef) {
      const { catalog, trust, metrics } = this.services;
      const guard = new HandshakeGuard(catalog.handshakeTimeoutMs, (socket) =>
        catalog.limits.admit(socket, trust.isTrusted(socket.remoteAddress ?? '')),
      );
      metrics.watchEarlyCloses(() => guard.closed);
      this.guardRef = guard;
    }
    return this.guardRef;
  }

  override create(port: number, options?: Record<string, unknown>): WebSocketServer {
    const name = options?.['protocol'];
    if (typeof name !== 'string') return super.create(port, options as never) as WebSocketServer;
    const protocol = this.catalog.get(name);
    if (!protocol) throw new Error(`gateway protocol "${name}" was not registered in the GatewayCatalog`);

    const server = new WebSocketServer({
      noServer: true,
      maxPayload: protocol.maxPayload,
      perMessageDeflate: false,
      clientTracking: true,
    });
    server.on('error', (err) => this.services.log.error({ err }, 'ws server error'));
    const stats = this.services.metrics.protocol(protocol.name);
    stats.declareCloseCodes(closeCodes(protocol));
    const counted = this.closeListener(protocol.name, stats);
    server.on('connection', (socket: WebSocket) => {
      this.protocolOfSocket.set(socket, protocol);
      stats.opened++;
      // A socket-level error (reset, bad frame) is followed by 'close'; nothing to do here
      // but keep it from becoming an uncaught 'error' event.
      socket.on('error', ignore);
      socket.on('close', counted);
    });
    this.startHeartbeat(server, protocol);
    this.catalog.attachServer(protocol.name, server);

    const route: Route = { protocol, server, stats };
    for (const path of protocol.paths) {
      const normalized = normalize(path);
      if (this.routes.has(normalized)) throw new Error(`path ${normalized} is served twice`);
      this.routes.set(normalized, route);
    }
    this.listenOnMainServer();
    if (protocol.dedicatedPort !== undefined) this.listenOnDedicatedPort(protocol.dedicatedPort, route);
    return server;
  }

  override bindMessageHandlers(
    client: WebSocket,
    handlers: MessageMappingProperties[],
    transform: (data: unknown) => Observable<unknown>,
  ): void {
    const protocol = this.protocolOfSocket.get(client);
    if (!protocol) {
      super.bindMessageHandlers(client, handlers, transform);
      return;
    }
    const { codec } = protocol;
    const { metrics, log, dispatch } = this.services;
    const stats = metrics.protocol(protocol.name);
    const rates = this.catalog.inboundRates(protocol.maxPayload);
    const budget = rates && new InboundBudget(rates);
    // Built once per protocol; a handler with an interceptor is left to Nest's own pipeline.
    const fast = dispatch.handlers(protocol.name);
    const reply = this.replier(protocol);
    // Nest binds every handler to every socket; they are kept only if one must run through
    // Nest's pipeline (an interceptor), so an idle socket does not hold a closure per handler.
    const slow = handlers.filter((candidate) => !fast.has(candidate.message as string));
    const viaNest = slow.length === 0 ? null : nestPipeline(client, slow, transform, reply, log, protocol.name);
    let spent = false;
    client.on('message', (raw: RawData, isBinary: boolean) => {
      // Once past its budget, a client's frames are dropped unread until its socket is gone.
      if (spent) return;
      const frame = toBuffer(raw);
      stats.inboundFrames++;
      stats.inboundBytes += frame.length;
      if (budget && !budget.take(frame.length)) {
        spent = true;
        overBudget(client, protocol.rateLimitClose ?? RATE_LIMITED);
        return;
      }
      let routed;
      try {
        routed = codec.decode(frame, isBinary);
      } catch (err) {
        // Codecs turn bad input into protocol errors; a throw is a codec bug.
        log.error({ err, protocol: protocol.name }, 'codec failed');
        return;
      }
      if (!routed) return;
      const handler = fast.get(routed.event);
      if (handler) handler.run(client, routed.data, reply);
      else viaNest?.(routed.event, routed.data);
    });
  }

  /**
   * Sends a handler's answer through the socket's connection, as every write: it is counted,
   * and a client that keeps sending without reading is cut off instead of making the replies
   * queue without bound. A socket its protocol never registered (or no longer has) gets nothing.
   */
  private replier(protocol: WsProtocol): Reply {
    let reply = this.replies.get(protocol.name);
    if (!reply) {
      const { codec } = protocol;
      const { registry } = this.services;
      const binary = codec.binary === true;
      reply = (client, value) => {
        if (value === undefined || value === null) return;
        registry.connectionOf(client)?.send(codec.encode(value), binary);
      };
      this.replies.set(protocol.name, reply);
    }
    return reply;
  }

  /** ws emits 'close' exactly once, so the plain listener does: `once` would add a wrapper per socket. */
  override bindClientDisconnect(client: WebSocket, callback: (...args: unknown[]) => void): void {
    client.on('close', callback);
  }

  /**
   * Runs at shutdown once every WebSocket has had its close frame and grace period and been
   * terminated. Node's server.close() never ends a keep-alive connection that stays busy, so
   * a backend publishing non-stop would keep the process alive past SIGTERM forever: the
   * listener stops, then every remaining HTTP connection is closed (a request in flight
   * gets no answer).
   */
  override async dispose(): Promise<void> {
    const httpServer = this.httpServer as Server | undefined;
    if (httpServer?.listening) httpServer.close();
    httpServer?.closeAllConnections();
    for (const timer of this.timers) clearInterval(timer);
    this.timers.length = 0;
    if (this.mainListener) {
      (this.httpServer as Server).off('upgrade', this.mainListener);
      this.mainListener = null;
    }
    await Promise.all(this.dedicated.map((server) => new Promise((resolve) => server.close(() => resolve(undefined)))));
    this.dedicated.length = 0;
    this.routes.clear();
    await super.dispose();
  }

  private listenOnMainServer(): void {
    if (this.mainListener) return;
    const httpServer = this.httpServer as Server | undefined;
    if (!httpServer) throw new Error('ProtocolWsAdapter needs the application (new ProtocolWsAdapter(app))');
    this.guard.watch(httpServer);
    this.mainListener = (req, socket, head) => {
      let route: Route | undefined;
      try {
        route = this.routes.get(normalize(new URL(req.url ?? '/', 'http://localhost').pathname));
      } catch {
        this.refuse(null, socket, { accept: false, status: 400 });
        return;
      }
      if (!route) {
        this.refuse(null, socket, { accept: false, status: 404 });
        return;
      }
      void this.upgrade(route, req, socket, head);
    };
    httpServer.on('upgrade', this.mainListener);
  }

  private listenOnDedicatedPort(port: number, route: Route): void {
    // HTTPS with the main port's certificate when it has one.
    const server = createListener(this.httpServer as Server | undefined, (_req, res) => {
      res.writeHead(426, { 'Content-Type': 'text/plain', Connection: 'close' }).end('Upgrade Required');
    });
    this.guard.watch(server);
    // Any path: the clients of such a port were written against a server that ignored it.
    server.on(
      'upgrade',
      (req: IncomingMessage, socket: Duplex, head: Buffer) => void this.upgrade(route, req, socket, head),
    );
    server.on('error', (err) => {
      // A listener that could not bind leaves the protocol unreachable for its hard-wired
      // clients: say so loudly and keep the instance out of rotation (/health/ready 503).
      const problem = `dedicated port ${port} for ${route.protocol.name} failed: ${err.message}`;
      this.services.log.error({ protocol: route.protocol.name }, problem);
      this.catalog.fail(problem);
    });
    server.listen(port, this.catalog.listenHost);
    this.catalog.attachListener(route.protocol.name, server);
    this.dedicated.push(server);
  }

  private async upgrade(route: Route, req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    // Not a closure: one here would share this call's scope, and so keep the upgrade
    // request and all its headers alive for as long as the socket is open.
    socket.on('error', destroySocket);
    setClientIp(req, this.services.trust.clientIp(req));
    if (this.catalog.shuttingDown) {
      this.refuse(route, socket, { accept: false, status: 503 });
      return;
    }
    const version = req.headers['sec-websocket-version'];
    if (version !== undefined && version !== WS_VERSION) {
      // RFC 6455 4.4: a version the server does not speak is answered 426 with the one it does.
      const headers = { 'Sec-WebSocket-Version': WS_VERSION };
      this.refuse(route, socket, { accept: false, status: 426, message: 'Unsupported WebSocket version', headers });
      return;
    }
    const { limits } = this.catalog;
    const { name } = route.protocol;
    const refusal = limits.check(req, name);
    if (refusal) {
      this.refuse(route, socket, refusal);
      return;
    }
    // The slot is taken before the handshake, so upgrades still authenticating count
    // against the caps too; it is given back when the TCP socket goes, however it goes.
    socket.once('close', limits.opened(req));
    let verdict: UpgradeVerdict = { accept: true };
    if (route.protocol.authenticate) {
      const attempt = limits.beginAuth(clientIp(req), name);
      if (!attempt) {
        this.refuse(route, socket, { accept: false, status: 429, message: 'Too many failed authentications' });
        return;
      }
      try {
        verdict = await route.protocol.authenticate(req);
      } catch (err) {
        attempt.succeeded();
        this.services.log.error({ err, protocol: name }, 'upgrade authentication failed');
        this.refuse(route, socket, { accept: false, status: 503 });
        return;
      }
      // A refused credential stays charged to the address's failure budget.
      if (!verdict.accept && (verdict.status === 401 || verdict.status === 403)) attempt.failed();
      else attempt.succeeded();
    }
    if (!verdict.accept) {
      this.refuse(route, socket, verdict);
      return;
    }
    if (socket.destroyed) return;
    setUpgradePrincipal(req, verdict.principal);
    route.server.handleUpgrade(req, socket, head, (ws) => route.server.emit('connection', ws, req));
  }

  /** Answers an upgrade with an HTTP error, counted per protocol (`null`: no protocol owns the path). */
  private refuse(route: Route | null, socket: Duplex, verdict: Extract<UpgradeVerdict, { accept: false }>): void {
    (route?.stats ?? this.services.metrics.protocol('')).refused(verdict.status);
    reject(socket, verdict);
  }

  /**
   * One listener for all of a protocol's sockets (`this` is the socket), so a connection
   * costs no closure: it counts the close by code and, at debug, logs it.
   */
  private closeListener(protocol: string, stats: ProtocolStats): (this: WebSocket, code: number) => void {
    const { registry, log } = this.services;
    return function (this: WebSocket, code: number): void {
      stats.closed(code);
      if (!log.isLevelEnabled('debug')) return;
      const connection = registry.connectionOf(this);
      log.debug(
        {
          protocol,
          clientId: connection?.id ?? null,
          code,
          durationMs: connection ? Date.now() - connection.since : null,
        },
        'connection closed',
      );
    };
  }

  private startHeartbeat(server: WebSocketServer, protocol: WsProtocol): void {
    const { intervalMs, timeoutMs, close, onPing } = protocol.heartbeat;
    // Nothing per socket but a state entry: the pong handler is shared, and the passes walk
    // `server.clients`, which ws itself keeps to the open sockets, so no 'close' listener
    // is needed to forget a socket.
    const states = new WeakMap<WebSocket, PingState>();
    function answered(this: WebSocket): void {
      const state = states.get(this);
      if (state) state.awaiting = false;
    }
    server.on('connection', (socket: WebSocket) => {
      states.set(socket, { awaiting: false, sentAt: 0 });
      socket.on('pong', answered);
    });
    const ping = setInterval(() => {
      const now = Date.now();
      for (const socket of server.clients) {
        const state = states.get(socket);
        if (!state || state.awaiting || socket.readyState !== socket.OPEN) continue;
        state.awaiting = true;
        state.sentAt = now;
        socket.ping();
        onPing?.(socket);
      }
    }, intervalMs);
    // Checked several times per timeout, so a dead peer goes within ~1.25x the timeout.
    const sweep = setInterval(
      () => {
        const now = Date.now();
        for (const socket of server.clients) {
          const state = states.get(socket);
          if (!state?.awaiting || now - state.sentAt < timeoutMs) continue;
          states.delete(socket);
          if (close === null) {
            socket.terminate();
            continue;
          }
          socket.close(close.code, close.reason);
          setTimeout(() => socket.terminate(), DEAD_PEER_GRACE_MS).unref();
        }
      },
      Math.max(5, Math.floor(Math.min(intervalMs, timeoutMs) / 4)),
    );
    ping.unref();
    sweep.unref();
    this.timers.push(ping, sweep);
  }
}

/** Every close code a protocol may send: its table, its heartbeat's and its slow-consumer close. */
function closeCodes(protocol: WsProtocol): number[] {
  const codes = Object.values(protocol.closes ?? {}).map((spec) => spec.code);
  if (protocol.heartbeat.close) codes.push(protocol.heartbeat.close.code);
  if (protocol.slowConsumerClose) codes.push(protocol.slowConsumerClose.code);
  codes.push((protocol.rateLimitClose ?? RATE_LIMITED).code);
  return codes;
}

/** `/websocket/` and `/websocket` are the same route; the root stays `/`. */
function normalize(path: string): string {
  const trimmed = path.replace(/\/+$/, '');
  return trimmed === '' ? '/' : trimmed;
}

function toBuffer(raw: RawData): Buffer {
  if (Buffer.isBuffer(raw)) return raw;
  if (Array.isArray(raw)) return Buffer.concat(raw);
  return Buffer.from(raw);
}

function ignore(): void {}

function destroySocket(this: Duplex): void {
  this.destroy();
}

/** Closes a client that sent past its inbound budget; one that does not take the close is dropped. */
function overBudget(client: WebSocket, close: { code: number; reason: string }): void {
  client.close(close.code, close.reason);
  setTimeout(() => client.terminate(), DEAD_PEER_GRACE_MS).unref();
}

function reject(socket: Duplex, verdict: Extract<UpgradeVerdict, { accept: false }>): void {
  if (socket.destroyed) return;
  const text = STATUS_CODES[verdict.status] ?? 'Error';
  const body = verdict.message ?? text;
  const extra = Object.entries(verdict.headers ?? {}).map(([name, value]) => `${name}: ${value}\r\n`);
  socket.end(
    `HTTP/1.1 ${verdict.status} ${text}\r\n` +
      extra.join('') +
      'Connection: close\r\n' +
      'Content-Type: text/plain; charset=utf-8\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n` +
      body,
  );
}

/**
 * The handlers left to Nest's own pipeline (those with an interceptor), for one socket: the
 * callback Nest bound to it, its result turned into an observable by Nest's `transform`,
 * each value sent as a reply.
 */
function nestPipeline(
  client: WebSocket,
  handlers: MessageMappingProperties[],
  transform: (data: unknown) => Observable<unknown>,
  reply: Reply,
  log: Pino,
  protocol: string,
): (event: string, data: unknown) => void {
  return (event, data) => {
    // A gateway has a handful of handlers: a scan costs less than a Map per connection.
    const nest = handlers.find((candidate) => candidate.message === event);
    if (!nest) return;
    let result$: Observable<unknown>;
    try {
      result$ = transform(nest.callback(data, event));
    } catch (err) {
      log.error({ err, protocol }, 'handler failed');
      return;
    }
    result$.subscribe({
      next: (value) => reply(client, value),
      error: (err: unknown) => log.error({ err, protocol }, 'handler failed'),
    });
  };
}
