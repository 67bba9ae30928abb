/**
 * publish / sendToQueue: new options and headers carrying the trace,
 * correlation and causation ids (the caller's objects are never touched and
 * the caller's own headers win), the send span, and the message's
 * `publish` record: written at send on a plain channel, at the broker's
 * confirm on a ConfirmChannel.
 *
 * Headers added, and only when the receiver cannot know them otherwise:
 * `traceparent` always (plus `tracestate` / `baggage` when continuing a
 * delivery's context without an SDK), the correlation id header when the
 * chain's id differs from the message's own id (a chain's first message
 * needs none: its message id is the chain id), the causation id header
 * when published from a handler. Nothing in AMQP properties but a
 * `messageId` when the caller set none.
 */
import { type Context, type Span, context, propagation, trace } from '@opentelemetry/api';
import type { ConfirmChannel, Message, Options, Replies } from 'amqplib';
import { HopLimits } from '../contract/hop.ts';
import type { ChannelState } from './channel-state.ts';
import { clip, text } from './clip.ts';
import { type Delivery, currentDelivery, hopStorage } from './delivery.ts';
import { Level } from './hop-writer.ts';
import { formatTraceParent, newSpanId, newTraceId, newTraceParent, uuidv7 } from './ids.ts';
import { readIncoming } from './incoming.ts';
import { Outgoing, noteSend, publishRecord } from './outgoing.ts';
import { hopV1 } from './records.ts';
import { Headers } from '../contract/semconv.ts';
import { publishSpan } from '../contract/span-model.ts';
import { emitRecord, telemetryFailed } from './telemetry.ts';
import { activeTracer, endSpan, failSpan, lowerHex, ownSpanContext } from './tracing.ts';

type ConfirmCallback = (err: any, ok: Replies.Empty) => void;

/**
 * An id header the caller set, when it is one hoptrace can carry: a
 * non-empty string of at most `HopLimits.SHORT` characters, the same rule a
 * consumer applies to what arrives (anything else is left to travel as the
 * caller set it, and the ids fall back as if it were absent).
 */
function given(headers: Record<string, unknown> | undefined, name: string): string | undefined {
  if (headers === undefined) return undefined;
  const v = headers[name];
  return typeof v === 'string' && v !== '' && v.length <= HopLimits.SHORT ? v : undefined;
}

