import type { Target } from '../../core/bus/event-bus.js';
import type { CountTarget } from '../../core/registry/client-registry.js';

/*
 * Registry channels. Every ready session is in `sessions` and in its guilds' channels; one
 * that accepts presences is also in `presences`, `presence:user:<its user>` and
 * `presence:guild:<id>` for each guild. So every recipient set (everyone, a guild, a user,
 * each with or without the presence filter) is exactly one index of the registry: delivery
 * resolves it without looking at any session's flags, and a dispatch counts it from index
 * sizes, O(instances) across the cluster. Sessions not ready (identifying, closing) are in
 * none of them.
 */

/** Every ready session: the recipients of `to: {all: true}`. */
export const SESSIONS_CHANNEL = 'sessions';

/** Every ready session that accepts presences. */
export const PRESENCES_CHANNEL = 'presences';

/** A guild's member sessions. */
export function guildChannel(guildId: string): string {
  return `guild:${guildId}`;
}

/** The sessions of a channel that accept presences. */
function presenceChannel(channel: string): string {
  return `presence:${channel}`;
}

/** A user's sessions that accept presences. */
function presenceUserChannel(userId: string): string {
  return `presence:user:${userId}`;
}

/** The channels a ready session is in, from its guilds, its user and its presences flag. */
export function sessionChannels(guilds: Iterable<string>, userId: string | null, presences: boolean): string[] {
  const inGuilds = [...guilds].map(guildChannel);
  const channels = [SESSIONS_CHANNEL, ...inGuilds];
  if (presences && userId !== null) {
    channels.push(PRESENCES_CHANNEL, presenceUserChannel(userId), ...inGuilds.map(presenceChannel));
  }
  return channels;
}

/** Who an admin dispatch is for. */
export type DispatchTarget = { guildId: string } | { userId: string } | { all: true };

/** How a dispatch travels on the bus: named as the publisher knows it (a guild, a user, everyone). */
export function busTarget(to: DispatchTarget): Target {
  if ('guildId' in to) return { kind: 'channel', ids: [guildChannel(to.guildId)] };
  if ('userId' in to) return { kind: 'user', ids: [to.userId] };
  return { kind: 'all' };
}

/**
 * Where a bus message's recipients are indexed here. The bus names them as the publisher
 * did (a guild's channel, a user, everyone; presences on their own topic), and each
 * instance maps that onto its registry channels.
 */
export function indexed(target: Target, presence: boolean): Target {
  switch (target.kind) {
    case 'all':
      return { kind: 'channel', ids: [presence ? PRESENCES_CHANNEL : SESSIONS_CHANNEL] };
    case 'user':
      return presence ? { kind: 'channel', ids: target.ids.map(presenceUserChannel), seen: target.seen } : target;
    case 'channel':
      return presence ? { kind: 'channel', ids: target.ids.map(presenceChannel), seen: target.seen } : target;
    case 'client':
      return target;
  }
}

/** The one registry index holding a dispatch's recipients: `indexed` of its target. */
export function counted(to: DispatchTarget, presence: boolean): CountTarget {
  if ('guildId' in to) {
    const channel = guildChannel(to.guildId);
    return { kind: 'channel', id: presence ? presenceChannel(channel) : channel };
  }
  if ('userId' in to) {
    return presence ? { kind: 'channel', id: presenceUserChannel(to.userId) } : { kind: 'user', id: to.userId };
  }
  return { kind: 'channel', id: presence ? PRESENCES_CHANNEL : SESSIONS_CHANNEL };
}
