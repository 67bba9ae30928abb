/**
 * publish / sendToQueue: new options and headers carrying the trace,
 * correlation and causation ids (the caller's objects are never touched and
 * the caller's own headers win), the `send` hop and span, and on a
 * ConfirmChannel the `confirm` hop when the broker answers.
 */
import {
  type Attributes,
  type Context,
  type Span,
  SpanKind,
  SpanStatusCode,
  context,
  propagation,
  trace,
} from '@opentelemetry/api';
import type { ConfirmChannel, Message, Options, Replies } from 'amqplib';
import type { HopRecord } from '../hop.ts';
import type { ChannelState } from './channel-state.ts';
import type { Captured } from './config.ts';
import { type Delivery, hopStorage } from './delivery.ts';
import { producerDestination } from './destination.ts';
import { elapsedMs, formatTraceParent, newSpanId, newTraceId, uuidv7 } from './ids.ts';
import { readIncoming } from './incoming.ts';
import { Attr, Headers, MESSAGING_SYSTEM_RABBITMQ, OperationType } from './semconv.ts';
import { emitHop, telemetryFailed } from './telemetry.ts';
import {
  activeTracer,
  baseHop,
  endSpan,
  errorType,
  hopError,
  hopProperties,
  ownSpanContext,
  where,
} from './tracing.ts';

type ConfirmCallback = (err: any, ok: Replies.Empty) => void;

/** One outgoing message, between prepare and its send/confirm hops. */
class Outgoing {
  readonly exchange: string;
  readonly routingKey: string;
  readonly options: Options.Publish;
  readonly headers: Record<string, unknown>;
  readonly messageId: string;
  readonly correlationId: string;
  readonly causationId: string | undefined;
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string | undefined;
  readonly span: Span | undefined;
  /** The delivery whose handler published this (for the confirm callback's context). */
  readonly store: Delivery | undefined;
  readonly bodySize: number | undefined;
  readonly captured: Captured | undefined;
  /** Date.now() when prepared: the AMQP timestamp hoptrace stamps and the send hop's `ts`. */
  readonly ts: number;
  startedAt: number;

  constructor(
    exchange: string,
    routingKey: string,
    options: Options.Publish,
    headers: Record<string, unknown>,
    messageId: string,
    correlationId: string,
    causationId: string | undefined,
    traceId: string,
    spanId: string,
    parentSpanId: string | undefined,
    span: Span | undefined,
    store: Delivery | undefined,
    bodySize: number | undefined,
    captured: Captured | undefined,
    ts: number,
  ) {
    this.exchange = exchange;
    this.routingKey = routingKey;
    this.options = options;
    this.headers = headers;
    this.messageId = messageId;
    this.correlationId = correlationId;
    this.causationId = causationId;
    this.traceId = traceId;
    this.spanId = spanId;
    this.parentSpanId = parentSpanId;
    this.span = span;
    this.store = store;
    this.bodySize = bodySize;
    this.captured = captured;
    this.ts = ts;
    this.startedAt = 0;
  }
}

/** A set header value the caller gave, as a string; `undefined` when absent. */
function given(headers: Record<string, unknown> | undefined, name: string): string | undefined {
  if (headers === undefined) return undefined;
  const v = headers[name];
  if (v === undefined || v === null) return undefined;
  return typeof v === 'string' ? v : Buffer.isBuffer(v) ? v.toString('utf8') : String(v);
}

