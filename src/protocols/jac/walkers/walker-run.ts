import type { JacIdentity } from '../jac-tokens.js';

/** What a walker can do to the world: jac's `notify_*` functions, and reports. */
export interface JacNotifier {
  /** Publishes `data` to every socket the target names, on every instance. */
  notify(kind: 'user' | 'channel' | 'client', ids: readonly string[], data: unknown): Promise<void>;
}

/**
 * One execution of a walker. Walkers receive it next to their context and act through
 * it; what they `report` is returned in `reports`.
 */
export class WalkerRun {
  readonly reports: unknown[] = [];

  constructor(
    private readonly notifier: JacNotifier,
    readonly identity: JacIdentity,
    /** The socket that called, or null over HTTP (where `notifySelf` does nothing). */
    private readonly self: ((data: unknown) => void) | null,
    /** The `node` the client asked to run on, if any. */
    readonly node: string | null,
  ) {}

  get rootId(): string {
    return this.identity.rootId;
  }

  report(value: unknown): void {
    this.reports.push(value);
  }

  notifySelf(data: unknown): void {
    this.self?.(data);
  }

  notifyUsers(rootIds: readonly string[], data: unknown): Promise<void> {
    return this.notifier.notify('user', rootIds, data);
  }

  notifyChannels(channelIds: readonly string[], data: unknown): Promise<void> {
    return this.notifier.notify('channel', channelIds, data);
  }

  notifyClients(clientIds: readonly string[], data: unknown): Promise<void> {
    return this.notifier.notify('client', clientIds, data);
  }
}
