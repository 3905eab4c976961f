import type { Duplex } from 'node:stream';
import * as wsModule from 'ws';
import type { WebSocket } from 'ws';

interface FrameOptions {
  fin: boolean;
  rsv1: boolean;
  opcode: number;
  mask: boolean;
  readOnly: boolean;
}

/** `ws`'s public framing function; its type declarations leave it out. */
const Sender = (wsModule as unknown as { Sender: { frame(data: Buffer, options: FrameOptions): Buffer[] } }).Sender;

/** The turn in which a stream was last written (see `batchWithinTurn`). */
const LAST_TURN = Symbol('lastTurn');

/** A socket's stream, with the turn of its last write: a property, cheaper than a map on this path. */
type TurnStream = Duplex & { [LAST_TURN]?: number };

/** The parts of a `ws` socket the fast path reads; all present in ws 8. */
interface WsInternals {
  _socket?: TurnStream;
  _sender?: { _state: number; _queue: unknown[] };
}

const TEXT = 0x1;
const BINARY = 0x2;

/**
 * One message for many sockets, framed once. `ws` frames every `send()` again (an
 * options object, a header buffer, two writes); a broadcast instead builds the whole
 * server frame (unmasked, no compression, so identical for every recipient) a single
 * time and writes that buffer to each socket.
 */
export class PreparedFrame {
  private framed: Buffer | null = null;

  constructor(
    readonly payload: Buffer,
    readonly binary = false,
  ) {}

  get frame(): Buffer {
    if (!this.framed) {
      const parts = Sender.frame(this.payload, {
        fin: true,
        rsv1: false,
        opcode: this.binary ? BINARY : TEXT,
        mask: false,
        readOnly: false,
      });
      this.framed = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
    }
    return this.framed;
  }
}

/**
 * Writes a prepared frame straight to the socket's stream when `ws`'s sender is idle
 * (no compression, nothing queued: always so for our servers, which disable
 * permessage-deflate and never send blobs), which keeps the byte order `ws` itself
 * would produce. Otherwise, or if `ws` ever changes shape, it falls back to `send()`.
 * Returns whether the frame took the direct path: `ws` is pinned to the minor version
 * these internals were read from, and a spec fails if an idle socket does not.
 */
export function writePrepared(socket: WebSocket, prepared: PreparedFrame): boolean {
  const internals = socket as unknown as WsInternals;
  const stream = internals._socket;
  const sender = internals._sender;
  if (stream && sender && sender._state === 0 && sender._queue.length === 0) {
    batchWithinTurn(stream);
    stream.write(prepared.frame);
    return true;
  }
  socket.send(prepared.payload, { binary: prepared.binary });
  return false;
}

/** Counts event-loop turns in which something was written; see `batchWithinTurn`. */
let turn = 0;
let turnEndScheduled = false;
const corked: Duplex[] = [];

/**
 * A socket's first message in a turn of the event loop goes out at once: one write, no
 * extra bookkeeping, which is the whole cost of a fan-out where each socket gets one
 * message. From its second message in the same turn on (a burst of inbound frames handled
 * together), the socket is corked until the turn ends, so the rest of the burst leaves in
 * one system call instead of one each. Order is kept: later writes, ws's own included,
 * queue behind.
 */
function batchWithinTurn(stream: TurnStream): void {
  if (stream.writableCorked > 0) return;
  if (stream[LAST_TURN] !== turn) {
    stream[LAST_TURN] = turn;
    scheduleTurnEnd();
    return;
  }
  stream.cork();
  corked.push(stream);
}

function scheduleTurnEnd(): void {
  if (turnEndScheduled) return;
  turnEndScheduled = true;
  setImmediate(endTurn);
}

function endTurn(): void {
  turnEndScheduled = false;
  turn++;
  const streams = corked.splice(0);
  for (const stream of streams) stream.uncork();
}