function prepare(
  chan: ChannelState,
  exchange: string,
  routingKey: string,
  content: Buffer,
  options: Options.Publish | undefined,
): Outgoing {
  const cfg = chan.cfg;
  const store = hopStorage.getStore();
  const callerHeaders =
    options?.headers !== undefined && options.headers !== null && typeof options.headers === 'object'
      ? (options.headers as Record<string, unknown>)
      : undefined;

  const rawId = options?.messageId;
  const messageId = rawId === undefined || rawId === null || rawId === '' ? uuidv7() : String(rawId);
  const correlationId = given(callerHeaders, cfg.correlationHeader) ?? store?.correlationId ?? messageId;
  const causationId = given(callerHeaders, cfg.causationHeader) ?? store?.messageId;

  const headers: Record<string, unknown> = {};
  let span: Span | undefined;
  let traceId: string | undefined;
  let spanId = '';
  let parentSpanId: string | undefined;

  const tracer = activeTracer(cfg);
  if (tracer !== undefined) {
    try {
      let parentCtx: Context = context.active();
      // Without a context manager the handler's context is not active; the
      // delivery still knows its consumer span.
      if (store?.otelCtx !== undefined && trace.getSpan(parentCtx) === undefined) parentCtx = store.otelCtx;
      const parent = trace.getSpanContext(parentCtx);
      const destination = producerDestination(exchange, routingKey);
      const attributes: Attributes = {
        [Attr.MESSAGING_SYSTEM]: MESSAGING_SYSTEM_RABBITMQ,
        [Attr.MESSAGING_OPERATION_TYPE]: OperationType.SEND,
        [Attr.MESSAGING_OPERATION_NAME]: OperationType.SEND,
        [Attr.MESSAGING_DESTINATION_NAME]: destination,
        [Attr.HOPTRACE_EXCHANGE]: exchange,
        [Attr.MESSAGING_MESSAGE_ID]: messageId,
        [Attr.MESSAGING_MESSAGE_CONVERSATION_ID]: correlationId,
      };
      if (routingKey !== '') attributes[Attr.MESSAGING_RABBITMQ_ROUTING_KEY] = routingKey;
      if (Buffer.isBuffer(content)) attributes[Attr.MESSAGING_MESSAGE_BODY_SIZE] = content.length;
      if (causationId !== undefined) attributes[Attr.HOPTRACE_CAUSATION_ID] = causationId;
      const s = tracer.startSpan(`${OperationType.SEND} ${destination}`, { kind: SpanKind.PRODUCER, attributes }, parentCtx);
      const sc = ownSpanContext(s, parent);
      if (sc === undefined) {
        s.end();
      } else {
        span = s;
        traceId = sc.traceId;
        spanId = sc.spanId;
        parentSpanId = parent?.spanId;
        propagation.inject(trace.setSpan(parentCtx, s), headers);
        // No propagator registered: write W3C trace context ourselves.
        if (headers[Headers.TRACEPARENT] === undefined) {
          headers[Headers.TRACEPARENT] = formatTraceParent(sc.traceId, sc.spanId, sc.traceFlags);
          if (sc.traceState !== undefined) headers[Headers.TRACESTATE] = sc.traceState.serialize();
        }
      }
    } catch (err) {
      telemetryFailed(cfg, 'span', err);
    }
  }
  if (traceId === undefined) {
    // No SDK: hoptrace's own ids, continuing the handled message's trace.
    traceId = store?.traceId ?? newTraceId();
    spanId = newSpanId();
    parentSpanId = store?.spanId;
    headers[Headers.TRACEPARENT] = formatTraceParent(traceId, spanId, store?.traceFlags ?? 1);
    if (store?.tracestate !== undefined) headers[Headers.TRACESTATE] = store.tracestate;
    if (store?.baggage !== undefined) headers[Headers.BAGGAGE] = store.baggage;
  }
  headers[cfg.correlationHeader] = correlationId;
  if (causationId !== undefined) headers[cfg.causationHeader] = causationId;
  // The caller's headers win. for-in like amqplib, which serialises inherited keys too.
  if (callerHeaders !== undefined) for (const key in callerHeaders) headers[key] = callerHeaders[key];

  const now = Date.now();
  const finalOptions: Options.Publish = { ...options, headers, messageId };
  if (options?.timestamp === undefined) finalOptions.timestamp = Math.floor(now / 1000);
  if (options?.appId === undefined) finalOptions.appId = cfg.service;

  const captured = cfg.capture(
    cfg,
    content,
    'send',
    exchange,
    routingKey,
    options?.contentType,
    options?.type,
    headers,
  );
  return new Outgoing(
    exchange,
    routingKey,
    finalOptions,
    headers,
    messageId,
    correlationId,
    causationId,
    traceId,
    spanId,
    parentSpanId,
    span,
    store,
    Buffer.isBuffer(content) ? content.length : undefined,
    captured,
    now,
  );
}

function sendHop(chan: ChannelState, o: Outgoing): HopRecord {
  const cfg = chan.cfg;
  const hop = baseHop(cfg, 'send', o.traceId, o.spanId, o.parentSpanId, o.correlationId, o.causationId, o.messageId);
  // The same instant as the AMQP timestamp, so the hop need not repeat it (hopProperties).
  hop.ts = o.ts;
  hop.exchange = o.exchange;
  hop.routingKey = o.routingKey;
  const opts = o.options;
  if (typeof opts.type === 'string') hop.messageType = opts.type;
  if (typeof opts.contentType === 'string') hop.contentType = opts.contentType;
  if (o.bodySize !== undefined) hop.bodySize = o.bodySize;
  const headers = cfg.renderHeaders(cfg, o.headers, hop, o.spanId);
  if (headers !== undefined) hop.headers = headers;
  const properties = hopProperties(opts, hop, true);
  if (properties !== undefined) hop.properties = properties;
  if (o.captured !== undefined) {
    hop.payload = o.captured.payload;
    if (o.captured.truncated) hop.payloadTruncated = true;
  }
  return hop;
}

