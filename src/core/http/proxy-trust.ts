import { Injectable } from '@nestjs/common';
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import proxyAddr from 'proxy-addr';
import { AppConfig } from '../../config/app-config.js';
import { listEntries } from '../../config/env.schema.js';

/** How a client reached the gateway: the scheme and host it used, as far as can be believed. */
export interface ClientOrigin {
  /** TLS between the client and the first hop (the gateway itself, or a trusted proxy). */
  secure: boolean;
  /** The host name the client asked for, without a port; undefined when none was sent. */
  hostname: string | undefined;
  /** The port the client connected to, when the request says it. */
  port: number | undefined;
  /** The request came through a trusted proxy: the scheme, host and port are the proxy's. */
  viaProxy: boolean;
}

/**
 * Which forwarded headers to believe (`TRUST_PROXY`). Only when the socket's peer is a
 * trusted proxy do `X-Forwarded-For` (the right-most address that is not itself a trusted
 * proxy is the client), `X-Forwarded-Proto`, `X-Forwarded-Host` and `X-Forwarded-Port`
 * count; from anyone else they are the client's to forge and are ignored. Every per-IP
 * limit, the logs and hatsu discovery read the client through here.
 */
@Injectable()
export class ProxyTrust {
  private readonly trust: ((address: string, hop: number) => boolean) | null;

  constructor(config: AppConfig) {
    const entries = listEntries(config.TRUST_PROXY);
    this.trust = entries.length > 0 ? proxyAddr.compile(entries) : null;
  }

  /** The client's address. */
  clientIp(req: IncomingMessage): string {
    const peer = req.socket.remoteAddress;
    if (peer === undefined) return 'unknown';
    if (this.trust === null) return peer;
    return proxyAddr(req, this.trust);
  }

  /** Whether an address is one of the trusted proxies. */
  isTrusted(address: string): boolean {
    return this.trust !== null && this.trust(address, 0);
  }

  /** Whether the socket's peer is a trusted proxy. */
  fromProxy(req: IncomingMessage): boolean {
    const peer = req.socket.remoteAddress;
    return peer !== undefined && this.isTrusted(peer);
  }

  origin(req: IncomingMessage): ClientOrigin {
    const viaProxy = this.fromProxy(req);
    const proto = viaProxy ? firstValue(req.headers['x-forwarded-proto']) : undefined;
    const secure = proto !== undefined ? ['https', 'wss'].includes(proto.toLowerCase()) : isTls(req);
    const host = (viaProxy ? firstValue(req.headers['x-forwarded-host']) : undefined) ?? req.headers.host;
    const { hostname, port } = splitHost(host);
    const forwardedPort = viaProxy ? parsePort(firstValue(req.headers['x-forwarded-port'])) : undefined;
    return { secure, hostname, port: forwardedPort ?? port, viaProxy };
  }
}

function isTls(req: IncomingMessage): boolean {
  return (req.socket as Partial<TLSSocket>).encrypted === true;
}

/** The first entry of a comma-separated forwarded header: the hop nearest the client. */
function firstValue(header: string | string[] | undefined): string | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  const first = value?.split(',')[0]?.trim();
  return first === undefined || first === '' ? undefined : first;
}

/** `name[:port]` or `[v6][:port]` of a Host header. */
function splitHost(host: string | undefined): { hostname: string | undefined; port: number | undefined } {
  if (host === undefined || host === '') return { hostname: undefined, port: undefined };
  const match = /^(\[[^\]]*\]|[^:]*)(?::(\d*))?$/.exec(host);
  if (!match) return { hostname: host, port: undefined };
  return { hostname: match[1], port: parsePort(match[2]) };
}

function parsePort(text: string | undefined): number | undefined {
  if (text === undefined || !/^\d{1,5}$/.test(text)) return undefined;
  const port = Number(text);
  return port >= 1 && port <= 65535 ? port : undefined;
}
