import type { Logger as Pino } from 'pino';
import type { WebSocket } from 'ws';
import { jsonTopic, signalTopic } from '../bus/bus-topic.js';
import type { BusTopic, EventBus, Target } from '../bus/event-bus.js';
import { isJsonObject } from '../json.js';
import { UNCOUNTED, type ProtocolStats } from '../metrics/protocol-stats.js';
import { addToSet, deleteFromSet } from '../set-map.js';
import { PreparedFrame } from '../ws/prepared-frame.js';
import type { ClientInfo, CloseSpec, Connection } from './connection.js';

const NONE: ReadonlySet<Connection> = new Set();

/** `DELETE /admin/connections/:id` for a client on another instance: the target names it. */
const DISCONNECT = signalTopic('control.disconnect');

interface Revocation {
  protocols: string[];
  credential: string;
  close: CloseSpec;
  /** Connections filed with this version of the credential stay (a rotated token's new digest). */
  keep?: string;
}

/** Revocations, to every instance: a message of another build or garbage is dropped by `parseRevocation`. */
const REVOKE = jsonTopic<Revocation>('control.revoke', parseRevocation);

/** What an instance does with each of its connections a revocation names (see `onRevoke`). */
export type RevokeHandler = (connection: Connection, close: CloseSpec) => void;

const closeConnection: RevokeHandler = (connection, close) => connection.close(close);

/**
 * What `count` answers from the size of one index: every connection of a protocol, or
 * those of one user or in one channel. Several ids are left out on purpose: a connection
 * in two channels would be counted twice, and only `resolve` can remove the duplicate.
 */
export type CountTarget = { readonly kind: 'all' } | { readonly kind: 'user' | 'channel'; readonly id: string };

/**
 * Who is connected where. The local part (this instance's connections, indexed by
 * protocol + user, protocol + channel and protocol + credential) is the same for every
 * engine; the drivers differ in the cluster-wide view used by the admin API and in where
 * the counts of the other instances come from.
 */
export abstract class ClientRegistry {
  private readonly byId = new Map<string, Connection>();
  private readonly bySocket = new WeakMap<WebSocket, Connection>();
  private readonly byUser = new Map<string, Set<Connection>>();
  private readonly byChannel = new Map<string, Set<Connection>>();
  private readonly byCredential = new Map<string, Set<Connection>>();
  private readonly byProtocol = new Map<string, number>();
  private readonly revokeHandlers = new Map<string, RevokeHandler>();
  /** Protocols whose counts the other instances can read (see `shareCounts`). */
  private readonly shared = new Set<string>();
  private statsOf: (protocol: string) => ProtocolStats = () => UNCOUNTED;

  protected constructor(
    protected readonly bus: EventBus,
    protected readonly log: Pino,
  ) {
    bus.subscribe(DISCONNECT, (_, target) => {
      if (target.kind !== 'client') return;
      for (const id of target.ids) this.byId.get(id)?.close();
    });
    bus.subscribe(REVOKE, (revocation) => this.revoked(revocation));
  }

  get instanceId(): string {
    return this.bus.instanceId;
  }

  /**
   * Resolves once the bus reaches every connection indexed so far (see `EventBus.settled`)
   * and the other instances see them in their listings and counts; null when both are
   * already so. A protocol awaits it before it tells a client it is ready, so that a
   * publish or an admin count made anywhere right after includes the client.
   */
  settled(): Promise<void> | null {
    const bus = this.bus.settled();
    const mirror = this.mirrored();
    if (!mirror) return bus;
    return bus ? Promise.all([bus, mirror]).then(() => undefined) : mirror;
  }

  /** Resolves once the cluster-wide view holds every change made so far; null when it does. */
  protected mirrored(): Promise<void> | null {
    return null;
  }

  /** Where each protocol's connections count their deliveries (the metrics). */
  countWith(statsOf: (protocol: string) => ProtocolStats): void {
    this.statsOf = statsOf;
  }

  // ---- local connections -------------------------------------------------------

