import type { Logger as Pino } from 'pino';
import type { EventBus, Target } from '../bus/event-bus.js';
import { PreparedFrame } from '../ws/prepared-frame.js';
import type { ClientInfo, Connection } from './connection.js';

const CONTROL_TOPIC = 'control';
const CLOSE = Buffer.from('close');

/**
 * Who is connected where. The local part (this instance's connections, indexed by
 * protocol + user and protocol + channel) is the same for every engine; the drivers
 * differ in the cluster-wide view used by the admin API.
 */
export abstract class ClientRegistry {
  private readonly byId = new Map<string, Connection>();
  private readonly byUser = new Map<string, Set<Connection>>();
  private readonly byChannel = new Map<string, Set<Connection>>();

  protected constructor(
    protected readonly bus: EventBus,
    protected readonly log: Pino,
  ) {
    bus.subscribe(CONTROL_TOPIC, (message) => {
      if (message.target.kind !== 'client' || !message.payload.equals(CLOSE)) return;
      for (const id of message.target.ids) this.byId.get(id)?.close();
    });
  }

  get instanceId(): string {
    return this.bus.instanceId;
  }

  // ---- local connections -------------------------------------------------------

  add(connection: Connection): void {
    this.byId.set(connection.id, connection);
    if (connection.user !== null) index(this.byUser, key(connection.protocol, connection.user), connection);
    for (const channel of connection.channels) index(this.byChannel, key(connection.protocol, channel), connection);
    this.mirror(connection);
  }

  remove(connection: Connection): void {
    if (this.byId.get(connection.id) !== connection) return;
    this.byId.delete(connection.id);
    if (connection.user !== null) unindex(this.byUser, key(connection.protocol, connection.user), connection);
    for (const channel of connection.channels) unindex(this.byChannel, key(connection.protocol, channel), connection);
    this.unmirror(connection.id);
  }

  setUser(connection: Connection, user: string | null): void {
    if (connection.user === user) return;
    const tracked = this.byId.get(connection.id) === connection;
    if (tracked && connection.user !== null)
      unindex(this.byUser, key(connection.protocol, connection.user), connection);
    connection._user = user;
    if (tracked && user !== null) index(this.byUser, key(connection.protocol, user), connection);
    if (tracked) this.mirror(connection);
  }

  /** Replaces the channels a connection is in. */
  setChannels(connection: Connection, channels: Iterable<string>): void {
    const next = new Set(channels);
    const tracked = this.byId.get(connection.id) === connection;
    for (const channel of connection._channels) {
      if (next.has(channel)) continue;
      connection._channels.delete(channel);
      if (tracked) unindex(this.byChannel, key(connection.protocol, channel), connection);
    }
    for (const channel of next) {
      if (connection._channels.has(channel)) continue;
      connection._channels.add(channel);
      if (tracked) index(this.byChannel, key(connection.protocol, channel), connection);
    }
    if (tracked) this.mirror(connection);
  }

  get(id: string): Connection | undefined {
    return this.byId.get(id);
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
    // The common fan-out (one user or one channel) walks the index itself: no copy, no dedup needed.
    const single = target.kind !== 'all' && target.kind !== 'client' && target.ids.length === 1;
    const recipients = single
      ? (target.kind === 'user' ? this.byUser : this.byChannel).get(key(protocol, target.ids[0] as string))
      : this.resolve(protocol, target);
    if (!recipients) return 0;
    const prepared = new PreparedFrame(payload, binary);
    for (const connection of recipients) if (connection.sendPrepared(prepared)) sent++;
    return sent;
  }

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
    await this.bus.publish({ topic: CONTROL_TOPIC, target: { kind: 'client', ids: [id] }, payload: CLOSE });
    return true;
  }

  protected abstract mirror(connection: Connection): void;
  protected abstract unmirror(id: string): void;
}

function key(protocol: string, id: string): string {
  return `${protocol}\u0000${id}`;
}

function index(map: Map<string, Set<Connection>>, k: string, connection: Connection): void {
  let set = map.get(k);
  if (!set) {
    set = new Set();
    map.set(k, set);
  }
  set.add(connection);
}

function unindex(map: Map<string, Set<Connection>>, k: string, connection: Connection): void {
  const set = map.get(k);
  if (!set) return;
  set.delete(connection);
  if (set.size === 0) map.delete(k);
}

function addAll(into: Set<Connection>, from: Set<Connection> | undefined): void {
  if (from) for (const connection of from) into.add(connection);
}
