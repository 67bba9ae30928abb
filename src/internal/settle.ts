/**
 * ack / nack / reject (one message, `allUpTo`, `ackAll`, `nackAll`): note
 * how each delivery was settled, make the settle span, and write the
 * delivery's record when its handler is done too. Never throws into the
 * caller: amqplib has already settled by the time this runs.
 */
import type { Message } from 'amqplib';
import type { ChannelState } from './channel-state.ts';
import { type Delivery, type SettleOutcome, finishDelivery } from './delivery.ts';
import { Level } from './hop-writer.ts';
import { newSpanId, newTraceId, uuidv7 } from './ids.ts';
import { readIncoming } from './incoming.ts';
import { hopV1, msBetween } from './records.ts';
import { Attr } from '../contract/semconv.ts';
import { settleSpan } from '../contract/span-model.ts';
import { emitRecord, telemetryFailed } from './telemetry.ts';
import { activeTracer, endSpan, lowerHex, ownSpanContext } from './tracing.ts';

/** ack / nack / reject of one message, or of everything up to it (`allUpTo`). Never throws. */
export function settleMessage(
  chan: ChannelState,
  message: Message,
  outcome: SettleOutcome,
  requeue: boolean | undefined,
  allUpTo: boolean,
): void {
  try {
    if (allUpTo) {
      const tag = message?.fields?.deliveryTag;
      let covered = false;
      const live = chan.live;
      for (let i = live.first(); i >= 0; i = live.next(i)) {
        const d = live.at(i);
        if (d.deliveryTag > tag) break;
        if (d.settled) continue;
        if (d.deliveryTag === tag) covered = true;
        settleOne(chan, d, outcome, requeue, true);
      }
      if (!covered) settleKnownOrNot(chan, message, outcome, requeue, true);
      return;
    }
    settleKnownOrNot(chan, message, outcome, requeue, false);
  } catch (err) {
    telemetryFailed(chan.cfg, 'internal', err);
  }
}

/** ackAll / nackAll: every delivery still unsettled on this channel. Never throws. */
export function settleAll(chan: ChannelState, outcome: SettleOutcome, requeue: boolean | undefined): void {
  try {
    const live = chan.live;
    for (let i = live.first(); i >= 0; i = live.next(i)) {
      const d = live.at(i);
      if (!d.settled) settleOne(chan, d, outcome, requeue, true);
    }
  } catch (err) {
    telemetryFailed(chan.cfg, 'internal', err);
  }
}

function settleKnownOrNot(
  chan: ChannelState,
  message: Message,
  outcome: SettleOutcome,
  requeue: boolean | undefined,
  multiple: boolean,
): void {
  // The delivery this channel tracks under the message's tag: what the broker settles too. One past the
  // settle timeout is no longer tracked; its late settle is recorded as a settle of its own (version 1).
  const d = chan.delivery(message.fields.deliveryTag);
  if (d !== undefined) {
    if (!d.settled) settleOne(chan, d, outcome, requeue, multiple);
  } else settleUntracked(chan, message, outcome, requeue, multiple);
}

function settleOne(
  chan: ChannelState,
  d: Delivery,
  outcome: SettleOutcome,
  requeue: boolean | undefined,
  multiple: boolean,
): void {
  d.settled = true;
  d.settle = outcome;
  d.settleMs = msBetween(d.startedAt, performance.now());
  if (outcome !== 'ack') d.requeue = requeue ?? true;
  d.multiple = multiple;
  if (d.otel !== undefined) settleSpanOf(chan, d, outcome, multiple);
  if (d.handlerDone) finishDelivery(d);
}

/** The settle span (an SDK registered): a CLIENT child of the consumer span. */
function settleSpanOf(chan: ChannelState, d: Delivery, outcome: SettleOutcome, multiple: boolean): void {
  const cfg = chan.cfg;
  const tracer = activeTracer(cfg);
  if (tracer === undefined || d.otel === undefined) return;
  try {
    const { exchange, routingKey } = d.message.fields;
    const model = settleSpan({
      exchange,
      routingKey,
      queue: d.source.queue,
      messageId: d.messageId,
      correlationId: d.correlationId,
      deliveryTag: d.deliveryTag,
      outcome,
      requeue: d.requeue,
      multiple,
    });
    const s = tracer.startSpan(model.name, { kind: model.kind, attributes: model.attributes }, d.otel.ctx);
    const sc = ownSpanContext(s, d.otel.span.spanContext());
    if (sc !== undefined) d.settleSpanId = lowerHex(sc.spanId);
    endSpan(cfg, s);
    d.otel.span.setAttribute(Attr.HOPTRACE_SETTLE_OUTCOME, outcome);
  } catch (err) {
    telemetryFailed(cfg, 'span', err);
  }
}

/** A message hoptrace never saw delivered (consumed through another channel or uninstrumented): a version-1 settle hop. */
function settleUntracked(
  chan: ChannelState,
  message: Message,
  outcome: SettleOutcome,
  requeue: boolean | undefined,
  multiple: boolean,
): void {
  const cfg = chan.cfg;
  const level = outcome === 'ack' ? Level.INFO : Level.WARN;
  if (!cfg.hooked && !cfg.writer.enabled(level)) return;
  if (message === null || typeof message !== 'object' || message.properties === undefined) return;
  const inc = readIncoming(cfg, message.properties.headers as Record<string, unknown> | undefined);
  const messageId =
    typeof message.properties.messageId === 'string' && message.properties.messageId !== ''
      ? message.properties.messageId
      : uuidv7();
  const hop = hopV1(cfg, 'settle', {
    traceId: inc.traceParent?.traceId ?? newTraceId(),
    spanId: newSpanId(),
    parentSpanId: inc.traceParent?.spanId,
    messageId,
    correlationId: inc.correlationId ?? messageId,
    causationId: inc.causationId,
  });
  hop.exchange = message.fields.exchange;
  hop.routingKey = message.fields.routingKey;
  hop.deliveryTag = message.fields.deliveryTag;
  hop.outcome = outcome;
  if (outcome !== 'ack') hop.requeue = requeue ?? true;
  if (multiple) hop.multiple = true;
  emitRecord(cfg, level, hop, 1);
}