  add(connection: Connection): void {
    const existing = this.byId.get(connection.id);
    if (existing === connection) return;
    // Ids are unique; should one ever be reused, the old connection's counts must not linger.
    if (existing) this.remove(existing);
    connection._stats = this.statsOf(connection.protocol);
    this.byId.set(connection.id, connection);
    this.bySocket.set(connection.socket, connection);
    this.bus.watch(connection.protocol, 'client', connection.id);
    this.total(connection.protocol, 1);
    if (connection.user !== null) this.indexUser(connection, connection.user);
    for (const channel of connection.channels) this.indexChannel(connection, channel);
    if (connection.credential !== null) this.indexCredential(connection, connection.credential);
    this.mirror(connection);
    if (this.log.isLevelEnabled('debug')) {
      this.log.debug(
        { protocol: connection.protocol, clientId: connection.id, ip: connection.ip },
        'connection opened',
      );
    }
  }

  remove(connection: Connection): void {
    if (this.byId.get(connection.id) !== connection) return;
    this.byId.delete(connection.id);
    this.bySocket.delete(connection.socket);
    this.bus.unwatch(connection.protocol, 'client', connection.id);
    this.total(connection.protocol, -1);
    if (connection.user !== null) this.unindexUser(connection, connection.user);
    for (const channel of connection.channels) this.unindexChannel(connection, channel);
    if (connection.credential !== null) this.unindexCredential(connection, connection.credential);
    this.unmirror(connection.id);
  }

  setUser(connection: Connection, user: string | null): void {
    if (connection.user === user) return;
    const tracked = this.byId.get(connection.id) === connection;
    if (tracked && connection.user !== null) this.unindexUser(connection, connection.user);
    connection._user = user;
    if (tracked && user !== null) this.indexUser(connection, user);
    if (tracked) this.mirror(connection);
  }

  /** Replaces the channels a connection is in. */
  setChannels(connection: Connection, channels: Iterable<string>): void {
    const next = new Set(channels);
    const tracked = this.byId.get(connection.id) === connection;
    for (const channel of connection._channels) {
      if (next.has(channel)) continue;
      connection._channels.delete(channel);
      if (tracked) this.unindexChannel(connection, channel);
    }
    for (const channel of next) {
      if (connection._channels.has(channel)) continue;
      connection._channels.add(channel);
      if (tracked) this.indexChannel(connection, channel);
    }
    if (tracked) this.mirror(connection);
  }

  /**
   * Files the connection under the credential it authenticated with (a token id, a session
   * key, a bot), so that `revoke` finds it; `version` tells credentials of one name apart (a
   * token's digest, so that a rotation can spare the connections holding the new one). Not
   * part of what the admin API lists.
   */
  setCredential(connection: Connection, credential: string | null, version: string | null = null): void {
    connection._credentialVersion = version;
    if (connection.credential === credential) return;
    const tracked = this.byId.get(connection.id) === connection;
    if (tracked && connection.credential !== null) this.unindexCredential(connection, connection.credential);
    connection._credential = credential;
    if (tracked && credential !== null) this.indexCredential(connection, credential);
  }

  /**
   * This instance's connections of `protocol` by credential, taken now (the sets stay live),
   * for a protocol re-checking its credentials after a bus gap.
   */
  credentials(protocol: string): [credential: string, connections: ReadonlySet<Connection>][] {
    const prefix = key(protocol, '');
    const found: [string, ReadonlySet<Connection>][] = [];
    for (const [k, set] of this.byCredential) if (k.startsWith(prefix)) found.push([k.slice(prefix.length), set]);
    return found;
  }

  /**
   * Closes every connection of `protocols` filed under `credential` with `close`, on every
   * instance, once each; with `keep`, those filed with that version stay. Announced even
   * when no instance holds one: a retry after a publish that failed must still reach the
   * instances that missed it.
   */
  revoke(
    protocols: string | readonly string[],
    credential: string,
    close: CloseSpec,
    options: { keep?: string } = {},
  ): Promise<void> {
    const revocation: Revocation = {
      protocols: typeof protocols === 'string' ? [protocols] : [...protocols],
      credential,
      close: { code: close.code, reason: close.reason },
    };
    if (options.keep !== undefined) revocation.keep = options.keep;
    return this.bus.publish(REVOKE, { kind: 'all' }, revocation);
  }

