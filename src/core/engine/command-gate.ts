import type { Command } from 'ioredis';

/** How much may wait for Redis on one connection before new commands are refused. */
export interface PendingLimits {
  /** Commands sent and not yet answered. */
  readonly commands: number;
  /** Their arguments' length, about (a string counts its length, a Buffer its bytes). */
  readonly bytes: number;
}

/** What waits for Redis on the command connection now, and what its bounds refused and reset so far. */
export interface RedisPending {
  readonly commands: number;
  readonly bytes: number;
  readonly refused: number;
  readonly resets: number;
}

export const DEFAULT_PENDING_LIMITS: PendingLimits = { commands: 10_000, bytes: 32 * 1024 * 1024 };

/** The message ioredis rejects a command with when `commandTimeout` passes. */
const TIMED_OUT = 'Command timed out';

/** What the gate rejects a command with: the caller sees it as Redis being unavailable. */
export class RedisSaturatedError extends Error {
  constructor(limits: PendingLimits) {
    super(`too much is waiting for Redis (limits: ${limits.commands} commands, ${limits.bytes} bytes)`);
    this.name = 'RedisSaturatedError';
  }
}

/** The one method of an ioredis client (one server or a Cluster) that every command goes through. */
interface CommandSender {
  sendCommand(command: Command, stream?: unknown, node?: unknown): unknown;
}

/**
 * Bounds what waits for Redis on one connection. A Redis that hangs instead of refusing
 * (a long fork, a swapping host, a partition) answers nothing, and every command sent to
 * it stays in ioredis' queue and the socket's buffer, arguments and all, until it answers:
 * a steady publisher would grow the process until it is killed. The gate counts each
 * command from `sendCommand` until its answer, and refuses a new one at once while the
 * count or the bytes are at their limit, the same fast failure as a Redis that is down.
 *
 * A command that times out (ioredis' `commandTimeout`) is still queued: ioredis only
 * rejects its promise. So the first time-out calls `onStall`, which resets the connection:
 * the reset empties the queue and frees the buffers, and until Redis answers the reconnect
 * every command fails fast, as with Redis down.
 *
 * Commands of a pipeline or a transaction are counted, never refused: a pipeline with a
 * refused member would never be written. Only the registry's and stores' batched writes
 * use them, a handful per tick.
 */
export class CommandGate {
  private pendingCommands = 0;
  private pendingBytes = 0;
  private refusedCommands = 0;
  /** A Cluster sends a redirected command (MOVED, ASK) again: it is counted once. */
  private readonly counted = new WeakSet<Command>();

  constructor(
    private readonly limits: PendingLimits,
    private readonly onStall: () => void,
    private readonly onRefuse: () => void = () => undefined,
  ) {}

  get commands(): number {
    return this.pendingCommands;
  }

  get bytes(): number {
    return this.pendingBytes;
  }

  get refused(): number {
    return this.refusedCommands;
  }

  /** Puts the gate in front of `client`'s `sendCommand`. */
  install(client: CommandSender): void {
    const send = client.sendCommand.bind(client);
    client.sendCommand = (command: Command, stream?: unknown, node?: unknown): unknown =>
      this.admit(command, stream !== undefined) ? send(command, stream, node) : command.promise;
  }

  private admit(command: Command, batched: boolean): boolean {
    if (this.counted.has(command)) return true;
    const size = sizeOf(command.args);
    if (!batched && (this.pendingCommands >= this.limits.commands || this.pendingBytes + size > this.limits.bytes)) {
      this.refusedCommands++;
      this.onRefuse();
      command.reject(new RedisSaturatedError(this.limits));
      return false;
    }
    this.counted.add(command);
    this.pendingCommands++;
    this.pendingBytes += size;
    const release = (): void => {
      this.pendingCommands--;
      this.pendingBytes -= size;
    };
    command.promise.then(release, (err: unknown) => {
      release();
      if (err instanceof Error && err.message === TIMED_OUT) this.onStall();
    });
    return true;
  }
}

function sizeOf(args: readonly unknown[]): number {
  let size = 0;
  for (const arg of args) {
    if (typeof arg === 'string' || Buffer.isBuffer(arg)) size += arg.length;
    else size += 8;
  }
  return size;
}
