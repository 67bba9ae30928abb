/**
 * consume / get and settling: extract the context a message carries, run
 * the handler inside it, and record receive, process and settle hops with
 * the consumer span that spans them.
 */
import {
  type Attributes,
  type Context,
  type Link,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  context,
  propagation,
  trace,
} from '@opentelemetry/api';
import type { ConsumeMessage, Message } from 'amqplib';
import type { HopOutcome, HopRecord } from '../hop.ts';
import { kDelivery } from './symbols.ts';
import { type ChannelState, finishSpan } from './channel-state.ts';
import { Delivery, hopStorage } from './delivery.ts';
import { consumerDestination } from './destination.ts';
import { elapsedMs, newSpanId, newTraceId, uuidv7 } from './ids.ts';
import { type Incoming, readIncoming } from './incoming.ts';
import { Attr, Headers, MESSAGING_SYSTEM_RABBITMQ, OperationType } from './semconv.ts';
import { emitHop, telemetryFailed } from './telemetry.ts';
import { activeTracer, baseHop, endSpan, errorType, hopError, hopProperties, ownSpanContext } from './tracing.ts';

type Handler = (msg: ConsumeMessage | null) => unknown;
type Tracked = Message & { [kDelivery]?: Delivery };

/** One `consume` call: the user's handler and where it consumes from. */
export class Consumer {
  readonly chan: ChannelState;
  readonly queue: string;
  readonly handler: Handler;
  readonly noAck: boolean;
  /** Given to amqplib in place of the user's handler; one per consume, not per message. */
  readonly onMessage: (msg: ConsumeMessage | null) => unknown;

  constructor(chan: ChannelState, queue: string, handler: Handler, noAck: boolean) {
    this.chan = chan;
    this.queue = queue;
    this.handler = handler;
    this.noAck = noAck;
    this.onMessage = (msg) => deliver(this, msg);
  }
}

function deliver(c: Consumer, msg: ConsumeMessage | null): unknown {
  // null: the broker cancelled the consumer; nothing to trace.
  if (msg === null) return c.handler(msg);
  let d: Delivery | undefined;
  try {
    d = receive(c.chan, msg, c.queue, msg.fields.consumerTag, c.noAck, false);
  } catch (err) {
    telemetryFailed(c.chan.cfg, 'internal', err);
  }
  if (d === undefined) return c.handler(msg);
  return hopStorage.run(d, runHandler, c, msg, d);
}

/**
 * Runs inside the delivery's async context. A handler that throws is
 * recorded and the error rethrown to amqplib untouched (so a 'handler-error'
 * listener, or amqplib closing the channel, happens exactly as without
 * hoptrace). A rejected promise is recorded and the rejection passed on, so
 * it stays unhandled exactly as it would be with amqplib alone.
 */
function runHandler(c: Consumer, msg: ConsumeMessage, d: Delivery): unknown {
  let result: unknown;
  d.handlerStartedAt = performance.now();
  try {
    result = d.otelCtx === undefined ? c.handler(msg) : context.with(d.otelCtx, c.handler, undefined, msg);
  } catch (err) {
    processed(c.chan, d, err, true);
    throw err;
  }
  if (result instanceof Promise) {
    // Reactions run in the async context `then` was called in: this
    // delivery's. So two module-level functions serve every message.
    return result.then(handlerFulfilled, handlerRejected);
  }
  if (result !== null && typeof result === 'object' && typeof (result as PromiseLike<unknown>).then === 'function') {
    // A foreign thenable gives no context guarantee: bind this delivery.
    return (result as PromiseLike<unknown>).then(
      (v) => {
        processed(c.chan, d, undefined, false);
        return v;
      },
      (err: unknown) => {
        processed(c.chan, d, err, true);
        throw err;
      },
    );
  }
  processed(c.chan, d, undefined, false);
  return result;
}

function handlerFulfilled(value: unknown): unknown {
  const d = hopStorage.getStore();
  if (d !== undefined) processed(d.channel, d, undefined, false);
  return value;
}

