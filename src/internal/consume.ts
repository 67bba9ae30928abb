/**
 * consume / get: extract the context a message carries, run the handler
 * inside it, and note what the handler did. The delivery's record is
 * written once it is both handled and settled (see settle.ts, delivery.ts).
 */
import { type Context, type Link, ROOT_CONTEXT, type SpanContext, type SpanOptions, SpanStatusCode, context, propagation, trace } from '@opentelemetry/api';
import type { ConsumeMessage, Message } from 'amqplib';
import type { ChannelState } from './channel-state.ts';
import {
  DELIVERY_KEY,
  Delivery,
  type DeliverySource,
  type DeliverySpans,
  currentDelivery,
  finishDelivery,
  hopStorage,
  writeDelivery,
} from './delivery.ts';
import { newSpanId, newTraceId, uuidv7 } from './ids.ts';
import { type Incoming, readIncoming } from './incoming.ts';
import { msBetween, recordError } from './records.ts';
import { Attr, Headers } from '../contract/semconv.ts';
import { deliverySpan } from '../contract/span-model.ts';
import { telemetryFailed } from './telemetry.ts';
import { activeTracer, lowerHex, ownSpanContext } from './tracing.ts';

type Handler = (msg: ConsumeMessage | null) => unknown;

/** One `consume` call: the user's handler and where it consumes from. */
export class Consumer implements DeliverySource {
  readonly chan: ChannelState;
  readonly queue: string;
  readonly handler: Handler;
  readonly noAck: boolean;
  readonly pull = false;
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

/** Where a `get` takes its message from (made per call: a get is a round trip to the broker anyway). */
export function pullSource(chan: ChannelState, queue: string, noAck: boolean): DeliverySource {
  return { chan, queue, noAck, pull: true };
}

function deliver(c: Consumer, msg: ConsumeMessage | null): unknown {
  // null: the broker cancelled the consumer; nothing to trace.
  if (msg === null) return c.handler(msg);
  let d: Delivery | undefined;
  try {
    d = receive(c, msg);
  } catch (err) {
    telemetryFailed(c.chan.cfg, 'internal', err);
  }
  if (d === undefined) return c.handler(msg);
  // With an SDK the delivery travels in the OpenTelemetry context the handler runs in anyway: one async
  // context to enter, not two (each costs Node a copy of the context frame on the way in and out).
  if (d.otel !== undefined) return context.with(d.otel.ctx, runInSpan, undefined, d);
  return hopStorage.run(d, runInStore);
}

/** The handler in the delivery's OpenTelemetry context; in hoptrace's own when no context manager carries that one. */
function runInSpan(d: Delivery): unknown {
  if (context.active().getValue(DELIVERY_KEY) !== d) return hopStorage.run(d, runHandler, d);
  return runHandler(d);
}

/** The handler in hoptrace's own async context (no arguments: nothing allocated to pass them). */
function runInStore(): unknown {
  return runHandler(hopStorage.getStore()!);
}

/**
 * Runs inside the delivery's async context. A handler that throws is
 * noted and the error rethrown to amqplib untouched (so a 'handler-error'
 * listener, or amqplib closing the channel, happens exactly as without
 * hoptrace). A rejected promise is noted and the rejection passed on, so
 * it stays unhandled exactly as it would be with amqplib alone.
 */
function runHandler(d: Delivery): unknown {
  const c = d.source as Consumer;
  const msg = d.message as ConsumeMessage;
  let result: unknown;
  try {
    result = c.handler(msg);
  } catch (err) {
    processed(d, err, true);
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
        processed(d, undefined, false);
        return v;
      },
      (err: unknown) => {
        processed(d, err, true);
        throw err;
      },
    );
  }
  processed(d, undefined, false);
  return result;
}

function handlerFulfilled(value: unknown): unknown {
  const d = currentDelivery();
  if (d !== undefined) processed(d, undefined, false);
  return value;
}

