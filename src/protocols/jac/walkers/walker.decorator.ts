import { SetMetadata, type Type } from '@nestjs/common';
import type { WalkerRun } from './walker-run.js';

export const WALKER_METADATA = 'gatehouse:jac:walker';

export type WalkerMethod = 'websocket' | 'post';

export interface WalkerOptions {
  /** The name clients call it by (`{"type":"walker","walker":<name>}`, `POST /walker/<name>`). */
  name: string;
  /** Whether a public connection may run it. Defaults to true, as in jac-cloud. */
  auth?: boolean;
  /** Where it can be called from; both by default. */
  methods?: readonly WalkerMethod[];
  /** A class-validator class for the walker's context; the method receives an instance of it. */
  context?: Type<object>;
}

/** What a walker method looks like: its validated context and the run it acts through. */
export type WalkerHandler<C extends object = Record<string, unknown>> = (context: C, run: WalkerRun) => unknown;

/**
 * Marks a provider method as a jac walker. The provider only has to be listed in a
 * module the app imports; the walker registry finds it at start-up.
 *
 * ```ts
 * @Walker({ name: 'send_chat_to_user', context: SendChatToUser })
 * async toUser(ctx: SendChatToUser, run: WalkerRun) { await run.notifyUsers([ctx.root_id], {...}); }
 * ```
 */
export const Walker = (options: WalkerOptions): MethodDecorator => SetMetadata(WALKER_METADATA, options);