/** publish on a plain Channel (or a ConfirmChannel, with `confirm`). */
export function instrumentedPublish(
  chan: ChannelState,
  exchange: string,
  routingKey: string,
  content: Buffer,
  options: Options.Publish | undefined,
  cb: ConfirmCallback | undefined,
): boolean {
  let o: Outgoing | undefined;
  try {
    o = prepare(chan, exchange, routingKey, content, options);
  } catch (err) {
    telemetryFailed(chan.cfg, 'internal', err);
  }
  const raw = chan.raw;
  if (o === undefined) {
    return chan.confirm
      ? (raw as ConfirmChannel).publish(exchange, routingKey, content, options, cb)
      : raw.publish(exchange, routingKey, content, options);
  }
  let ok: boolean;
  try {
    if (chan.confirm) {
      o.startedAt = performance.now();
      ok = (raw as ConfirmChannel).publish(exchange, routingKey, content, o.options, confirmCallback(chan, o, cb));
    } else {
      ok = raw.publish(exchange, routingKey, content, o.options);
    }
  } catch (err) {
    // amqplib refused (closed channel, bad arguments): no send hop, the span says why.
    if (o.span !== undefined) failSpan(chan, o.span, err);
    throw err;
  }
  try {
    const hop = sendHop(chan, o);
    emitHop(chan.cfg, 'info', hop, `send ${o.messageId} to ${where(exchange, routingKey)}`);
  } catch (err) {
    telemetryFailed(chan.cfg, 'internal', err);
  }
  // On a ConfirmChannel the send span lasts until the broker confirms.
  if (o.span !== undefined && !chan.confirm) endSpan(chan.cfg, o.span);
  return ok;
}

function failSpan(chan: ChannelState, span: Span, err: unknown): void {
  try {
    span.setAttribute(Attr.ERROR_TYPE, errorType(err));
    span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
  } catch (e) {
    telemetryFailed(chan.cfg, 'span', e);
  }
  endSpan(chan.cfg, span);
}

// One closure per publish on a ConfirmChannel only: amqplib keeps one
// callback per unconfirmed message, and it has to know which message it is.
function confirmCallback(chan: ChannelState, o: Outgoing, userCb: ConfirmCallback | undefined): ConfirmCallback {
  return function hoptraceConfirm(err, ok) {
    try {
      confirmed(chan, o, err);
    } catch (e) {
      telemetryFailed(chan.cfg, 'internal', e);
    }
    // Like amqplib: a missing callback is skipped, anything else is called (and may throw).
    if (userCb !== undefined && userCb !== null) {
      if (o.store !== undefined) hopStorage.run(o.store, userCb, err, ok);
      else userCb(err, ok);
    }
  };
}

function confirmed(chan: ChannelState, o: Outgoing, err: unknown): void {
  const cfg = chan.cfg;
  const hop = baseHop(cfg, 'confirm', o.traceId, o.spanId, o.parentSpanId, o.correlationId, o.causationId, o.messageId);
  hop.exchange = o.exchange;
  hop.routingKey = o.routingKey;
  hop.outcome = err === null || err === undefined ? 'ack' : 'nack';
  hop.durationMs = elapsedMs(o.startedAt);
  if (hop.outcome === 'nack') hop.error = hopError(err);
  emitHop(
    cfg,
    hop.outcome === 'ack' ? 'info' : 'warn',
    hop,
    hop.outcome === 'ack'
      ? `confirm ${o.messageId}: broker ack`
      : `confirm ${o.messageId}: broker nack (${hop.error?.message ?? 'no reason'})`,
  );
  if (o.span !== undefined) {
    if (hop.outcome === 'nack') failSpan(chan, o.span, err);
    else endSpan(cfg, o.span);
  }
}

/** The channel's 'return' event: a `mandatory` message the broker could not route. */
export function returned(chan: ChannelState, msg: Message): void {
  const cfg = chan.cfg;
  const props = msg.properties;
  const inc = readIncoming(cfg, props.headers as Record<string, unknown> | undefined);
  const messageId = typeof props.messageId === 'string' && props.messageId !== '' ? props.messageId : uuidv7();
  // The message carries the send span's context: the return belongs to that span.
  const hop = baseHop(
    cfg,
    'return',
    inc.traceParent?.traceId ?? newTraceId(),
    inc.traceParent?.spanId ?? newSpanId(),
    undefined,
    inc.correlationId ?? messageId,
    inc.causationId,
    messageId,
  );
  const fields = msg.fields as unknown as { exchange: string; routingKey: string; replyCode: number; replyText: string };
  hop.exchange = fields.exchange;
  hop.routingKey = fields.routingKey;
  hop.outcome = 'returned';
  hop.replyCode = fields.replyCode;
  hop.replyText = fields.replyText;
  if (typeof props.type === 'string') hop.messageType = props.type;
  if (typeof props.contentType === 'string') hop.contentType = props.contentType;
  hop.bodySize = msg.content.length;
  emitHop(
    cfg,
    'warn',
    hop,
    `return ${messageId}: ${fields.replyCode} ${fields.replyText} from ${where(fields.exchange, fields.routingKey)}`,
  );
}
