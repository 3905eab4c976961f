import { Injectable } from '@nestjs/common';
import { IsString, MinLength } from 'class-validator';
import { Walker } from '../walkers/walker.decorator.js';
import type { WalkerRun } from '../walkers/walker-run.js';

/** The chat message the jac documentation's end-to-end example sends. */
const CHAT = { type: 'chat', data: { message: 'string' } } as const;

export class SendChatToUser {
  @IsString()
  @MinLength(1)
  root_id!: string;
}

export class SendChatToGroup {
  @IsString()
  @MinLength(1)
  channel_id!: string;
}

export class SendChatToClient {
  @IsString()
  @MinLength(1)
  client_id!: string;
}

/**
 * The three walkers of the jac documentation's end-to-end example (`methods: ["websocket", "post"]`,
 * jac-cloud's default `auth: true`). They double as the model for writing walkers.
 */
@Injectable()
export class ChatWalkers {
  @Walker({ name: 'send_chat_to_user', context: SendChatToUser })
  async toUser(context: SendChatToUser, run: WalkerRun): Promise<void> {
    await run.notifyUsers([context.root_id], CHAT);
  }

  @Walker({ name: 'send_chat_to_group', context: SendChatToGroup })
  async toGroup(context: SendChatToGroup, run: WalkerRun): Promise<void> {
    await run.notifyChannels([context.channel_id], CHAT);
  }

  @Walker({ name: 'send_chat_to_client', context: SendChatToClient })
  async toClient(context: SendChatToClient, run: WalkerRun): Promise<void> {
    await run.notifyClients([context.client_id], CHAT);
  }
}
