import { watch, type FSWatcher } from 'node:fs';
import { createServer as createHttpServer, type RequestListener, type Server } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer, type ServerOptions } from 'node:https';
import { dirname } from 'node:path';
import type { Logger as Pino } from 'pino';
import { readTlsPair, TlsFilesError, type TlsFiles, type TlsPair } from './tls-files.js';

/** File events come in bursts (a rename, a symlink swap, a write per file): one reload per burst. */
export const RELOAD_DEBOUNCE_MS = 250;

/** What made a reload happen, for its log line. */
export type ReloadReason = 'SIGHUP' | 'file change';

/** The context of every TLS listener, by the main HTTP server of the application it belongs to. */
const contexts = new WeakMap<object, TlsContext>();

/**
 * The gateway's own TLS: the certificate and key every listener serves (the main port, the
 * dedicated protocol ports, the metrics port), and their reload. A reload re-reads both
 * files and, only when the pair is good, hands it to every listener with
 * `setSecureContext`: new connections get the new certificate, open ones keep theirs.
 * A bad pair is logged and the listeners keep the one they have.
 *
 * Not a Nest provider: the main listener is created by `NestFactory.create` with its
 * `httpsOptions`, so the files are read before the container exists. The context is
 * filed under the main HTTP server instead, where the adapter and the metrics server,
 * which open the other listeners, find it (`TlsContext.of`).
 */
export class TlsContext {
  private readonly servers = new Set<HttpsServer>();
  private readonly watchers: FSWatcher[] = [];
  private timer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(
    private readonly files: TlsFiles,
    private current: TlsPair,
    private readonly log: Pino,
  ) {}

  /** The context the listeners like `mainServer` are made with, or null when it serves plain HTTP. */
  static of(mainServer: object | undefined): TlsContext | null {
    return mainServer === undefined ? null : (contexts.get(mainServer) ?? null);
  }

  /** `https.createServer` options for the current pair. */
  get options(): ServerOptions {
    return { cert: this.current.cert, key: this.current.key };
  }

  /** The certificate served now (serial, subject, expiry), for log lines and tests. */
  get leaf(): TlsPair['leaf'] {
    return this.current.leaf;
  }

  /** Makes `server` the application's main listener: the one the others are made like. */
  adopt(server: HttpsServer): void {
    contexts.set(server, this);
    this.track(server);
    server.once('close', () => this.close());
  }

  /** A new HTTPS listener serving the current pair, reloaded with the others. */
  createServer(handler: RequestListener): HttpsServer {
    const server = createHttpsServer(this.options, handler);
    this.track(server);
    return server;
  }

  /**
   * Re-reads the files and applies the pair to every listener. `changedOnly` (file events)
   * skips a pair identical to the current one, so an unrelated file in the directory does
   * not log a reload. False when the files are bad: the listeners keep the current pair.
   */
  reload(reason: ReloadReason, { changedOnly = false } = {}): boolean {
    let pair: TlsPair;
    try {
      pair = readTlsPair(this.files);
    } catch (err) {
      const problems = err instanceof TlsFilesError ? err.problems : ['the files could not be checked'];
      this.log.error(
        { reason, problems, serving: this.current.leaf.serial },
        'tls reload failed: still serving the previous certificate',
      );
      return false;
    }
    if (changedOnly && pair.cert === this.current.cert && pair.key === this.current.key) return true;
    for (const server of this.servers) server.setSecureContext({ cert: pair.cert, key: pair.key });
    this.current = pair;
    this.log.info({ reason, ...pair.leaf, listeners: this.servers.size }, 'tls certificate reloaded');
    if (Date.parse(pair.leaf.validTo) < Date.now()) this.log.warn({ ...pair.leaf }, 'tls certificate has expired');
    return true;
  }

  /**
   * Reloads after changes in the files' directories. The directories, not the files:
   * cert-manager, a Kubernetes Secret volume and certbot replace a file by a rename or a
   * symlink swap, after which a watch on the old file would hear nothing more.
   */
  watch(debounceMs = RELOAD_DEBOUNCE_MS): void {
    for (const dir of new Set([dirname(this.files.certFile), dirname(this.files.keyFile)])) {
      try {
        const watcher = watch(dir, { persistent: false }, () => this.schedule(debounceMs));
        watcher.on('error', (err) => this.log.warn({ err: String(err), dir }, 'tls directory watch failed'));
        this.watchers.push(watcher);
      } catch (err) {
        // Reloading on SIGHUP still works; say why changes alone will not be picked up.
        this.log.warn({ err: String(err), dir }, 'tls directory cannot be watched: reload with SIGHUP');
      }
    }
  }

  /** Stops watching (the main listener closed). */
  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    for (const watcher of this.watchers.splice(0)) watcher.close();
  }

  private schedule(debounceMs: number): void {
    if (this.closed) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.reload('file change', { changedOnly: true });
    }, debounceMs);
    this.timer.unref();
  }

  private track(server: HttpsServer): void {
    this.servers.add(server);
    server.once('close', () => this.servers.delete(server));
    // A client that does not trust the certificate, or speaks plain HTTP to a TLS port.
    server.on('tlsClientError', (err: NodeJS.ErrnoException) =>
      this.log.debug({ code: err.code ?? null }, 'tls handshake failed'),
    );
  }
}

/** A listener like the application's main one: HTTPS with its certificate when it has one, else HTTP. */
export function createListener(mainServer: object | undefined, handler: RequestListener): Server {
  const tls = TlsContext.of(mainServer);
  return tls ? tls.createServer(handler) : createHttpServer(handler);
}