function handlerRejected(err: unknown): never {
  const d = currentDelivery();
  if (d !== undefined) processed(d, err, true);
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

/** A delivery (consume or get) arrived: its ids, its consumer span, its bookkeeping. */
export function receive(source: DeliverySource, msg: Message): Delivery {
  const chan = source.chan;
  const cfg = chan.cfg;
  const props = msg.properties;
  const inc = readIncoming(cfg, props.headers as Record<string, unknown> | undefined);
  // A message from a producer that set no id still needs one for its record.
  const messageId = typeof props.messageId === 'string' && props.messageId !== '' ? props.messageId : uuidv7();
  // No correlation id: a chain's first message (its id is the chain's), or an uninstrumented producer.
  const correlationId = inc.correlationId ?? messageId;
  const causationId = inc.causationId;

  let otel: DeliverySpans | undefined;
  let traceId: string | undefined;
  let spanId = '';
  let parentSpanId: string | undefined;
  let traceFlags = 1;

  const tracer = activeTracer(cfg);
  if (tracer !== undefined) {
    try {
      const parentCtx = extract(inc);
      const remote = trace.getSpanContext(parentCtx);
      const { exchange, routingKey, deliveryTag, redelivered } = msg.fields;
      const model = deliverySpan({
        exchange,
        routingKey,
        queue: source.queue,
        messageId,
        correlationId,
        causationId,
        deliveryTag,
        bodySize: msg.content.length,
        redelivered,
        deathCount: inc.deathCount,
        death: inc.death,
        pull: source.pull,
      });
      const options: SpanOptions = { kind: model.kind, attributes: model.attributes };
      if (cfg.consumerLink) {
        options.root = true;
        if (remote !== undefined) options.links = [{ context: remote } satisfies Link];
      }
      const s = tracer.startSpan(model.name, options, parentCtx);
      const sc = ownSpanContext(s, remote);
      if (sc === undefined) {
        s.end();
      } else {
        otel = { span: s, ctx: trace.setSpan(parentCtx, s) };
        traceId = lowerHex(sc.traceId);
        spanId = lowerHex(sc.spanId);
        traceFlags = sc.traceFlags;
        parentSpanId = cfg.consumerLink || remote === undefined ? undefined : lowerHex(remote.spanId);
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

  const d = new Delivery(source, msg);
  // The handler's OpenTelemetry context carries the delivery too (see deliver).
  if (otel !== undefined) otel = { span: otel.span, ctx: otel.ctx.setValue(DELIVERY_KEY, d) };
  d.traceId = traceId;
  d.spanId = spanId;
  d.parentSpanId = parentSpanId;
  d.traceFlags = traceFlags;
  d.messageId = messageId;
  d.correlationId = correlationId;
  d.causationId = causationId;
  d.tracestate = inc.tracestate;
  d.baggage = inc.baggage;
  d.death = inc.death;
  d.deathTruncated = inc.deathTruncated;
  d.otel = otel;
  if (source.noAck) {
    // The broker counted it settled when it sent it: say so, so it never looks stuck.
    d.settled = true;
    d.settle = 'ack';
    d.settleMs = 0;
  }
  if (source.pull) {
    // A get has no handler: its span is the pull itself.
    d.handlerDone = true;
    d.endSpan();
  }
  if (d.settled && d.handlerDone) writeDelivery(d, false);
  else chan.track(d);
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

/** The handler finished (or threw): the record follows once the delivery is settled too. */
function processed(d: Delivery, err: unknown, failed: boolean): void {
  try {
    if (d.handlerDone) return;
    d.handlerDone = true;
    d.processMs = msBetween(d.startedAt, performance.now());
    if (failed) {
      d.error = recordError(err);
      const span = d.otel?.span;
      if (span !== undefined) {
        try {
          span.setAttribute(Attr.ERROR_TYPE, d.error.type);
          span.setStatus({ code: SpanStatusCode.ERROR, message: d.error.message });
          if (err instanceof Error) span.recordException(err);
        } catch (e) {
          telemetryFailed(d.channel.cfg, 'span', e);
        }
      }
    }
    if (d.settled) finishDelivery(d);
  } catch (e) {
    telemetryFailed(d.channel.cfg, 'internal', e);
  }
}

