/**
 * One delivery from its receive to its record: the ids its handler runs
 * under (read back through the async context), the consumer span, what
 * the handler and the settle did, and the one `consume` record written
 * when both are done (or an `open` one when the grace period runs out
 * first). One object per delivery, fixed shape.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { type Context, type Span, context, createContextKey } from '@opentelemetry/api';
import type { Message } from 'amqplib';
import type { DeathEntry, HopError } from '../contract/hop.ts';
import type { Cut } from './clip.ts';
import type { ChannelState } from './channel-state.ts';
import type { Config } from './config.ts';
import { type HopLevel, Level } from './hop-writer.ts';
import type { MessageIds } from './message-ids.ts';
import { ConsumeRecord, recordProperties, recordsReusable } from './records.ts';
import { emitRecord, note } from './telemetry.ts';
import { endSpan, endSpanWith } from './tracing.ts';

/** Where deliveries come from: a `consume` (a Consumer) or a `get`. */
export interface DeliverySource {
  readonly chan: ChannelState;
  readonly queue: string;
  /** The broker counts a delivery settled when it sends it. */
  readonly noAck: boolean;
  /** A `get`: no handler runs. */
  readonly pull: boolean;
}

/** The OpenTelemetry side of a delivery (an SDK registered). */
export interface DeliverySpans {
  readonly span: Span;
  /** The context holding the consumer span: the handler runs in it, the settle span starts from it. */
  readonly ctx: Context;
}

export type SettleOutcome = 'ack' | 'nack' | 'reject';

/**
 * A delivery: its ids (the `MessageIds` its handler's context and its record
 * share, filled in by `receive`), its span, and what became of it.
 */
export class Delivery implements MessageIds {
  readonly source: DeliverySource;
  /** The instrumented channel it was delivered on. */
  readonly channel: ChannelState;
  readonly message: Message;
  readonly deliveryTag: number;
  /** Date.now() at receive: the record's `ts`. */
  readonly ts: number;
  /** performance.now() at receive: handler and settle times count from here. */
  readonly startedAt: number;
  traceId = '';
  spanId = '';
  parentSpanId: string | undefined = undefined;
  traceFlags = 1;
  messageId = '';
  correlationId = '';
  causationId: string | undefined = undefined;
  tracestate: string | undefined = undefined;
  baggage: string | undefined = undefined;
  /** Dead-letter history from `x-death`, and whether it was cut to the record limits. */
  death: DeathEntry[] | undefined = undefined;
  deathTruncated = false;
  otel: DeliverySpans | undefined = undefined;
  handlerDone = false;
  processMs: number | undefined = undefined;
  error: HopError | undefined = undefined;
  settled = false;
  settle: SettleOutcome | undefined = undefined;
  settleMs: number | undefined = undefined;
  requeue: boolean | undefined = undefined;
  multiple = false;
  settleSpanId: string | undefined = undefined;
  /** An `open` record was written (after the grace period, or at channel close). */
  openWritten = false;
  /** The complete record was written. */
  written = false;
  spanEnded = false;

  constructor(source: DeliverySource, message: Message) {
    this.source = source;
    this.channel = source.chan;
    this.message = message;
    this.deliveryTag = message.fields.deliveryTag;
    this.ts = Date.now();
    this.startedAt = performance.now();
  }

  /** End the consumer span once; `event` says why when it is not the delivery finishing. */
  endSpan(event?: string): void {
    if (this.spanEnded) return;
    this.spanEnded = true;
    const otel = this.otel;
    if (otel === undefined) return;
    if (event === undefined) endSpan(this.channel.cfg, otel.span);
    else endSpanWith(this.channel.cfg, otel.span, event);
  }
}

/**
 * The delivery whose handler is running. hoptrace's own storage, separate
 * from OpenTelemetry's context, so ids propagate with no SDK at all.
 */
export const hopStorage = new AsyncLocalStorage<Delivery>();

/** With an SDK, the delivery travels in the handler's OpenTelemetry context under this key instead. */
export const DELIVERY_KEY = createContextKey('hoptrace.delivery');

/** The delivery whose handler is running (in hoptrace's storage, or in the OpenTelemetry context), if any. */
export function currentDelivery(): Delivery | undefined {
  return hopStorage.getStore() ?? (context.active().getValue(DELIVERY_KEY) as Delivery | undefined);
}

