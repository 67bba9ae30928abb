/**
 * A publish on a ConfirmChannel between its send and the broker's confirm:
 * its `publish` record (built at send, written when the confirm comes, or
 * `open` when the grace period runs out first) and its send span.
 */
import type { Span } from '@opentelemetry/api';
import type { PublishRecordV2 } from '../hop.ts';
import type { ChannelState } from './channel-state.ts';
import type { Config } from './config.ts';
import { Level } from './hop-writer.ts';
import { msBetween } from './records.ts';
import { emitRecord } from './telemetry.ts';
import { endSpan, endSpanWith, failSpan } from './tracing.ts';

export class Outgoing {
  /** The record as of the send; undefined when nothing wants it (level off, no hook). */
  readonly rec: PublishRecordV2 | undefined;
  /** performance.now() at the send. */
  readonly startedAt: number;
  readonly span: Span | undefined;
  openWritten: boolean;

  constructor(rec: PublishRecordV2 | undefined, startedAt: number, span: Span | undefined) {
    this.rec = rec;
    this.startedAt = startedAt;
    this.span = span;
    this.openWritten = false;
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