  /**
   * After every gap in the bus, re-checks the credentials of `protocols` that connections
   * here hold: a revocation published during the gap never arrived. `read` asks the store
   * once per credential (given one of its connections); each connection `valid` no longer
   * accepts goes to `revoked`. A failed read ends the pass: Redis went again, and the next
   * rejoin runs it again.
   */
  recheckOnRejoin<T>(
    protocols: string | readonly string[],
    read: (credential: string, sample: Connection) => Promise<T>,
    valid: (connection: Connection, current: T) => boolean,
    revoked: (connection: Connection) => void,
  ): () => void {
    const names = typeof protocols === 'string' ? [protocols] : protocols;
    return this.bus.onRejoin(() => {
      void (async () => {
        for (const protocol of names) {
          for (const [credential, connections] of this.credentials(protocol)) {
            const [sample] = connections;
            if (!sample) continue;
            let current: T;
            try {
              current = await read(credential, sample);
            } catch {
              return;
            }
            for (const connection of [...connections]) if (!valid(connection, current)) revoked(connection);
          }
        }
      })();
    });
  }

  /**
   * Replaces the close `revoke` gives this protocol's connections, for a protocol whose
   * session must be settled first (nothing it sends counts any more, queued messages go out).
   */
  onRevoke(protocol: string, handler: RevokeHandler): () => void {
    this.revokeHandlers.set(protocol, handler);
    return () => {
      if (this.revokeHandlers.get(protocol) === handler) this.revokeHandlers.delete(protocol);
    };
  }

  /**
   * Delivers everything published on `topic`, by any instance, to this instance's
   * connections of `protocol` (by default the topic's name): the bytes as published, never
   * parsed or re-encoded.
   */
  relay(topic: BusTopic<Buffer>, protocol = topic.name): () => void {
    return this.bus.subscribe(topic, (payload, target) => this.deliver(protocol, target, payload));
  }

  get(id: string): Connection | undefined {
    return this.byId.get(id);
  }

  /** The connection a protocol registered for this socket, while it is registered. */
  connectionOf(socket: WebSocket): Connection | undefined {
    return this.bySocket.get(socket);
  }

  get size(): number {
    return this.byId.size;
  }

  local(): IterableIterator<Connection> {
    return this.byId.values();
  }

  /** This instance's connections of `protocol` that `target` names, each once. */
  resolve(protocol: string, target: Target): Set<Connection> {
    const found = new Set<Connection>();
    switch (target.kind) {
      case 'all':
        for (const connection of this.byId.values()) if (connection.protocol === protocol) found.add(connection);
        break;
      case 'client':
        for (const id of target.ids) {
          const connection = this.byId.get(id);
          if (connection?.protocol === protocol) found.add(connection);
        }
        break;
      case 'user':
        for (const id of target.ids) addAll(found, this.byUser.get(key(protocol, id)));
        break;
      case 'channel':
        for (const id of target.ids) addAll(found, this.byChannel.get(key(protocol, id)));
        break;
    }
    return found;
  }

  /**
   * Writes the same bytes to every local connection `target` names; returns how many
   * took them. The bytes are encoded once by the caller, never per recipient.
   */
  deliver(protocol: string, target: Target, payload: Buffer, binary = false): number {
    let sent = 0;
    const prepared = new PreparedFrame(payload, binary);
    for (const connection of this.recipients(protocol, target)) if (connection.sendPrepared(prepared)) sent++;
    return sent;
  }

