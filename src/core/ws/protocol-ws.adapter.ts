import { Logger, type INestApplicationContext } from '@nestjs/common';
import { WsAdapter } from '@nestjs/platform-ws';
import type { MessageMappingProperties } from '@nestjs/websockets';
import { createServer, STATUS_CODES, type IncomingMessage, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Observable } from 'rxjs';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { closeSlowConsumer, SLOW_CONSUMER_CLOSE } from '../registry/connection.js';
import { GatewayCatalog } from './gateway-catalog.js';
import { clientIp } from './upgrade-limits.js';
import { setUpgradePrincipal, type UpgradeVerdict, type WsProtocol } from './ws-protocol.js';

interface Route {
  protocol: WsProtocol;
  server: WebSocketServer;
}

interface PingState {
  awaiting: boolean;
  sentAt: number;
}

/** How long a socket closed for a missed pong may take before it is destroyed. */
const DEAD_PEER_GRACE_MS = 1000;

/**
 * The platform-ws adapter, made protocol-aware. A gateway declared with
 * `@WebSocketGateway({ path, protocol: '<name>' })` is served with the `WsProtocol` its
 * module registered in the `GatewayCatalog`: its own codec instead of Nest's single
 * parser, several paths matched with or without a trailing slash, authentication
 * that can refuse the upgrade with an HTTP status, its own frame limit and heartbeat.
 * Upgrades to a path nobody serves get a real `404`.
 */
export class ProtocolWsAdapter extends WsAdapter {
  private readonly log = new Logger('WsAdapter');
  private readonly routes = new Map<string, Route>();
  private readonly protocolOfSocket = new WeakMap<WebSocket, WsProtocol>();
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly dedicated: Server[] = [];
  private mainListener: ((req: IncomingMessage, socket: Duplex, head: Buffer) => void) | null = null;
  private catalogRef: GatewayCatalog | null = null;

  constructor(private readonly app: INestApplicationContext) {
    super(app);
  }

  private get catalog(): GatewayCatalog {
    if (!this.catalogRef) {
      const catalog: GatewayCatalog | null = this.app.get(GatewayCatalog, { strict: false });
      if (!catalog) throw new Error('GatewayCatalog is missing: import CoreModule');
      this.catalogRef = catalog;
    }
    return this.catalogRef;
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
    server.on('error', (err) => this.log.error(err));
    server.on('connection', (socket: WebSocket) => {
      this.protocolOfSocket.set(socket, protocol);
      // A socket-level error (reset, bad frame) is followed by 'close'; nothing to do here
      // but keep it from becoming an uncaught 'error' event.
      socket.on('error', ignore);
    });
    this.startHeartbeat(server, protocol);
    this.catalog.attachServer(protocol.name, server);

    const route: Route = { protocol, server };
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
    // A gateway has a handful of handlers: a scan costs less than a Map per connection.
    const { codec } = protocol;
    client.on('message', (raw: RawData, isBinary: boolean) => {
      let routed;
      try {
        routed = codec.decode(toBuffer(raw), isBinary);
      } catch (err) {
        // Codecs turn bad input into protocol errors; a throw is a codec bug.
        this.log.error(err);
        return;
      }
      const handler = routed && handlers.find((candidate) => candidate.message === routed.event);
      if (!routed || !handler) return;
      let result$: Observable<unknown>;
      try {
        result$ = transform(handler.callback(routed.data, routed.event));
      } catch (err) {
        this.log.error(err);
        return;
      }
      result$.subscribe({
        next: (reply) => {
          if (reply === undefined || reply === null || client.readyState !== client.OPEN) return;
          // A client that keeps sending without reading would otherwise make the replies
          // queue without bound; it is cut off like any other slow consumer.
          if (client.bufferedAmount > this.catalog.sendBufferLimit) {
            closeSlowConsumer(client, protocol.slowConsumerClose ?? SLOW_CONSUMER_CLOSE);
            return;
          }
          client.send(codec.encode(reply), { binary: codec.binary === true });
        },
        error: (err: unknown) => this.log.error(err),
      });
    });
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
    this.mainListener = (req, socket, head) => {
      let route: Route | undefined;
      try {
        route = this.routes.get(normalize(new URL(req.url ?? '/', 'http://localhost').pathname));
      } catch {
        reject(socket, { accept: false, status: 400 });
        return;
      }
      if (!route) {
        reject(socket, { accept: false, status: 404 });
        return;
      }
      void this.upgrade(route, req, socket, head);
    };
    httpServer.on('upgrade', this.mainListener);
  }

  private listenOnDedicatedPort(port: number, route: Route): void {
    const server = createServer((_req, res) => {
      res.writeHead(426, { 'Content-Type': 'text/plain', Connection: 'close' }).end('Upgrade Required');
    });
    // Any path: the clients of such a port were written against a server that ignored it.
    server.on(
      'upgrade',
      (req: IncomingMessage, socket: Duplex, head: Buffer) => void this.upgrade(route, req, socket, head),
    );
    server.on('error', (err) => {
      // A listener that could not bind leaves the protocol unreachable for its hard-wired
      // clients: say so loudly and keep the instance out of rotation (/health/ready 503).
      const problem = `dedicated port ${port} for ${route.protocol.name} failed: ${err.message}`;
      this.log.error(problem);
      this.catalog.fail(problem);
    });
    server.listen(port, this.catalog.listenHost);
    this.dedicated.push(server);
  }

  private async upgrade(route: Route, req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    // Not a closure: one here would share this call's scope, and so keep the upgrade
    // request and all its headers alive for as long as the socket is open.
    socket.on('error', destroySocket);
    if (this.catalog.shuttingDown) {
      reject(socket, { accept: false, status: 503 });
      return;
    }
    const { limits } = this.catalog;
    const refusal = limits.check(req);
    if (refusal) {
      reject(socket, refusal);
      return;
    }
    // The slot is taken before the handshake, so upgrades still authenticating count
    // against the caps too; it is given back when the TCP socket goes, however it goes.
    socket.once('close', limits.opened(req));
    let verdict: UpgradeVerdict = { accept: true };
    if (route.protocol.authenticate) {
      const attempt = limits.beginAuth(clientIp(req));
      if (!attempt) {
        reject(socket, { accept: false, status: 429, message: 'Too many failed authentications' });
        return;
      }
      try {
        verdict = await route.protocol.authenticate(req);
      } catch (err) {
        attempt.succeeded();
        this.log.error(err);
        reject(socket, { accept: false, status: 503 });
        return;
      }
      // A refused credential stays charged to the address's failure budget.
      if (!verdict.accept && (verdict.status === 401 || verdict.status === 403)) attempt.failed();
      else attempt.succeeded();
    }
    if (!verdict.accept) {
      reject(socket, verdict);
      return;
    }
    if (socket.destroyed) return;
    setUpgradePrincipal(req, verdict.principal);
    route.server.handleUpgrade(req, socket, head, (ws) => route.server.emit('connection', ws, req));
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

function reject(socket: Duplex, verdict: Extract<UpgradeVerdict, { accept: false }>): void {
  if (socket.destroyed) return;
  const text = STATUS_CODES[verdict.status] ?? 'Error';
  const body = verdict.message ?? text;
  socket.end(
    `HTTP/1.1 ${verdict.status} ${text}\r\n` +
      'Connection: close\r\n' +
      'Content-Type: text/plain; charset=utf-8\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n` +
      body,
  );
}
