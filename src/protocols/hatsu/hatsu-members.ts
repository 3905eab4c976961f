import { Injectable, type OnModuleDestroy } from '@nestjs/common';
import { EventBus } from '../../core/bus/event-bus.js';
import { ClientRegistry } from '../../core/registry/client-registry.js';
import { addToSet, deleteFromSet } from '../../core/set-map.js';
import { sessionChannels } from './hatsu-channels.js';
import { HATSU_MEMBERS, type MembersChange } from './hatsu.codes.js';
import type { HatsuSession } from './hatsu-session.js';

/**
 * Guild membership of live sessions, on every instance: a `PUT /admin/hatsu/guilds/:id` that
 * adds or removes members is announced on the bus, and each instance moves its sessions of
 * those users into or out of the guild's registry channels (docs/protocols/hatsu.md).
 */
@Injectable()
export class HatsuMembers implements OnModuleDestroy {
  private readonly byUser = new Map<string, Set<HatsuSession>>();
  private readonly stop: () => void;

  constructor(
    private readonly bus: EventBus,
    private readonly registry: ClientRegistry,
  ) {
    this.stop = bus.subscribe(HATSU_MEMBERS, (change) => this.apply(change));
  }

  onModuleDestroy(): void {
    this.stop();
  }

  /** From now on, membership changes of the session's user reach it (its user is known). */
  track(session: HatsuSession): void {
    if (session.userId !== null) addToSet(this.byUser, session.userId, session);
  }

  untrack(session: HatsuSession): void {
    if (session.userId !== null) deleteFromSet(this.byUser, session.userId, session);
  }

  /** Tells every instance who joined and who left the guild. */
  announce(guild: string, add: readonly string[], remove: readonly string[]): Promise<void> {
    if (add.length === 0 && remove.length === 0) return Promise.resolve();
    return this.bus.publish(HATSU_MEMBERS, { kind: 'all' }, { guild, add, remove });
  }

  /** Puts a ready session in exactly the registry channels its guilds and flags call for. */
  place(session: HatsuSession): void {
    this.registry.setChannels(session.connection, sessionChannels(session.guilds, session.userId, session.presences));
  }

  private apply({ guild, add, remove }: MembersChange): void {
    for (const user of add) for (const session of this.byUser.get(user) ?? []) this.change(session, guild, true);
    for (const user of remove) for (const session of this.byUser.get(user) ?? []) this.change(session, guild, false);
  }

  private change(session: HatsuSession, guildId: string, joined: boolean): void {
    if (session.state === 'identifying') {
      // Identify is reading the user's guilds; the change is applied on top of what it reads.
      session.delta?.set(guildId, joined);
      return;
    }
    if (session.state !== 'ready') return;
    if (joined) session.guilds.add(guildId);
    else session.guilds.delete(guildId);
    this.place(session);
  }
}