  /**
   * `resolve` for a fan-out that iterates once, right away: the common case (one user or one
   * channel) is the index's own set, no copy and no dedup needed. Connections may leave the
   * set while it is walked (a slow consumer cut off); none may be added.
   */
  recipients(protocol: string, target: Target): Iterable<Connection> {
    let found: Iterable<Connection>;
    if (target.kind === 'all' || target.kind === 'client' || target.ids.length !== 1) {
      found = this.resolve(protocol, target);
    } else {
      const index = target.kind === 'user' ? this.byUser : this.byChannel;
      found = index.get(key(protocol, target.ids[0] as string)) ?? NONE;
    }
    const seen = target.kind === 'all' ? undefined : target.seen;
    return seen === undefined ? found : unseen(found, seen);
  }

  /** How many of this instance's connections `target` names: the size of one index, O(1). */
  localCount(protocol: string, target: CountTarget): number {
    switch (target.kind) {
      case 'all':
        return this.byProtocol.get(protocol) ?? 0;
      case 'user':
        return this.byUser.get(key(protocol, target.id))?.size ?? 0;
      case 'channel':
        return this.byChannel.get(key(protocol, target.id))?.size ?? 0;
    }
  }

  /**
   * How many connections `target` names on every live instance: this instance's exactly
   * (read when called), the others' as they last mirrored them (at most a tick behind).
   * Costs O(instances), never O(clients).
   */
  async count(protocol: string, target: CountTarget): Promise<number> {
    const local = this.localCount(protocol, target);
    return local + (await this.remoteCount(protocol, target));
  }

  /**
   * Makes this protocol's counts readable by the other instances' `count`. With Redis that
   * costs a field per user and channel in use, written as they change, so only a protocol
   * that counts across instances asks for it (before its first connection).
   */
  shareCounts(protocol: string): void {
    this.shared.add(protocol);
  }

  protected isShared(protocol: string): boolean {
    return this.shared.has(protocol);
  }

  /**
   * `count` for the other live instances only (for a protocol that `shareCounts`). A caller that must count its own
   * connections in the same synchronous step as it delivers to them (so that the local
   * part is exact) awaits this first, then adds `localCount`.
   */
  abstract remoteCount(protocol: string, target: CountTarget): Promise<number>;

  // ---- cluster-wide view -----------------------------------------------------------

  /** Every client on every live instance. */
  abstract list(): Promise<ClientInfo[]>;

  /** The ids of every live instance, this one included. */
  abstract instances(): Promise<string[]>;

  /** Where a client is connected, or null. */
  abstract locate(id: string): Promise<ClientInfo | null>;

  /**
   * Closes a client with its protocol's normal close code, on whichever instance
   * holds it. Resolves false when no instance does.
   */
  async disconnect(id: string): Promise<boolean> {
    const local = this.byId.get(id);
    if (local) {
      local.close();
      return true;
    }
    const found = await this.locate(id);
    if (!found) return false;
    await this.bus.publish(DISCONNECT, { kind: 'client', ids: [id] }, true);
    return true;
  }

  protected abstract mirror(connection: Connection): void;
  protected abstract unmirror(id: string): void;
  /** Runs whenever a count of `localCount` changes, with its new value (0 once it is gone). */
  protected abstract countChanged(protocol: string, target: CountTarget, size: number): void;

  /** Every non-zero local count of the shared protocols, for a driver that rewrites its mirror of them all. */
  protected *localCounts(): Generator<[protocol: string, target: CountTarget, size: number]> {
    for (const [protocol, size] of this.byProtocol)
      if (this.shared.has(protocol)) yield [protocol, { kind: 'all' }, size];
    for (const [k, set] of this.byUser) {
      const [protocol, target] = split(k, 'user');
      if (this.shared.has(protocol)) yield [protocol, target, set.size];
    }
    for (const [k, set] of this.byChannel) {
      const [protocol, target] = split(k, 'channel');
      if (this.shared.has(protocol)) yield [protocol, target, set.size];
    }
  }