function levelOf(d: Delivery): HopLevel {
  if (d.error !== undefined) return Level.ERROR;
  return d.settle === undefined || d.settle === 'ack' ? Level.INFO : Level.WARN;
}

let scratch: ConsumeRecord | undefined;

/** The delivery's `consume` record: what is known now (`open`), or all of it. */
export function consumeRecord(d: Delivery, open: boolean): ConsumeRecord {
  const cfg = d.channel.cfg;
  const msg = d.message;
  const props = msg.properties;
  const fields = msg.fields as Message['fields'] & { consumerTag?: string };
  const queue = d.source.queue;
  const cut: Cut = { truncated: d.deathTruncated };
  const rec = recordsReusable(cfg)
    ? (scratch ??= new ConsumeRecord(cfg, d, queue, d.ts)).reset(cfg, d, queue, d.ts)
    : new ConsumeRecord(cfg, d, queue, d.ts);
  rec.parentSpanId = d.parentSpanId;
  if (d.correlationId !== d.messageId) rec.correlationId = d.correlationId;
  rec.causationId = d.causationId;
  if (fields.exchange !== '') rec.exchange = fields.exchange;
  if (fields.routingKey !== queue) rec.routingKey = fields.routingKey;
  // A broker-generated tag (amq.ctag-…) names nothing a person chose.
  const tag = fields.consumerTag;
  if (typeof tag === 'string' && !tag.startsWith('amq.ctag-')) rec.consumerTag = tag;
  rec.deliveryTag = d.deliveryTag;
  if (fields.redelivered) rec.redelivered = true;
  rec.death = d.death;
  rec.bodySize = msg.content.length;
  if (typeof props.contentType === 'string') rec.contentType = props.contentType;
  if (typeof props.type === 'string') rec.messageType = props.type;
  // The producer's traceparent names this record's parent span (child mode): no need to keep it.
  rec.headers = cfg.renderHeaders(cfg, props.headers as Record<string, unknown> | undefined, d, d.parentSpanId, cut);
  rec.properties = recordProperties(props, rec, cfg.service, cut);
  const captured = cfg.capture(cfg, msg.content, 'receive', fields.exchange, fields.routingKey, props);
  if (captured !== undefined) {
    rec.payload = captured.payload;
    if (captured.truncated) rec.payloadTruncated = true;
  }
  if (cut.truncated) rec.truncated = true;
  rec.processMs = d.processMs;
  rec.error = d.error;
  if (d.settle !== undefined) {
    rec.settle = d.settle;
    rec.settleMs = d.settleMs ?? 0;
    if (d.settle !== 'ack') rec.requeue = d.requeue ?? true;
    if (d.multiple) rec.multiple = true;
    rec.settleSpanId = d.settleSpanId;
  }
  if (open) rec.open = true;
  return rec;
}

/** Write the delivery's record (`open`: it is not finished). */
export function writeDelivery(d: Delivery, open: boolean): void {
  if (open) d.openWritten = true;
  else d.written = true;
  const cfg = d.channel.cfg;
  const level = levelOf(d);
  if (!cfg.hooked && !cfg.writer.enabled(level)) return;
  const rec = consumeRecord(d, open);
  emitRecord(cfg, level, rec, 1 + (rec.processMs === undefined ? 0 : 1) + (rec.settle === undefined ? 0 : 1));
}

/** Handler done and settled: the complete record, the consumer span ended. */
export function finishDelivery(d: Delivery): void {
  d.channel.untrack(d);
  writeDelivery(d, false);
  d.endSpan();
}

/** Left unsettled past the settle timeout: its span is ended and a warning says so. */
export function expireDelivery(cfg: Config, d: Delivery, timeoutMs: number): void {
  d.endSpan('hoptrace.settle_timeout');
  note(
    cfg,
    'warn',
    { messageId: d.messageId, correlationId: d.correlationId, queue: d.source.queue, deliveryTag: d.deliveryTag },
    `hoptrace: delivery ${d.deliveryTag} from queue "${d.source.queue}" not settled after ${timeoutMs} ms; its span is ended`,
  );
}
