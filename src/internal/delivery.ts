/**
 * One delivery from its receive to its record: the ids its handler runs
 * under (read back through the async context), the consumer span, what
 * the handler and the settle did, and the one `consume` record written
 * when both are done (or an `open` one when the grace period runs out
 * first). One object per delivery, fixed shape.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Context, Span } from '@opentelemetry/api';
import type { Message } from 'amqplib';
import { type ConsumeRecordV2, HOP_RECORD_V2, type HopError } from '../hop.ts';
import type { Cut } from './clip.ts';
import type { ChannelState } from './channel-state.ts';
import type { Config } from './config.ts';
import { type HopLevel, Level } from './hop-writer.ts';
import type { Incoming } from './incoming.ts';
import type { MessageIds } from './message-ids.ts';
import { recordProperties } from './records.ts';
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

export class Delivery {
  readonly source: DeliverySource;
  /** The instrumented channel it was delivered on. */
  readonly channel: ChannelState;
  readonly message: Message;
  readonly ids: MessageIds;
  readonly deliveryTag: number;
  /** Date.now() at receive: the record's `ts`. */
  readonly ts: number;
  /** performance.now() at receive: handler and settle times count from here. */
  readonly startedAt: number;
  /** What the delivered headers said (x-death and the ids). */
  incoming: Incoming | undefined;
  otel: DeliverySpans | undefined;
  handlerDone: boolean;
  processMs: number | undefined;
  error: HopError | undefined;
  settled: boolean;
  settle: SettleOutcome | undefined;
  settleMs: number | undefined;
  requeue: boolean | undefined;
  multiple: boolean;
  settleSpanId: string | undefined;
  /** An `open` record was written (after the grace period, or at channel close). */
  openWritten: boolean;
  /** The complete record was written. */
  written: boolean;
  spanEnded: boolean;

  constructor(source: DeliverySource, message: Message, ids: MessageIds) {
    this.source = source;
    this.channel = source.chan;
    this.message = message;
    this.ids = ids;
    this.deliveryTag = message.fields.deliveryTag;
    this.ts = Date.now();
    this.startedAt = performance.now();
    this.incoming = undefined;
    this.otel = undefined;
    this.handlerDone = false;
    this.processMs = undefined;
    this.error = undefined;
    this.settled = false;
    this.settle = undefined;
    this.settleMs = undefined;
    this.requeue = undefined;
    this.multiple = false;
    this.settleSpanId = undefined;
    this.openWritten = false;
    this.written = false;
    this.spanEnded = false;
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

function levelOf(d: Delivery): HopLevel {
  if (d.error !== undefined) return Level.ERROR;
  return d.settle === undefined || d.settle === 'ack' ? Level.INFO : Level.WARN;
}

/** The delivery's `consume` record: what is known now (`open`), or all of it. */
export function consumeRecord(d: Delivery, open: boolean): ConsumeRecordV2 {
  const cfg = d.channel.cfg;
  const ids = d.ids;
  const msg = d.message;
  const props = msg.properties;
  const fields = msg.fields as Message['fields'] & { consumerTag?: string };
  const queue = d.source.queue;
  const cut: Cut = { truncated: d.incoming?.deathTruncated === true };
  const rec: ConsumeRecordV2 = {
    v: HOP_RECORD_V2,
    kind: 'consume',
    ts: d.ts,
    service: cfg.service,
    // Absent when the pino line's own hostname and pid say it.
    instance: cfg.recordInstance,
    traceId: ids.traceId,
    spanId: ids.spanId,
    messageId: ids.messageId,
    queue,
  };
  if (ids.parentSpanId !== undefined) rec.parentSpanId = ids.parentSpanId;
  if (ids.correlationId !== ids.messageId) rec.correlationId = ids.correlationId;
  if (ids.causationId !== undefined) rec.causationId = ids.causationId;
  if (fields.exchange !== '') rec.exchange = fields.exchange;
  if (fields.routingKey !== queue) rec.routingKey = fields.routingKey;
  // A broker-generated tag (amq.ctag-…) names nothing a person chose.
  const tag = fields.consumerTag;
  if (typeof tag === 'string' && !tag.startsWith('amq.ctag-')) rec.consumerTag = tag;
  rec.deliveryTag = d.deliveryTag;
  if (fields.redelivered) rec.redelivered = true;
  const death = d.incoming?.death;
  if (death !== undefined) rec.death = death;
  rec.bodySize = msg.content.length;
  if (typeof props.contentType === 'string') rec.contentType = props.contentType;
  if (typeof props.type === 'string') rec.messageType = props.type;
  // The producer's traceparent names this record's parent span (child mode): no need to keep it.
  const headers = cfg.renderHeaders(cfg, props.headers as Record<string, unknown> | undefined, ids, ids.parentSpanId, cut);
  if (headers !== undefined) rec.headers = headers;
  const properties = recordProperties(props, rec, cut);
  if (properties !== undefined) rec.properties = properties;
  const captured = cfg.capture(cfg, msg.content, 'receive', fields.exchange, fields.routingKey, props);
  if (captured !== undefined) {
    rec.payload = captured.payload;
    if (captured.truncated) rec.payloadTruncated = true;
  }
  if (cut.truncated) rec.truncated = true;
  if (d.processMs !== undefined) rec.processMs = d.processMs;
  if (d.error !== undefined) rec.error = d.error;
  if (d.settle !== undefined) {
    rec.settle = d.settle;
    rec.settleMs = d.settleMs ?? 0;
    if (d.settle !== 'ack') rec.requeue = d.requeue ?? true;
    if (d.multiple) rec.multiple = true;
    if (d.settleSpanId !== undefined) rec.settleSpanId = d.settleSpanId;
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
    { messageId: d.ids.messageId, correlationId: d.ids.correlationId, queue: d.source.queue, deliveryTag: d.deliveryTag },
    `hoptrace: delivery ${d.deliveryTag} from queue "${d.source.queue}" not settled after ${timeoutMs} ms; its span is ended`,
  );
}
