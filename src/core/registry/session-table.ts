import type { WebSocket } from 'ws';
import type { ClientRegistry } from './client-registry.js';
import type { Connection } from './connection.js';

/** A protocol's state for one socket: at least the registry's `Connection` for it. */
export interface Session {
  readonly connection: Connection;
}

/**
 * One protocol's sessions, found by socket or by connection. The state lives on the
 * registry's own entry for the socket, so there is one table per process, not one per
 * protocol, and a session exists exactly as long as its connection is registered.
 */
export class SessionTable<S extends Session> {
  constructor(private readonly registry: ClientRegistry) {}

  /** Registers the session's connection and files the session under its socket. */
  open(session: S): S {
    session.connection._session = session;
    this.registry.add(session.connection);
    return session;
  }

  /** The session of a socket, while its connection is registered. */
  get(socket: WebSocket): S | undefined {
    return this.registry.connectionOf(socket)?._session as S | undefined;
  }

  /** The session a registered connection belongs to (as the registry's lookups return them). */
  of(connection: Connection): S | undefined {
    return connection._session as S | undefined;
  }

  /** The sessions of `connections`, in order. */
  *all(connections: Iterable<Connection>): Generator<S> {
    for (const connection of connections) {
      const session = connection._session as S | undefined;
      if (session !== undefined) yield session;
    }
  }

  /**
   * Takes the socket's connection out of the registry and returns its session, for the
   * protocol's own clean-up; undefined when the socket had none (already closed).
   */
  close(socket: WebSocket): S | undefined {
    const connection = this.registry.connectionOf(socket);
    if (!connection) return undefined;
    this.registry.remove(connection);
    return connection._session as S | undefined;
  }
}
