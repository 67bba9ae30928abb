/**
 * Per-channel bookkeeping: the deliveries not yet settled (for allUpTo,
 * ackAll/nackAll, channel close and the settle timeout).
 */
import type { Channel } from 'amqplib';
import type { Config } from './config.ts';
import type { Delivery } from './delivery.ts';
import { endSpan } from './tracing.ts';
import { note, telemetryFailed } from './telemetry.ts';

let nextChannelId = 1;

export class ChannelState {
  readonly raw: Channel;
  readonly cfg: Config;
  readonly id: number;
  readonly confirm: boolean;
  /** Unsettled deliveries by delivery tag; insertion order is tag and time order. */
  readonly open: Map<number, Delivery>;
  sweeper: NodeJS.Timeout | undefined;
  readonly onClose: () => void;
  readonly sweep: () => void;

  constructor(raw: Channel, cfg: Config, confirm: boolean) {
    this.raw = raw;
    this.cfg = cfg;
    this.id = nextChannelId++;
    this.confirm = confirm;
    this.open = new Map();
    this.sweeper = undefined;
    this.onClose = () => {
      try {
        this.closeAll();
      } catch (err) {
        telemetryFailed(this.cfg, 'internal', err);
      }
    };
    this.sweep = () => {
      try {
        this.sweepExpired();
      } catch (err) {
        telemetryFailed(this.cfg, 'internal', err);
      }
    };
  }

  track(d: Delivery): void {
    this.open.set(d.deliveryTag, d);
    if (this.sweeper === undefined) {
      // One timer per channel, not one per delivery; it stops when nothing is open.
      const every = Math.min(Math.max(Math.floor(this.cfg.settleTimeoutMs / 4), 10), 5_000);
      this.sweeper = setInterval(this.sweep, every);
      this.sweeper.unref();
    }
  }

  untrack(d: Delivery): void {
    if (d.channel === this && this.open.get(d.deliveryTag) === d) this.open.delete(d.deliveryTag);
  }

  /** The broker requeues every unsettled delivery of a closed channel: end their spans. */
  private closeAll(): void {
    for (const d of this.open.values()) finishSpan(this.cfg, d, 'hoptrace.channel_closed');
    this.open.clear();
    this.stopSweeper();
  }

  private sweepExpired(): void {
    const limit = performance.now() - this.cfg.settleTimeoutMs;
    for (const d of this.open.values()) {
      if (d.startedAt > limit) break;
      this.open.delete(d.deliveryTag);
      finishSpan(this.cfg, d, 'hoptrace.settle_timeout');
      note(
        this.cfg,
        'warn',
        { messageId: d.messageId, correlationId: d.correlationId, queue: d.queue, deliveryTag: d.deliveryTag },
        `hoptrace: delivery ${d.deliveryTag} from queue "${d.queue}" not settled after ${this.cfg.settleTimeoutMs} ms; its span is ended`,
      );
    }
    if (this.open.size === 0) this.stopSweeper();
  }

  private stopSweeper(): void {
    if (this.sweeper !== undefined) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }
}

/** End a delivery's consumer span once; `event` says why when it is not a settle. */
export function finishSpan(cfg: Config, d: Delivery, event?: string): void {
  if (d.spanEnded) return;
  d.spanEnded = true;
  const span = d.span;
  if (span === undefined) return;
  if (event !== undefined) {
    try {
      span.addEvent(event);
    } catch (err) {
      telemetryFailed(cfg, 'span', err);
    }
  }
  endSpan(cfg, span);
}
