import { randomBytes } from 'node:crypto';
import type { Logger as Pino } from 'pino';
import { EngineUnavailableError } from '../errors/engine-unavailable.error.js';
import type { RedisConnections } from '../engine/redis-connections.js';
import { decodeBusMessage, encodeBusMessage } from './bus-wire.js';
import { EventBus, type BusMessage, type EventBusOptions } from './event-bus.js';

/**
 * The Redis bus: one PUBLISH per publish on one shared channel, whatever the number
 * of subscribers. The publishing instance delivers to its own clients directly (so
 * local delivery survives a Redis outage) and ignores its own echo, which makes
 * delivery exactly once per instance.
 */
export class RedisEventBus extends EventBus {
  readonly instanceId = `${process.pid}-${randomBytes(6).toString('hex')}`;
  private readonly channel: string;
  private readonly channelBuffer: Buffer;
  private listening = false;

  constructor(
    private readonly redis: RedisConnections,
    private readonly log: Pino,
    options: Omit<EventBusOptions, 'log'> = {},
  ) {
    super({ ...options, log });
    this.channel = redis.key('bus');
    this.channelBuffer = Buffer.from(this.channel);
    redis.subscriber.on('messageBuffer', (channel: Buffer, frame: Buffer) => {
      if (channel.equals(this.channelBuffer)) this.receive(frame);
    });
  }

  start(): void {
    // A subscription does not survive its connection; until it is re-established this
    // instance would miss every other instance's messages, so it is not ready.
    this.redis.subscriber.on('close', () => {
      this.listening = false;
    });
    this.redis.onReady('subscriber', () => {
      this.redis.subscriber.subscribe(this.channel).then(
        () => {
          this.listening = true;
          if (this.joinedBefore) this.rejoinPending = true;
          this.joinedBefore = true;
          this.flushRejoin();
        },
        (err: unknown) => {
          this.log.warn({ err: String(err) }, 'bus subscribe failed; retried on reconnect');
        },
      );
    });
    // The two connections come back independently, and the re-checks a rejoin triggers read
    // the store through the command connection: a rejoin waits for it, or they would fail
    // and nothing would run them again.
    this.redis.onReady('command', () => this.flushRejoin());
  }

  private joinedBefore = false;
  private rejoinPending = false;

  private flushRejoin(): void {
    if (!this.rejoinPending || this.redis.command.status !== 'ready') return;
    this.rejoinPending = false;
    this.rejoined();
  }

  /** True while the bus channel is subscribed, i.e. other instances' messages arrive. */
  get isListening(): boolean {
    return this.listening;
  }

  protected async send(message: BusMessage, sentAt: number): Promise<void> {
    try {
      await this.redis.command.publish(this.channel, encodeBusMessage(this.instanceId, message, sentAt));
    } catch (err) {
      throw new EngineUnavailableError('publish', err);
    }
  }

  private receive(frame: Buffer): void {
    const decoded = decodeBusMessage(frame);
    if (!decoded) {
      this.log.warn('dropped a malformed bus frame');
      return;
    }
    if (decoded.origin === this.instanceId) return;
    this.received(decoded.message, frame.length, this.timing ? decoded.sentAt : 0);
  }
}