function handlerRejected(err: unknown): never {
  const d = hopStorage.getStore();
  if (d !== undefined) processed(d.channel, d, err, true);
  throw err;
}

const getter = {
  get(carrier: Record<string, string>, key: string): string | undefined {
    return carrier[key];
  },
  keys(carrier: Record<string, string>): string[] {
    return Object.keys(carrier);
  },
};

/** Record a delivery (consume or get): receive hop, consumer span, async-context state. */
export function receive(
  chan: ChannelState,
  msg: Message,
  queue: string,
  consumerTag: string | undefined,
  noAck: boolean,
  isGet: boolean,
): Delivery {
  const cfg = chan.cfg;
  const props = msg.properties;
  const headers = props.headers as Record<string, unknown> | undefined;
  const inc = readIncoming(cfg, headers);
  // A message from a producer that set no id still needs one for its hops.
  const messageId = typeof props.messageId === 'string' && props.messageId !== '' ? props.messageId : uuidv7();
  // No correlation id: an uninstrumented producer, so this message starts a chain.
  const correlationId = inc.correlationId ?? messageId;
  const causationId = inc.causationId;

  let span: Span | undefined;
  let otelCtx: Context | undefined;
  let traceId: string | undefined;
  let spanId = '';
  let parentSpanId: string | undefined;
  let traceFlags = 1;
  // Spans only: the settle span reuses it, so it is computed once per delivery.
  let destination: string | undefined;

  const tracer = activeTracer(cfg);
  if (tracer !== undefined) {
    try {
      const parentCtx = extract(inc);
      const remote = trace.getSpanContext(parentCtx);
      const { exchange, routingKey } = msg.fields;
      destination = consumerDestination(exchange, routingKey, queue);
      const attributes: Attributes = {
        [Attr.MESSAGING_SYSTEM]: MESSAGING_SYSTEM_RABBITMQ,
        [Attr.MESSAGING_OPERATION_TYPE]: isGet ? OperationType.RECEIVE : OperationType.PROCESS,
        [Attr.MESSAGING_OPERATION_NAME]: isGet ? 'get' : OperationType.PROCESS,
        [Attr.MESSAGING_DESTINATION_NAME]: destination,
        [Attr.HOPTRACE_EXCHANGE]: exchange,
        [Attr.HOPTRACE_QUEUE]: queue,
        [Attr.MESSAGING_MESSAGE_ID]: messageId,
        [Attr.MESSAGING_MESSAGE_CONVERSATION_ID]: correlationId,
        [Attr.MESSAGING_RABBITMQ_DELIVERY_TAG]: msg.fields.deliveryTag,
        [Attr.MESSAGING_MESSAGE_BODY_SIZE]: msg.content.length,
        [Attr.HOPTRACE_REDELIVERED]: msg.fields.redelivered,
      };
      if (routingKey !== '') attributes[Attr.MESSAGING_RABBITMQ_ROUTING_KEY] = routingKey;
      if (causationId !== undefined) attributes[Attr.HOPTRACE_CAUSATION_ID] = causationId;
      if (inc.deathCount !== undefined) attributes[Attr.HOPTRACE_DEATH_COUNT] = inc.deathCount;
      const name = `${isGet ? OperationType.RECEIVE : OperationType.PROCESS} ${destination}`;
      // get is a pull the application makes (CLIENT); a pushed delivery is CONSUMER.
      const kind = isGet ? SpanKind.CLIENT : SpanKind.CONSUMER;
      let s: Span;
      if (cfg.consumerLink) {
        const links: Link[] | undefined = remote === undefined ? undefined : [{ context: remote }];
        s = tracer.startSpan(name, { kind, attributes, links, root: true }, parentCtx);
      } else {
        s = tracer.startSpan(name, { kind, attributes }, parentCtx);
      }
      const sc = ownSpanContext(s, remote);
      if (sc === undefined) {
        s.end();
      } else {
        span = s;
        otelCtx = trace.setSpan(parentCtx, s);
        traceId = sc.traceId;
        spanId = sc.spanId;
        traceFlags = sc.traceFlags;
        parentSpanId = cfg.consumerLink ? undefined : remote?.spanId;
      }
    } catch (err) {
      telemetryFailed(cfg, 'span', err);
    }
  }
  if (traceId === undefined) {
    const tp = cfg.consumerLink ? undefined : inc.traceParent;
    traceId = tp?.traceId ?? newTraceId();
    spanId = newSpanId();
    parentSpanId = tp?.spanId;
    traceFlags = inc.traceParent?.traceFlags ?? 1;
  }

  const d = new Delivery(
    chan,
    msg,
    correlationId,
    causationId,
    messageId,
    traceId,
    spanId,
    parentSpanId,
    traceFlags,
    inc.tracestate,
    inc.baggage,
    span,
    otelCtx,
    queue,
    consumerTag,
    destination,
    isGet,
    noAck,
  );
  (msg as Tracked)[kDelivery] = d;
  if (!noAck) chan.track(d);

  const hop = baseHop(cfg, 'receive', traceId, spanId, parentSpanId, correlationId, causationId, messageId);
  addDeliveryFields(hop, d, msg);
  hop.redelivered = msg.fields.redelivered;
  if (inc.death !== undefined) {
    hop.deathCount = inc.deathCount;
    hop.death = inc.death;
  }
  if (typeof props.type === 'string') hop.messageType = props.type;
  if (typeof props.contentType === 'string') hop.contentType = props.contentType;
  hop.bodySize = msg.content.length;
  const rendered = cfg.renderHeaders(cfg, headers, hop, parentSpanId);
  if (rendered !== undefined) hop.headers = rendered;
  const properties = hopProperties(props, hop, false);
  if (properties !== undefined) hop.properties = properties;
  const captured = cfg.capture(
    cfg,
    msg.content,
    'receive',
    msg.fields.exchange,
    msg.fields.routingKey,
    props.contentType as string | undefined,
    props.type as string | undefined,
    headers,
  );
  if (captured !== undefined) {
    hop.payload = captured.payload;
    if (captured.truncated) hop.payloadTruncated = true;
  }
  emitHop(
    cfg,
    'info',
    hop,
    `receive ${messageId} from queue "${queue}"${msg.fields.redelivered ? ' (redelivered)' : ''}${
      inc.deathCount === undefined ? '' : ` (dead-lettered ${inc.deathCount}x)`
    }`,
  );

  if (noAck) {
    // The broker counted it settled when it sent it: say so, so it never looks stuck.
    const settle = baseHop(cfg, 'settle', traceId, spanId, parentSpanId, correlationId, causationId, messageId);
    addDeliveryFields(settle, d, msg);
    settle.outcome = 'ack';
    emitHop(cfg, 'info', settle, `settle ${messageId}: auto-ack (noAck)`);
  }
  // A get has no handler: its span is the pull itself.
  if (isGet) finishSpan(cfg, d);
  return d;
}

