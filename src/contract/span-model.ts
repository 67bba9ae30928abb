/**
 * The span of each hop kind, written once: name, kind and attributes of a
 * publish (`send`), a delivery (`process`, or `receive` for a `get`) and a
 * settle (`ack` / `nack` / `reject`), following the current OpenTelemetry
 * messaging conventions (span name `{messaging.operation.name} {destination}`,
 * `messaging.destination.name` composed as in `destination.ts`).
 *
 * The wrappers start their spans from it (`publish.ts`, `consume.ts`,
 * `settle.ts`), the chain export renders stored hops with it
 * (`collector/chain-export.ts`), and `collector/otlp-hops.ts` reads it back
 * into hops: a hop → span attributes → hop round trip keeps every field the
 * model carries (test/span-model.test.ts).
 */
import { type Attributes, SpanKind } from '@opentelemetry/api';
import type { DeathEntry } from './hop.ts';
import { consumerDestination, producerDestination } from './destination.ts';
import { Attr, MESSAGING_SYSTEM_RABBITMQ, OperationType } from './semconv.ts';

/** A span as the model describes it. */
export interface SpanModel {
  name: string;
  kind: SpanKind;
  attributes: Attributes;
}

/** What every messaging span says about its message. */
export interface MessageSpanFields {
  /** `''`: the default exchange; undefined: not known (the span then names none). */
  exchange: string | undefined;
  routingKey: string;
  messageId: string;
  correlationId: string;
  causationId?: string | undefined;
  bodySize?: number | undefined;
  /** AMQP `type`. */
  messageType?: string | undefined;
}

/** A delivery on the consumer side. */
export interface DeliverySpanFields extends MessageSpanFields {
  /** undefined: not known. */
  queue: string | undefined;
  deliveryTag?: number | undefined;
  consumerTag?: string | undefined;
  redelivered?: boolean | undefined;
  deathCount?: number | undefined;
  death?: readonly DeathEntry[] | undefined;
  /**
   * A pull (`get`): operation `receive` named `get`, a CLIENT span. Else a
   * pushed delivery: `process` (CONSUMER) when a handler ran (`handled`),
   * `receive` (CONSUMER) when none is known to have.
   */
  pull?: boolean | undefined;
  /** A handler ran (or runs) for it. @default true */
  handled?: boolean | undefined;
}

/** A settle of a delivery. */
export interface SettleSpanFields extends DeliverySpanFields {
  outcome: 'ack' | 'nack' | 'reject';
  /** nack / reject: whether requeue was asked for. */
  requeue?: boolean | undefined;
  multiple?: boolean | undefined;
}

function messageAttributes(a: Attributes, f: MessageSpanFields, destination: string): void {
  if (f.exchange !== undefined) {
    a[Attr.MESSAGING_DESTINATION_NAME] = destination;
    a[Attr.HOPTRACE_EXCHANGE] = f.exchange;
  }
  a[Attr.MESSAGING_MESSAGE_ID] = f.messageId;
  a[Attr.MESSAGING_MESSAGE_CONVERSATION_ID] = f.correlationId;
  if (f.routingKey !== '') a[Attr.MESSAGING_RABBITMQ_ROUTING_KEY] = f.routingKey;
  if (f.causationId !== undefined) a[Attr.HOPTRACE_CAUSATION_ID] = f.causationId;
  if (f.bodySize !== undefined) a[Attr.MESSAGING_MESSAGE_BODY_SIZE] = f.bodySize;
  if (f.messageType !== undefined) a[Attr.HOPTRACE_MESSAGE_TYPE] = f.messageType;
}

function deliveryAttributes(a: Attributes, f: DeliverySpanFields, destination: string): void {
  if (f.queue !== undefined) a[Attr.HOPTRACE_QUEUE] = f.queue;
  messageAttributes(a, f, destination);
  if (f.deliveryTag !== undefined) a[Attr.MESSAGING_RABBITMQ_DELIVERY_TAG] = f.deliveryTag;
  if (f.consumerTag !== undefined) a[Attr.HOPTRACE_CONSUMER_TAG] = f.consumerTag;
}

/** The PRODUCER span of a publish: `send {exchange}:{routing key}`. */
export function publishSpan(f: MessageSpanFields): SpanModel {
  const destination = producerDestination(f.exchange ?? '', f.routingKey);
  const attributes: Attributes = {
    [Attr.MESSAGING_SYSTEM]: MESSAGING_SYSTEM_RABBITMQ,
    [Attr.MESSAGING_OPERATION_TYPE]: OperationType.SEND,
    [Attr.MESSAGING_OPERATION_NAME]: OperationType.SEND,
  };
  messageAttributes(attributes, f, destination);
  return { name: `${OperationType.SEND} ${destination}`, kind: SpanKind.PRODUCER, attributes };
}

/** `queue (reason ×count), …`: dead-letter history as one attribute. */
export function deathText(death: readonly DeathEntry[]): string {
  return death.map((d) => `${d.queue} (${d.reason} ×${d.count})`).join(', ');
}

/**
 * The span of a delivery: `process {destination}` (CONSUMER) for a pushed
 * delivery a handler ran for, `receive {destination}` for one without (a
 * CLIENT span with operation name `get` for a pull).
 */
export function deliverySpan(f: DeliverySpanFields): SpanModel {
  const destination = consumerDestination(f.exchange ?? '', f.routingKey, f.queue ?? '');
  const operation = f.pull || f.handled === false ? OperationType.RECEIVE : OperationType.PROCESS;
  const attributes: Attributes = {
    [Attr.MESSAGING_SYSTEM]: MESSAGING_SYSTEM_RABBITMQ,
    [Attr.MESSAGING_OPERATION_TYPE]: operation,
    [Attr.MESSAGING_OPERATION_NAME]: f.pull ? 'get' : operation,
  };
  deliveryAttributes(attributes, f, destination);
  if (f.redelivered !== undefined) attributes[Attr.HOPTRACE_REDELIVERED] = f.redelivered;
  if (f.deathCount !== undefined) attributes[Attr.HOPTRACE_DEATH_COUNT] = f.deathCount;
  if (f.death !== undefined && f.death.length > 0) attributes[Attr.HOPTRACE_DEATH] = deathText(f.death);
  return { name: `${operation} ${destination}`, kind: f.pull ? SpanKind.CLIENT : SpanKind.CONSUMER, attributes };
}

/** The CLIENT span of a settle: `{ack|nack|reject} {destination}`. */
export function settleSpan(f: SettleSpanFields): SpanModel {
  const destination = consumerDestination(f.exchange ?? '', f.routingKey, f.queue ?? '');
  const attributes: Attributes = {
    [Attr.MESSAGING_SYSTEM]: MESSAGING_SYSTEM_RABBITMQ,
    [Attr.MESSAGING_OPERATION_TYPE]: OperationType.SETTLE,
    [Attr.MESSAGING_OPERATION_NAME]: f.outcome,
    [Attr.HOPTRACE_SETTLE_OUTCOME]: f.outcome,
  };
  deliveryAttributes(attributes, f, destination);
  if (f.outcome !== 'ack') attributes[Attr.HOPTRACE_REQUEUE] = f.requeue ?? true;
  if (f.multiple === true) attributes[Attr.HOPTRACE_SETTLE_MULTIPLE] = true;
  return { name: `${f.outcome} ${destination}`, kind: SpanKind.CLIENT, attributes };
}
