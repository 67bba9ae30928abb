/**
 * Per-channel bookkeeping: the deliveries whose record is not written yet
 * (unsettled, or their handler still running), the publishes waiting for
 * the broker's confirm, and one timer that writes an `open` record for
 * whatever is still unfinished after the grace period and ends the spans
 * of deliveries left unsettled past the settle timeout.
 */
import type { Channel } from 'amqplib';
import type { Config } from './config.ts';
import { type Delivery, expireDelivery, writeDelivery } from './delivery.ts';
import { type Outgoing, closeOutgoing, confirmOutgoing, writeOutgoing } from './outgoing.ts';
import { TagQueue } from './tag-queue.ts';
import { telemetryFailed } from './telemetry.ts';

let nextChannelId = 1;

/** amqplib's own confirm bookkeeping on a ConfirmChannel (`lib/channel.js`): where the next delivery tag comes from. */
interface ConfirmInternals {
  lwm: number;
  unconfirmed: unknown[];
}

/** The fields of a broker ack / nack of publishes. */
interface ConfirmFields {
  deliveryTag: number;
  multiple: boolean;
}

export class ChannelState {
  readonly raw: Channel;
  readonly cfg: Config;
  readonly id: number;
  /** A ConfirmChannel (publish takes a confirm callback). */
  readonly confirmChannel: boolean;
  /** A ConfirmChannel whose publishes hoptrace can follow to their confirm. */
  readonly confirm: boolean;
  /** Deliveries whose complete record is not written yet, by delivery tag (tag order is time order). */
  readonly live: TagQueue<Delivery>;
  /** Publishes waiting for the broker's confirm, by publish sequence number (the confirm's delivery tag). */
  readonly unconfirmed: TagQueue<Outgoing>;
  private timer: NodeJS.Timeout | undefined;
  readonly onClose: () => void;
  readonly onAck: (fields: ConfirmFields) => void;
  readonly onNack: (fields: ConfirmFields) => void;
  private readonly tick: () => void;

  constructor(raw: Channel, cfg: Config, confirm: boolean) {
    this.raw = raw;
    this.cfg = cfg;
    this.id = nextChannelId++;
    const internals = raw as unknown as Partial<ConfirmInternals>;
    this.confirmChannel = confirm;
    this.confirm = confirm && typeof internals.lwm === 'number' && Array.isArray(internals.unconfirmed);
    this.live = new TagQueue();
    this.unconfirmed = new TagQueue();
    this.timer = undefined;
    this.onClose = () => this.guard(this.closeAll);
    this.onAck = (fields) => this.guard(this.confirmed, fields, 'ack');
    this.onNack = (fields) => this.guard(this.confirmed, fields, 'nack');
    this.tick = () => this.guard(this.sweep);
  }

  private guard<A extends unknown[]>(fn: (...args: A) => void, ...args: A): void {
    try {
      fn.apply(this, args);
    } catch (err) {
      telemetryFailed(this.cfg, 'internal', err);
    }
  }

  /** The delivery tag the broker will confirm the next publish with (amqplib counts them the same way). */
  nextPublishTag(): number {
    const internals = this.raw as unknown as ConfirmInternals;
    return internals.lwm + internals.unconfirmed.length;
  }

  track(d: Delivery): void {
    this.live.set(d.deliveryTag, d);
    if (this.timer === undefined) this.arm(this.firstWindow());
  }

  untrack(d: Delivery): void {
    if (d.channel === this && this.live.get(d.deliveryTag) === d) this.live.delete(d.deliveryTag);
  }

  /** The delivery with this tag, if it is still tracked. */
  delivery(tag: number): Delivery | undefined {
    return this.live.get(tag);
  }

  awaitConfirm(tag: number, o: Outgoing): void {
    this.unconfirmed.set(tag, o);
    if (this.timer === undefined) this.arm(this.cfg.recordGraceMs);
  }

  private firstWindow(): number {
    return Math.min(this.cfg.recordGraceMs, this.cfg.settleTimeoutMs);
  }

  private arm(ms: number): void {
    // One timer per channel, not one per message; it stops when nothing is pending.
    this.timer = setTimeout(this.tick, Math.max(1, Math.ceil(ms)));
    this.timer.unref();
  }

  private confirmed(fields: ConfirmFields, outcome: 'ack' | 'nack'): void {
    const tag = fields.deliveryTag;
    const q = this.unconfirmed;
    if (fields.multiple) {
      for (let i = q.first(); i >= 0; i = q.next(i)) {
        const t = q.tagAt(i);
        if (t > tag) break;
        const o = q.at(i);
        q.delete(t);
        confirmOutgoing(this, o, outcome);
      }
      return;
    }
    const o = q.delete(tag);
    if (o !== undefined) confirmOutgoing(this, o, outcome);
  }

  /**
   * Write an `open` record for what has been unfinished for the grace
   * period, expire deliveries unsettled past the settle timeout, and come
   * back when the next one is due.
   */
  private sweep(): void {
    this.timer = undefined;
    const { recordGraceMs: grace, settleTimeoutMs: timeout } = this.cfg;
    const now = performance.now();
    let next = Number.POSITIVE_INFINITY;
    const live = this.live;
    for (let i = live.first(); i >= 0; i = live.next(i)) {
      const d = live.at(i);
      if (d.startedAt + Math.min(grace, timeout) > now) {
        next = Math.min(next, d.startedAt + Math.min(grace, timeout));
        break; // later ones started later
      }
      if (d.startedAt + timeout <= now) {
        // Bookkeeping is dropped so nothing leaks; a later settle is still recorded (the message knows its delivery).
        this.live.delete(d.deliveryTag);
        if (!d.openWritten) writeDelivery(d, true);
        if (!d.settled) expireDelivery(this.cfg, d, timeout);
        continue;
      }
      if (!d.openWritten && d.startedAt + grace <= now) writeDelivery(d, true);
      next = Math.min(next, d.startedAt + timeout);
    }
    const unconfirmed = this.unconfirmed;
    for (let i = unconfirmed.first(); i >= 0; i = unconfirmed.next(i)) {
      const o = unconfirmed.at(i);
      if (o.openWritten) continue;
      if (o.startedAt + grace > now) {
        next = Math.min(next, o.startedAt + grace);
        break;
      }
      writeOutgoing(this.cfg, o, true);
    }
    if (next !== Number.POSITIVE_INFINITY) this.arm(next - now);
  }

  /**
   * The channel closed: the broker requeues every unsettled delivery and
   * will confirm nothing more. Write what is known of each (an `open`
   * record, unless one was written already) and end their spans, then hand
   * the writer's batch to the destination at once: a service that closes its
   * channels and then ends its logger or transport loses no line.
   */
  private closeAll(): void {
    const live = this.live;
    for (let i = live.first(); i >= 0; i = live.next(i)) closeDelivery(live.at(i));
    live.clear();
    const unconfirmed = this.unconfirmed;
    for (let i = unconfirmed.first(); i >= 0; i = unconfirmed.next(i)) closeOutgoing(this.cfg, unconfirmed.at(i));
    unconfirmed.clear();
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.cfg.writer.flush();
  }
}

function closeDelivery(d: Delivery): void {
  if (!d.openWritten && !d.written) writeDelivery(d, true);
  d.endSpan('hoptrace.channel_closed');
}
