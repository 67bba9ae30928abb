/**
 * One outgoing message: its ids (the `MessageIds` its headers, span and
 * record share), the options and headers it goes out with, and on a
 * ConfirmChannel, between its send and the broker's confirm, its `publish`
 * record (built at send, written when the confirm comes, or `open` when the
 * grace period runs out first) and its send span. One object per publish.
 */
import type { Span } from '@opentelemetry/api';
import type { Options } from 'amqplib';
import type { HopProperties } from '../contract/hop.ts';
import type { ChannelState } from './channel-state.ts';
import type { Cut } from './clip.ts';
import type { Config } from './config.ts';
import type { Delivery } from './delivery.ts';
import { Level } from './hop-writer.ts';
import type { MessageIds } from './message-ids.ts';
import { PublishRecord, msBetween, recordProperties, recordsReusable } from './records.ts';
import { emitRecord } from './telemetry.ts';
import { endSpan, endSpanWith, failSpan } from './tracing.ts';

export class Outgoing implements MessageIds {
  traceId = '';
  spanId = '';
  parentSpanId: string | undefined = undefined;
  traceFlags = 1;
  messageId = '';
  correlationId = '';
  causationId: string | undefined = undefined;
  readonly tracestate = undefined;
  readonly baggage = undefined;
  /** The headers as they go out (ours, then the caller's). */
  headers: Record<string, unknown> | undefined = undefined;
  options: Options.Publish | undefined = undefined;
  span: Span | undefined = undefined;
  /** The delivery whose handler publishes this (for the confirm callback's context). */
  readonly store: Delivery | undefined;
  /** What its record says, noted at the send (`noted`: something wants the record). */
  noted = false;
  ts = 0;
  exchange = '';
  routingKey = '';
  bodySize: number | undefined = undefined;
  contentType: string | undefined = undefined;
  messageType: string | undefined = undefined;
  recordHeaders: Record<string, string> | undefined = undefined;
  recordProperties: HopProperties | undefined = undefined;
  payload: string | undefined = undefined;
  payloadTruncated = false;
  truncated = false;
  /** The broker's confirm, when it came. */
  confirmMs: number | undefined = undefined;
  nacked = false;
  /** performance.now() at the send. */
  startedAt = 0;
  openWritten = false;

  constructor(store: Delivery | undefined) {
    this.store = store;
  }
}

/**
 * Note at the send what the message's record will say (headers must be read
 * now: a reused headers object holds this message's values only until the
 * next publish).
 */
export function noteSend(cfg: Config, o: Outgoing, exchange: string, routingKey: string, content: Buffer): void {
  const cut: Cut = { truncated: false };
  const opts = o.options!;
  o.noted = true;
  o.ts = Date.now();
  o.exchange = exchange;
  o.routingKey = routingKey;
  if (Buffer.isBuffer(content)) o.bodySize = content.length;
  if (typeof opts.contentType === 'string') o.contentType = opts.contentType;
  if (typeof opts.type === 'string') o.messageType = opts.type;
  o.recordHeaders = cfg.renderHeaders(cfg, o.headers, o, o.spanId, cut);
  o.recordProperties = recordProperties(opts, o, cfg.service, cut);
  const captured = cfg.capture(cfg, content, 'send', exchange, routingKey, opts);
  if (captured !== undefined) {
    o.payload = captured.payload;
    o.payloadTruncated = captured.truncated;
  }
  o.truncated = cut.truncated;
}

let scratch: PublishRecord | undefined;

/** The message's `publish` record: as of the send, with the confirm when it came, or `open`. */
export function publishRecord(cfg: Config, o: Outgoing, open: boolean): PublishRecord {
  const rec = recordsReusable(cfg)
    ? (scratch ??= new PublishRecord(cfg, o, o.routingKey, o.ts)).reset(cfg, o, o.routingKey, o.ts)
    : new PublishRecord(cfg, o, o.routingKey, o.ts);
  rec.parentSpanId = o.parentSpanId;
  if (o.correlationId !== o.messageId) rec.correlationId = o.correlationId;
  rec.causationId = o.causationId;
  if (o.exchange !== '') rec.exchange = o.exchange;
  rec.bodySize = o.bodySize;
  rec.contentType = o.contentType;
  rec.messageType = o.messageType;
  rec.headers = o.recordHeaders;
  rec.properties = o.recordProperties;
  rec.payload = o.payload;
  if (o.payloadTruncated) rec.payloadTruncated = true;
  if (o.truncated) rec.truncated = true;
  rec.confirmMs = o.confirmMs;
  if (o.nacked) rec.confirm = 'nack';
  if (open) rec.open = true;
  return rec;
}

/** Write the publish record (`open`: the confirm has not come). */
export function writeOutgoing(cfg: Config, o: Outgoing, open: boolean): void {
  if (open) o.openWritten = true;
  if (!o.noted) return;
  const level = o.nacked ? Level.WARN : Level.INFO;
  if (!cfg.hooked && !cfg.writer.enabled(level)) return;
  emitRecord(cfg, level, publishRecord(cfg, o, open), o.confirmMs === undefined ? 1 : 2);
}

/** The broker acked or nacked the publish: the complete record, the send span ended. */
export function confirmOutgoing(chan: ChannelState, o: Outgoing, outcome: 'ack' | 'nack'): void {
  const cfg = chan.cfg;
  if (o.noted) {
    o.confirmMs = msBetween(o.startedAt, performance.now());
    o.nacked = outcome === 'nack';
    writeOutgoing(cfg, o, false);
  }
  if (o.span !== undefined) {
    if (outcome === 'nack') failSpan(cfg, o.span, new Error('the broker nacked the message'));
    else endSpan(cfg, o.span);
  }
}

/** The channel closed before the confirm: what is known, `open`, unless written already. */
export function closeOutgoing(cfg: Config, o: Outgoing): void {
  if (!o.openWritten) writeOutgoing(cfg, o, true);
  if (o.span !== undefined) endSpanWith(cfg, o.span, 'hoptrace.channel_closed');
}