function prepare(
  chan: ChannelState,
  exchange: string,
  routingKey: string,
  content: Buffer,
  options: Options.Publish | undefined,
): Outgoing {
  const cfg = chan.cfg;
  const tracer = activeTracer(cfg);
  // The handled delivery: in hoptrace's storage, or (an SDK registered) in the OpenTelemetry context.
  const store = hopStorage.getStore() ?? (tracer === undefined ? undefined : currentDelivery());
  const o = new Outgoing(store);
  const callerHeaders =
    options?.headers !== undefined && options.headers !== null && typeof options.headers === 'object'
      ? (options.headers as Record<string, unknown>)
      : undefined;

  const rawId: unknown = options?.messageId;
  const generated = rawId === undefined || rawId === null || rawId === '';
  // A messageId that is not a string makes amqplib refuse the publish, as it would without hoptrace.
  const messageId = generated ? uuidv7() : clip(text(rawId), HopLimits.SHORT, { truncated: false });
  const correlationId = given(callerHeaders, cfg.correlationHeader) ?? store?.correlationId ?? messageId;
  const causationId = given(callerHeaders, cfg.causationHeader) ?? store?.messageId;

  /** What the SDK's propagator wrote (traceparent, tracestate, baggage...). */
  let carrier: Record<string, unknown> | undefined;
  let traceparent: string | undefined;
  let span: Span | undefined;
  let traceId: string | undefined;
  let spanId = '';
  let parentSpanId: string | undefined;
  let traceFlags = 1;

  if (tracer !== undefined) {
    try {
      let parentCtx: Context = context.active();
      // Without a context manager the handler's context is not active; the
      // delivery still knows its consumer span.
      if (store?.otel !== undefined && trace.getSpan(parentCtx) === undefined) parentCtx = store.otel.ctx;
      const parent = trace.getSpanContext(parentCtx);
      const model = publishSpan({
        exchange,
        routingKey,
        messageId,
        correlationId,
        causationId,
        bodySize: Buffer.isBuffer(content) ? content.length : undefined,
      });
      const s = tracer.startSpan(model.name, { kind: model.kind, attributes: model.attributes }, parentCtx);
      const sc = ownSpanContext(s, parent);
      if (sc === undefined) {
        s.end();
      } else {
        span = s;
        traceId = lowerHex(sc.traceId);
        spanId = lowerHex(sc.spanId);
        parentSpanId = parent === undefined ? undefined : lowerHex(parent.spanId);
        traceFlags = sc.traceFlags;
        carrier = {};
        propagation.inject(trace.setSpan(parentCtx, s), carrier);
        if (carrier[Headers.TRACEPARENT] === undefined) {
          // No propagator registered: write W3C trace context ourselves.
          carrier[Headers.TRACEPARENT] = formatTraceParent(sc.traceId, sc.spanId, sc.traceFlags);
          if (sc.traceState !== undefined) carrier[Headers.TRACESTATE] = sc.traceState.serialize();
        }
      }
    } catch (err) {
      telemetryFailed(cfg, 'span', err);
    }
  }
  let from: Delivery | undefined;
  if (traceId === undefined) {
    // No SDK: hoptrace's own ids, continuing the handled message's trace. One string; the ids are slices of it.
    from = store;
    traceFlags = from?.traceFlags ?? 1;
    traceparent = newTraceParent(from?.traceId, (traceFlags & 1) === 1);
    traceId = traceparent.slice(3, 35);
    spanId = traceparent.slice(36, 52);
    parentSpanId = from?.spanId;
  }

  const correlated = correlationId !== messageId;
  const caused = causationId !== undefined;
  let out: Record<string, unknown>;
  if (carrier !== undefined) {
    out = carrier;
  } else if (callerHeaders === undefined && from?.tracestate === undefined && from?.baggage === undefined) {
    // The common case, only hoptrace's headers: one reusable headers object per set of them.
    // amqplib makes every publish's headers the prototype of a new object (Object.create), and a
    // fresh prototype each time costs V8 a prototype map and a slow for-in (bench: "What each
    // header ... costs in amqplib"); a reused one does not. Safe: amqplib encodes the headers
    // before publish returns and keeps no reference to them (test/lib-publish.test.ts).
    const shapes = cfg.headerShapes;
    out = correlated ? (caused ? shapes.withBoth : shapes.withCorrelation) : caused ? shapes.withCausation : shapes.traceparentOnly;
    out[Headers.TRACEPARENT] = traceparent;
  } else {
    out = { [Headers.TRACEPARENT]: traceparent };
    if (from?.tracestate !== undefined) out[Headers.TRACESTATE] = from.tracestate;
    if (from?.baggage !== undefined) out[Headers.BAGGAGE] = from.baggage;
  }
  if (correlated) out[cfg.correlationHeader] = correlationId;
  if (caused) out[cfg.causationHeader] = causationId;
  // The caller's headers win. for-in like amqplib, which serialises inherited keys too.
  if (callerHeaders !== undefined) for (const key in callerHeaders) out[key] = callerHeaders[key];

  const finalOptions: Options.Publish = { ...options, headers: out };
  if (generated) finalOptions.messageId = messageId;
  o.traceId = traceId;
  o.spanId = spanId;
  o.parentSpanId = parentSpanId;
  o.traceFlags = traceFlags;
  o.messageId = messageId;
  o.correlationId = correlationId;
  o.causationId = causationId;
  o.headers = out;
  o.options = finalOptions;
  o.span = span;
  return o;
}



