import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { WsTestClient } from './ws-client.js';

/** A real socket pair: the server end (what a gateway holds) and a test client on the other end. */
export interface WsPair {
  server: WebSocket;
  client: WsTestClient;
}

/**
 * A bare `ws` server on an ephemeral port that hands out connected socket pairs, for
 * unit specs that need real sockets behind a `Connection`.
 */
export class WsPairFactory {
  private readonly clients: WsTestClient[] = [];

  private constructor(private readonly wss: WebSocketServer) {}

  static async start(): Promise<WsPairFactory> {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await once(wss, 'listening');
    return new WsPairFactory(wss);
  }

  async pair(): Promise<WsPair> {
    const { port } = this.wss.address() as AddressInfo;
    const accepted = once(this.wss, 'connection') as Promise<[WebSocket]>;
    const client = await WsTestClient.connect(`ws://127.0.0.1:${port}`);
    this.clients.push(client);
    const [server] = await accepted;
    server.on('error', () => undefined);
    return { server, client };
  }

  async close(): Promise<void> {
    for (const client of this.clients) client.terminate();
    for (const socket of this.wss.clients) socket.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }
}