function extract(inc: Incoming): Context {
  if (inc.traceparent === undefined && inc.baggage === undefined) return ROOT_CONTEXT;
  const carrier: Record<string, string> = {};
  if (inc.traceparent !== undefined) carrier[Headers.TRACEPARENT] = inc.traceparent;
  if (inc.tracestate !== undefined) carrier[Headers.TRACESTATE] = inc.tracestate;
  if (inc.baggage !== undefined) carrier[Headers.BAGGAGE] = inc.baggage;
  let ctx = propagation.extract(ROOT_CONTEXT, carrier, getter);
  // No propagator registered: use the traceparent hoptrace already validated.
  if (trace.getSpanContext(ctx) === undefined && inc.traceParent !== undefined) {
    const sc: SpanContext = { ...inc.traceParent, isRemote: true };
    ctx = trace.setSpanContext(ctx, sc);
  }
  return ctx;
}

function addDeliveryFields(hop: HopRecord, d: Delivery, msg: Message): void {
  hop.exchange = msg.fields.exchange;
  hop.routingKey = msg.fields.routingKey;
  hop.queue = d.queue;
  if (d.consumerTag !== undefined) hop.consumerTag = d.consumerTag;
  hop.deliveryTag = d.deliveryTag;
}

/** The handler finished (or threw): process hop; ends the span if already settled. */
function processed(chan: ChannelState, d: Delivery, err: unknown, failed: boolean): void {
  try {
    const cfg = chan.cfg;
    d.handlerDone = true;
    const hop = baseHop(cfg, 'process', d.traceId, d.spanId, d.parentSpanId, d.correlationId, d.causationId, d.messageId);
    addDeliveryFields(hop, d, d.message);
    hop.outcome = failed ? 'error' : 'ok';
    hop.durationMs = elapsedMs(d.handlerStartedAt);
    if (failed) hop.error = hopError(err);
    if (failed && d.span !== undefined) {
      try {
        d.span.setAttribute(Attr.ERROR_TYPE, errorType(err));
        d.span.setStatus({ code: SpanStatusCode.ERROR, message: hop.error?.message });
        if (err instanceof Error) d.span.recordException(err);
      } catch (e) {
        telemetryFailed(cfg, 'span', e);
      }
    }
    emitHop(
      cfg,
      failed ? 'error' : 'info',
      hop,
      failed
        ? `process ${d.messageId} failed: ${hop.error?.type}: ${hop.error?.message}`
        : `process ${d.messageId} ok in ${hop.durationMs.toFixed(1)} ms`,
    );
    if (d.settled) finishSpan(cfg, d);
  } catch (e) {
    telemetryFailed(chan.cfg, 'internal', e);
  }
}