/** publish on a plain Channel (or a ConfirmChannel, with `confirm`). Never fails because of hoptrace. */
export function instrumentedPublish(
  chan: ChannelState,
  exchange: string,
  routingKey: string,
  content: Buffer,
  options: Options.Publish | undefined,
  cb: ConfirmCallback | undefined,
): boolean {
  let p: Outgoing | undefined;
  try {
    p = prepare(chan, exchange, routingKey, content, options);
  } catch (err) {
    telemetryFailed(chan.cfg, 'internal', err);
  }
  const raw = chan.raw;
  const confirm = chan.confirmChannel;
  if (p === undefined) {
    return confirm
      ? (raw as ConfirmChannel).publish(exchange, routingKey, content, options, cb)
      : raw.publish(exchange, routingKey, content, options);
  }
  let ok: boolean;
  let tag = 0;
  try {
    if (confirm) {
      if (chan.confirm) tag = chan.nextPublishTag();
      const callback = cb !== undefined && cb !== null && p.store !== undefined ? inContext(p.store, cb) : cb;
      ok = (raw as ConfirmChannel).publish(exchange, routingKey, content, p.options, callback);
    } else {
      ok = raw.publish(exchange, routingKey, content, p.options);
    }
  } catch (err) {
    // amqplib refused (closed channel, bad arguments): no record, the span says why.
    if (p.span !== undefined) failSpan(chan.cfg, p.span, err);
    throw err;
  }
  try {
    sent(chan, p, exchange, routingKey, content, tag);
  } catch (err) {
    telemetryFailed(chan.cfg, 'internal', err);
  }
  return ok;
}

/** After amqplib took the message: the record now (plain channel) or at the confirm. */
function sent(chan: ChannelState, o: Outgoing, exchange: string, routingKey: string, content: Buffer, tag: number): void {
  const cfg = chan.cfg;
  const wanted = cfg.hooked || cfg.writer.enabled(Level.INFO);
  if (wanted) noteSend(cfg, o, exchange, routingKey, content);
  if (chan.confirm) {
    if (!wanted && o.span === undefined) return;
    o.startedAt = performance.now();
    // Only what the record and the span need is kept from here.
    o.headers = undefined;
    o.options = undefined;
    chan.awaitConfirm(tag, o);
    return;
  }
  if (wanted) emitRecord(cfg, Level.INFO, publishRecord(cfg, o, false), 1);
  if (o.span !== undefined) endSpan(cfg, o.span);
}

/**
 * The caller's confirm callback, run in the async context of the handler
 * that published (so what it publishes is caused by the same message).
 * A closure only for a callback given inside a handler.
 */
function inContext(store: Delivery, cb: ConfirmCallback): ConfirmCallback {
  return function hoptraceConfirm(err, ok) {
    hopStorage.run(store, cb, err, ok);
  };
}

/** The channel's 'return' event: a `mandatory` message the broker could not route (a version-1 `return` hop). */
export function returned(chan: ChannelState, msg: Message): void {
  const cfg = chan.cfg;
  if (!cfg.hooked && !cfg.writer.enabled(Level.WARN)) return;
  const props = msg.properties;
  const inc = readIncoming(cfg, props.headers as Record<string, unknown> | undefined);
  const messageId = typeof props.messageId === 'string' && props.messageId !== '' ? props.messageId : uuidv7();
  // The message carries the send span's context: the return belongs to that span.
  const hop = hopV1(cfg, 'return', {
    traceId: inc.traceParent?.traceId ?? newTraceId(),
    spanId: inc.traceParent?.spanId ?? newSpanId(),
    parentSpanId: undefined,
    messageId,
    correlationId: inc.correlationId ?? messageId,
    causationId: inc.causationId,
  });
  const fields = msg.fields as unknown as { exchange: string; routingKey: string; replyCode: number; replyText: string };
  hop.exchange = fields.exchange;
  hop.routingKey = fields.routingKey;
  hop.outcome = 'returned';
  hop.replyCode = fields.replyCode;
  hop.replyText = clip(text(fields.replyText), HopLimits.MEDIUM, { truncated: false });
  if (typeof props.type === 'string') hop.messageType = props.type;
  if (typeof props.contentType === 'string') hop.contentType = props.contentType;
  hop.bodySize = msg.content.length;
  emitRecord(cfg, Level.WARN, hop, 1);
}
