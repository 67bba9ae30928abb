/**
 * What hoptrace keeps about one delivery between its receive and its
 * settle: the ids its handler runs under (read back through the async
 * context) and the consumer span. One object per delivery, fixed shape.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Context, Span } from '@opentelemetry/api';
import type { Message } from 'amqplib';
import type { ChannelState } from './channel-state.ts';

export class Delivery {
  /** The instrumented channel it was delivered on. */
  readonly channel: ChannelState;
  readonly message: Message;
  readonly correlationId: string;
  /** Causation id the delivered message carried (its parent's message id). */
  readonly causationId: string | undefined;
  readonly messageId: string;
  readonly traceId: string;
  /** Span id of the consumer span (ours when no SDK is registered). */
  readonly spanId: string;
  readonly parentSpanId: string | undefined;
  readonly traceFlags: number;
  /** W3C tracestate / baggage to pass on when hoptrace propagates by itself. */
  readonly tracestate: string | undefined;
  readonly baggage: string | undefined;
  readonly span: Span | undefined;
  /** OpenTelemetry context holding the consumer span (SDK registered only). */
  readonly otelCtx: Context | undefined;
  readonly queue: string;
  readonly consumerTag: string | undefined;
  /** Semconv `messaging.destination.name` of the consumer span (spans only), reused by the settle span. */
  readonly destination: string | undefined;
  readonly deliveryTag: number;
  /** performance.now() at receive (the settle timeout counts from here). */
  readonly startedAt: number;
  /** performance.now() when the handler was called (process durationMs counts from here). */
  handlerStartedAt: number;
  handlerDone: boolean;
  settled: boolean;
  spanEnded: boolean;

  constructor(
    channel: ChannelState,
    message: Message,
    correlationId: string,
    causationId: string | undefined,
    messageId: string,
    traceId: string,
    spanId: string,
    parentSpanId: string | undefined,
    traceFlags: number,
    tracestate: string | undefined,
    baggage: string | undefined,
    span: Span | undefined,
    otelCtx: Context | undefined,
    queue: string,
    consumerTag: string | undefined,
    destination: string | undefined,
    handlerDone: boolean,
    settled: boolean,
  ) {
    this.channel = channel;
    this.message = message;
    this.correlationId = correlationId;
    this.causationId = causationId;
    this.messageId = messageId;
    this.traceId = traceId;
    this.spanId = spanId;
    this.parentSpanId = parentSpanId;
    this.traceFlags = traceFlags;
    this.tracestate = tracestate;
    this.baggage = baggage;
    this.span = span;
    this.otelCtx = otelCtx;
    this.queue = queue;
    this.consumerTag = consumerTag;
    this.destination = destination;
    this.deliveryTag = message.fields.deliveryTag;
    this.startedAt = performance.now();
    this.handlerStartedAt = this.startedAt;
    this.handlerDone = handlerDone;
    this.settled = settled;
    this.spanEnded = span === undefined;
  }
}

/**
 * The delivery whose handler is running. hoptrace's own storage, separate
 * from OpenTelemetry's context, so ids propagate with no SDK at all.
 */
export const hopStorage = new AsyncLocalStorage<Delivery>();