  private revoked({ protocols, credential, close, keep }: Revocation): void {
    let closed = 0;
    for (const protocol of protocols) {
      const connections = this.byCredential.get(key(protocol, credential));
      if (!connections) continue;
      const handler = this.revokeHandlers.get(protocol) ?? closeConnection;
      for (const connection of [...connections]) {
        if (keep !== undefined && connection._credentialVersion === keep) continue;
        handler(connection, close);
        closed++;
      }
    }
    if (closed > 0) this.log.info({ protocols, connections: closed }, 'closed the connections of a revoked credential');
  }

  private changed(protocol: string, target: CountTarget, size: number): void {
    if (this.shared.has(protocol)) this.countChanged(protocol, target, size);
  }

  private total(protocol: string, delta: number): void {
    const size = (this.byProtocol.get(protocol) ?? 0) + delta;
    if (size > 0) this.byProtocol.set(protocol, size);
    else this.byProtocol.delete(protocol);
    this.changed(protocol, { kind: 'all' }, size);
    if (delta > 0 && size === 1) this.bus.watch(protocol, 'all', '');
    if (size === 0) this.bus.unwatch(protocol, 'all', '');
  }

  private indexUser(connection: Connection, user: string): void {
    const size = addToSet(this.byUser, key(connection.protocol, user), connection);
    this.changed(connection.protocol, { kind: 'user', id: user }, size);
    if (size === 1) this.bus.watch(connection.protocol, 'user', user);
  }

  private unindexUser(connection: Connection, user: string): void {
    const size = deleteFromSet(this.byUser, key(connection.protocol, user), connection);
    this.changed(connection.protocol, { kind: 'user', id: user }, size);
    if (size === 0) this.bus.unwatch(connection.protocol, 'user', user);
  }

  private indexChannel(connection: Connection, channel: string): void {
    const size = addToSet(this.byChannel, key(connection.protocol, channel), connection);
    this.changed(connection.protocol, { kind: 'channel', id: channel }, size);
    if (size === 1) this.bus.watch(connection.protocol, 'channel', channel);
  }

  private unindexChannel(connection: Connection, channel: string): void {
    const size = deleteFromSet(this.byChannel, key(connection.protocol, channel), connection);
    this.changed(connection.protocol, { kind: 'channel', id: channel }, size);
    if (size === 0) this.bus.unwatch(connection.protocol, 'channel', channel);
  }

  private indexCredential(connection: Connection, credential: string): void {
    addToSet(this.byCredential, key(connection.protocol, credential), connection);
  }

  private unindexCredential(connection: Connection, credential: string): void {
    deleteFromSet(this.byCredential, key(connection.protocol, credential), connection);
  }
}

function key(protocol: string, id: string): string {
  return `${protocol}\u0000${id}`;
}

/** `key` taken apart again (a protocol name never holds the separator). */
function split(k: string, kind: 'user' | 'channel'): [string, CountTarget] {
  const at = k.indexOf('\u0000');
  return [k.slice(0, at), { kind, id: k.slice(at + 1) }];
}

/** A revocation as `revoke` wrote it, or null for anything else on the topic (another build, garbage). */
function parseRevocation(value: unknown): Revocation | null {
  if (!isJsonObject(value)) return null;
  const { protocols, credential, close, keep } = value;
  if (!Array.isArray(protocols) || !protocols.every((p): p is string => typeof p === 'string')) return null;
  if (typeof credential !== 'string' || !isJsonObject(close)) return null;
  const { code, reason } = close;
  if (typeof code !== 'number' || typeof reason !== 'string') return null;
  if (keep !== undefined && typeof keep !== 'string') return null;
  return keep === undefined
    ? { protocols, credential, close: { code, reason } }
    : { protocols, credential, close: { code, reason }, keep };
}

function addAll(into: Set<Connection>, from: Set<Connection> | undefined): void {
  if (from) for (const connection of from) into.add(connection);
}

/** The connections of `found` not in `seen`, each added to it: one copy's share of a message. */
function unseen(found: Iterable<Connection>, seen: Set<object>): Connection[] {
  const fresh: Connection[] = [];
  for (const connection of found) {
    if (seen.has(connection)) continue;
    seen.add(connection);
    fresh.push(connection);
  }
  return fresh;
}