type SettleOutcome = Extract<HopOutcome, 'ack' | 'nack' | 'reject'>;

/** ack / nack / reject of one message, or of everything up to it (`allUpTo`). Never throws. */
export function settleMessage(
  chan: ChannelState,
  message: Message,
  outcome: SettleOutcome,
  requeue: boolean | undefined,
  allUpTo: boolean,
): void {
  try {
    const tag = message?.fields?.deliveryTag;
    if (allUpTo) {
      let covered = false;
      for (const d of chan.open.values()) {
        if (d.deliveryTag > tag) break;
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

/** ackAll / nackAll: every delivery still open on this channel. Never throws. */
export function settleAll(chan: ChannelState, outcome: SettleOutcome, requeue: boolean | undefined): void {
  try {
    for (const d of chan.open.values()) settleOne(chan, d, outcome, requeue, true);
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
  const mine = (message as Tracked)[kDelivery];
  // A delivery that timed out is no longer open but still known through the message.
  const d = mine !== undefined && mine.channel === chan ? mine : chan.open.get(message.fields.deliveryTag);
  if (d !== undefined) settleOne(chan, d, outcome, requeue, multiple);
  else settleUntracked(chan, message, outcome, requeue, multiple);
}

function settleOne(
  chan: ChannelState,
  d: Delivery,
  outcome: SettleOutcome,
  requeue: boolean | undefined,
  multiple: boolean,
): void {
  const cfg = chan.cfg;
  chan.untrack(d);
  d.settled = true;
  let spanId: string | undefined;
  let parentSpanId = d.spanId;
  let traceId = d.traceId;
  if (d.otelCtx !== undefined) {
    const tracer = activeTracer(cfg);
    if (tracer !== undefined) {
      try {
        const { exchange, routingKey } = d.message.fields;
        const destination = d.destination ?? consumerDestination(exchange, routingKey, d.queue);
        const attributes: Attributes = {
          [Attr.MESSAGING_SYSTEM]: MESSAGING_SYSTEM_RABBITMQ,
          [Attr.MESSAGING_OPERATION_TYPE]: OperationType.SETTLE,
          [Attr.MESSAGING_OPERATION_NAME]: outcome,
          [Attr.MESSAGING_DESTINATION_NAME]: destination,
          [Attr.HOPTRACE_EXCHANGE]: exchange,
          [Attr.HOPTRACE_QUEUE]: d.queue,
          [Attr.MESSAGING_MESSAGE_ID]: d.messageId,
          [Attr.MESSAGING_MESSAGE_CONVERSATION_ID]: d.correlationId,
          [Attr.MESSAGING_RABBITMQ_DELIVERY_TAG]: d.deliveryTag,
          [Attr.HOPTRACE_SETTLE_OUTCOME]: outcome,
        };
        if (routingKey !== '') attributes[Attr.MESSAGING_RABBITMQ_ROUTING_KEY] = routingKey;
        if (outcome !== 'ack') attributes[Attr.HOPTRACE_REQUEUE] = requeue ?? true;
        const s = tracer.startSpan(`${OperationType.SETTLE} ${destination}`, { kind: SpanKind.CLIENT, attributes }, d.otelCtx);
        const sc = ownSpanContext(s, d.span?.spanContext());
        if (sc !== undefined) {
          spanId = sc.spanId;
          traceId = sc.traceId;
        }
        endSpan(cfg, s);
        d.span?.setAttribute(Attr.HOPTRACE_SETTLE_OUTCOME, outcome);
      } catch (err) {
        telemetryFailed(cfg, 'span', err);
      }
    }
  }
  if (spanId === undefined) {
    spanId = newSpanId();
    parentSpanId = d.spanId;
    traceId = d.traceId;
  }
  const hop = baseHop(cfg, 'settle', traceId, spanId, parentSpanId, d.correlationId, d.causationId, d.messageId);
  addDeliveryFields(hop, d, d.message);
  hop.outcome = outcome;
  if (outcome !== 'ack') hop.requeue = requeue ?? true;
  if (multiple) hop.multiple = true;
  emitHop(cfg, outcome === 'ack' ? 'info' : 'warn', hop, settleText(d.messageId, outcome, requeue, multiple));
  if (d.handlerDone) finishSpan(cfg, d);
}

function settleText(messageId: string, outcome: SettleOutcome, requeue: boolean | undefined, multiple: boolean): string {
  const how = outcome === 'ack' ? 'ack' : `${outcome} (${requeue ?? true ? 'requeue' : 'no requeue'})`;
  return `settle ${messageId}: ${how}${multiple ? ' (multiple)' : ''}`;
}

/** A message hoptrace never saw delivered (consumed through another channel or uninstrumented). */
function settleUntracked(
  chan: ChannelState,
  message: Message,
  outcome: SettleOutcome,
  requeue: boolean | undefined,
  multiple: boolean,
): void {
  const cfg = chan.cfg;
  if (message === null || typeof message !== 'object' || message.properties === undefined) return;
  const inc = readIncoming(cfg, message.properties.headers as Record<string, unknown> | undefined);
  const messageId =
    typeof message.properties.messageId === 'string' && message.properties.messageId !== ''
      ? message.properties.messageId
      : uuidv7();
  const hop = baseHop(
    cfg,
    'settle',
    inc.traceParent?.traceId ?? newTraceId(),
    newSpanId(),
    inc.traceParent?.spanId,
    inc.correlationId ?? messageId,
    inc.causationId,
    messageId,
  );
  hop.exchange = message.fields.exchange;
  hop.routingKey = message.fields.routingKey;
  hop.deliveryTag = message.fields.deliveryTag;
  hop.outcome = outcome;
  if (outcome !== 'ack') hop.requeue = requeue ?? true;
  if (multiple) hop.multiple = true;
  emitHop(cfg, outcome === 'ack' ? 'info' : 'warn', hop, settleText(messageId, outcome, requeue, multiple));
}
