import { Injectable, type BeforeApplicationShutdown, type OnApplicationBootstrap } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { Server } from 'node:http';
import type { Logger as Pino } from 'pino';
import { AppConfig } from '../../config/app-config.js';
import { Engine } from '../../core/engine/engine.js';
import type { ClientOrigin } from '../../core/http/proxy-trust.js';
import { GatehouseLogger } from '../../core/logging/gatehouse-logger.js';
import { ClientRegistry } from '../../core/registry/client-registry.js';
import { HatsuData, type InstanceEntry } from './hatsu-data.js';
import { HATSU } from './hatsu.codes.js';
import { HatsuService } from './hatsu.service.js';

/** The answer of `GET /available` and `GET /port`. */
export interface HatsuOffer {
  port: number;
  url: string;
}

/**
 * An instance's entry as it is written: `InstanceEntry` and whether the instance serves TLS
 * itself (`TLS_CERT_FILE`), so that any instance offers it with the right scheme. Entries
 * written without the field (an older version) take the scheme of the discovery request.
 */
export interface AdvertisedEntry extends InstanceEntry {
  tls?: boolean;
}

/** An instance re-writes its entry this often, so a Redis that lost its data is refilled soon. */
const REFRESH_MS = 2000;
/** An entry outlives its last write by this much: three missed refreshes. */
const ENTRY_TTL_MS = 3 * REFRESH_MS;

/**
 * hatsu discovery (docs/protocols/hatsu.md "Discovery"). Each instance advertises its
 * port, its public URL and its number of open hatsu sockets in the Store; `/available`
 * offers the live instance (per the registry's heartbeats) with the fewest sockets,
 * preferring the instance asked on a tie. Without Redis there is one instance: itself.
 */
@Injectable()
export class HatsuDiscovery implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly log: Pino;
  private listeningPort: number | null = null;
  private timer: NodeJS.Timeout | null = null;
  private stopLoad: (() => void) | null = null;
  private writing = false;
  private dirty = false;
  private stopped = false;

  constructor(
    private readonly config: AppConfig,
    private readonly engine: Engine,
    private readonly registry: ClientRegistry,
    private readonly data: HatsuData,
    private readonly hatsu: HatsuService,
    private readonly adapterHost: HttpAdapterHost,
    logger: GatehouseLogger,
  ) {
    this.log = logger.child({ protocol: HATSU, context: 'HatsuDiscovery' });
  }

  onApplicationBootstrap(): void {
    const server = this.adapterHost.httpAdapter?.getHttpServer() as Server | undefined;
    if (server) {
      if (server.listening) this.listened(server);
      else server.once('listening', () => this.listened(server));
    }
    if (this.engine.kind !== 'redis') return;
    this.stopLoad = this.hatsu.onLoadChange(() => this.advertise());
    this.timer = setInterval(() => this.advertise(), REFRESH_MS);
    this.timer.unref();
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.stopLoad?.();
    if (this.engine.kind === 'redis') await this.data.deleteInstance(this.registry.instanceId).catch(() => undefined);
  }

  /** The port this instance advertises: `HATSU_PORT` when set (any path works there), else the main port. */
  get port(): number {
    return this.config.HATSU_PORT ?? this.listeningPort ?? this.config.PORT;
  }

  /** The least-loaded live instance, as a client should reach it from `origin`. */
  async available(origin: ClientOrigin): Promise<HatsuOffer> {
    const self = { id: this.registry.instanceId, entry: this.entry() };
    if (this.engine.kind !== 'redis') return offer(self.entry, origin);
    let best = self;
    try {
      const others = (await this.registry.instances()).filter((id) => id !== self.id);
      const entries = await Promise.all(others.map(async (id) => ({ id, entry: await this.data.getInstance(id) })));
      for (const candidate of entries) {
        const { id, entry } = candidate;
        if (!entry) continue;
        const fewer = entry.sessions < best.entry.sessions;
        const tieBreak = entry.sessions === best.entry.sessions && best !== self && id < best.id;
        if (fewer || tieBreak) best = { id, entry };
      }
    } catch (err) {
      // Discovery degrades to "this instance" rather than failing a client that could connect here.
      this.log.warn({ err: String(err) }, 'discovery fell back to this instance');
    }
    return offer(best.entry, origin);
  }

  private entry(): AdvertisedEntry {
    return {
      port: this.port,
      public: this.config.HATSU_PUBLIC_URL ?? null,
      sessions: this.hatsu.load,
      tls: this.config.TLS_CERT_FILE !== undefined,
    };
  }

  private listened(server: Server): void {
    const address = server.address();
    if (address !== null && typeof address === 'object') this.listeningPort = address.port;
    this.advertise();
  }

  /** Writes this instance's entry; calls during a write coalesce into one more write after it. */
  private advertise(): void {
    if (this.engine.kind !== 'redis' || this.stopped || this.listeningPort === null) return;
    if (this.writing) {
      this.dirty = true;
      return;
    }
    this.writing = true;
    this.data
      .putInstance(this.registry.instanceId, this.entry(), ENTRY_TTL_MS)
      .catch((err: unknown) => this.log.debug({ err: String(err) }, 'discovery entry not written'))
      .finally(() => {
        this.writing = false;
        if (!this.dirty) return;
        this.dirty = false;
        this.advertise();
      });
  }
}

/**
 * `ws[s]://host:port/hatsu` for an instance's entry (docs/protocols/hatsu.md "Discovery"):
 * its public URL when it has one; behind a trusted proxy, the proxy's scheme, host and port
 * (the client can only reach the instances through it); else the host the client asked for
 * and the instance's own port, `wss` when the instance serves TLS itself.
 */
export function offer(entry: Pick<AdvertisedEntry, 'port' | 'public' | 'tls'>, origin: ClientOrigin): HatsuOffer {
  if (entry.public !== null) {
    const base = new URL(entry.public);
    const secure = base.protocol === 'https:' || base.protocol === 'wss:';
    // URL drops a port equal to the scheme's default (wss://h:443), so read it from the text.
    const explicit = /^[a-z][a-z0-9+.-]*:\/\/(?:[^/?#@]*@)?(?:\[[^\]]*\]|[^/?#:]*):(\d+)/i.exec(entry.public);
    const port = explicit ? Number(explicit[1]) : entry.port;
    const path = base.pathname.replace(/\/+$/, '');
    return { port, url: `${secure ? 'wss' : 'ws'}://${base.hostname}:${port}${path}/hatsu` };
  }
  // Behind a proxy its scheme and port; else the instance's own, whichever instance was asked.
  const secure = origin.viaProxy || typeof entry.tls !== 'boolean' ? origin.secure : entry.tls;
  const port = origin.viaProxy ? (origin.port ?? (origin.secure ? 443 : 80)) : entry.port;
  return { port, url: `${secure ? 'wss' : 'ws'}://${safeHost(origin.hostname)}:${port}/hatsu` };
}

/** The request's host name when it is a plain name or address; anything else becomes `localhost`. */
function safeHost(host: string | undefined): string {
  if (host === undefined) return 'localhost';
  if (/^[A-Za-z0-9.-]{1,253}$/.test(host) || /^\[[0-9A-Fa-f:.]{2,45}\]$/.test(host)) return host;
  return 'localhost';
}
