/**
 * One outgoing message: its ids (the `MessageIds` its headers, span and
 * record share), the options and headers it goes out with, and on a
 * ConfirmChannel, between its send and the broker's confirm, its `publish`
 * record (built at send, written when the confirm comes, or `open` when the
 * grace period runs out first) and its send span. One object per publish.
 */
import type { Span } from '@opentelemetry/api';
import type { Options } from 'amqplib';
import type { ChannelState } from './channel-state.ts';
import type { Config } from './config.ts';
import type { Delivery } from './delivery.ts';
import { Level } from './hop-writer.ts';
import type { MessageIds } from './message-ids.ts';
import { type PublishRecord, msBetween } from './records.ts';
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
  /** ConfirmChannel: the record as of the send; undefined when nothing wants it (level off, no hook). */
  rec: PublishRecord | undefined = undefined;
  /** performance.now() at the send. */
  startedAt = 0;
  openWritten = false;

  constructor(store: Delivery | undefined) {
    this.store = store;
  }
}

/** Write a publish record; an `open` one is a copy, the record itself stays as it was sent. */
export function writeOutgoing(cfg: Config, o: Outgoing, open: boolean): void {
  const rec = o.rec;
  if (open) o.openWritten = true;
  if (rec === undefined) return;
  const level = rec.confirm === 'nack' ? Level.WARN : Level.INFO;
  if (!cfg.hooked && !cfg.writer.enabled(level)) return;
  const out = open ? { ...rec, open: true } : rec;
  emitRecord(cfg, level, out, rec.confirmMs === undefined ? 1 : 2);
}

/** The broker acked or nacked the publish: the complete record, the send span ended. */
export function confirmOutgoing(chan: ChannelState, o: Outgoing, outcome: 'ack' | 'nack'): void {
  const cfg = chan.cfg;
  const rec = o.rec;
  if (rec !== undefined) {
    rec.confirmMs = msBetween(o.startedAt, performance.now());
    if (outcome === 'nack') rec.confirm = 'nack';
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
