import { Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import type { Logger as Pino } from 'pino';
import { jsonTopic } from '../../core/bus/bus-topic.js';
import { EventBus } from '../../core/bus/event-bus.js';
import { GatehouseLogger } from '../../core/logging/gatehouse-logger.js';
import { FELIX } from './felix.codes.js';
import { FelixData } from './felix-data.js';
import { checkStoredStatus, normaliseShard, parseStoredStatus, type StoredStatus } from './felix-status.js';

export { STATUS_KEY } from './felix-data.js';

/** Carries each stored report to every instance (the push that keeps heartbeats off the store). */
export const STATUS_TOPIC = jsonTopic<StoredStatus>('felix.status', checkStoredStatus);

export interface StatusReport {
  shards: Record<string, unknown>[];
  guildsCount: number;
  memoryUsage?: number;
  uptime?: number;
}

/**
 * The bot's last reported status, held in memory on every instance so that heartbeats
 * (one a second per dashboard, as the Felix document suggests) never touch the store. The store is
 * read at start-up and again after a bus gap, because a report pushed while this instance
 * could not hear the bus is lost to it (docs/protocols/felix.md, "Where the ACK's status
 * comes from").
 */
@Injectable()
export class FelixStatusService implements OnApplicationBootstrap {
  private readonly log: Pino;
  private status: StoredStatus | null = null;
  /** Some answer came from the store or the bus; before that a heartbeat waits for the store. */
  private known = false;
  /**
   * The memory is as new as the store: false until a read succeeds after start-up or after
   * a bus gap. While false, heartbeats ask for a read (shared, one at a time) but answer
   * from memory once something is known.
   */
  private fresh = false;
  /** Bumped by every push and every gap: a read that started before either must not overwrite what followed. */
  private version = 0;
  private read: Promise<void> | null = null;
  /** One warning per outage, not one per heartbeat. */
  private failing = false;

  constructor(
    private readonly data: FelixData,
    private readonly bus: EventBus,
    logger: GatehouseLogger,
  ) {
    this.log = logger.child({ protocol: FELIX });
    bus.subscribe(STATUS_TOPIC, (status) => this.onPush(status));
    bus.onRejoin(() => {
      this.version++;
      this.fresh = false;
      this.read = null;
      void this.refresh();
    });
  }

  // After every module's init: the engine has connected by now, so this read can succeed.
  onApplicationBootstrap(): void {
    void this.refresh();
  }

  /**
   * What a heartbeat answers with: memory, unless nothing has been heard since start-up.
   * A value when memory can answer (every heartbeat but the first few), so the ACK goes
   * out in the turn that read the heartbeat; a promise while the first read is on its way.
   */
  current(): StoredStatus | null | Promise<StoredStatus | null> {
    if (this.fresh) return this.status;
    const read = this.refresh();
    return this.known ? this.status : read.then(() => this.status);
  }

  /**
   * Stores the report, then pushes the same bytes to every instance, this one included
   * (the bus dispatches locally first, so this one holds it before the PUT is answered; the
   * others as soon as the push reaches them). A store failure rejects before anything
   * changed; a failed push has reached this instance only, and the others catch up when
   * their bus rejoins.
   */
  async report(report: StatusReport): Promise<void> {
    const status: StoredStatus = {
      shards: report.shards.map(normaliseShard),
      guildsCount: report.guildsCount,
      reportedAt: Date.now(),
    };
    if (report.memoryUsage !== undefined) status.memoryUsage = report.memoryUsage;
    if (report.uptime !== undefined) status.uptime = report.uptime;
    await this.data.putStatus(JSON.stringify(status));
    await this.bus.publish(STATUS_TOPIC, { kind: 'all' }, status);
  }

  private onPush(status: StoredStatus): void {
    // The push comes after its store write, so it is at least as new as any read in flight.
    this.version++;
    this.status = status;
    this.known = true;
    this.fresh = true;
  }

  private refresh(): Promise<void> {
    if (this.read) return this.read;
    const read = this.readStore(this.version).finally(() => {
      if (this.read === read) this.read = null;
    });
    this.read = read;
    return read;
  }

  /** Never rejects: with the store away, heartbeats go on with what this instance last knew. */
  private async readStore(version: number): Promise<void> {
    let raw: string | null;
    try {
      raw = await this.data.getStatus();
    } catch (err) {
      if (!this.failing) {
        this.failing = true;
        this.log.warn({ err: String(err) }, 'status unavailable; answering heartbeats with the last known one');
      }
      return;
    }
    this.failing = false;
    if (version !== this.version) return;
    const status = raw === null ? null : parseStoredStatus(raw);
    // Unreadable data is an answer too: asking again would not change it, only cost a read per heartbeat.
    if (raw !== null && status === null) this.log.warn('stored felix status is unreadable; answering as unreported');
    this.status = status;
    this.known = true;
    this.fresh = true;
  }
}
