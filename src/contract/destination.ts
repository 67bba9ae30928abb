/**
 * `messaging.destination.name` for RabbitMQ, as the current semantic
 * conventions (1.30+, `docs/messaging/rabbitmq.md` note [1]) compose it, and
 * back: the one place the rule lives. The wrappers build it once per publish
 * and per delivery (span name `{operation} {destination}`); the collector's
 * OTLP decoder parses it when a span carries no `hoptrace.exchange` /
 * `hoptrace.queue`, and the chain export names its spans with it.
 *
 * - producer: `{exchange}:{routing key}`; only the non-empty one when just one
 *   is; `amq.default` for the default exchange without a routing key.
 * - consumer: `{exchange}:{routing key}:{queue}`, empty parts left out, and
 *   the routing key left out when it equals the queue (a default-exchange
 *   `sendToQueue('orders')` consumed from `orders` is `orders`).
 *
 * Before 1.30 the destination was the bare exchange name; the parsers fall
 * back to that reading when the composite does not fit the routing key / queue.
 */
import { DEFAULT_EXCHANGE_DESTINATION } from './semconv.ts';

/** Destination of a publish. */
export function producerDestination(exchange: string, routingKey: string): string {
  if (exchange === '') return routingKey === '' ? DEFAULT_EXCHANGE_DESTINATION : routingKey;
  return routingKey === '' ? exchange : `${exchange}:${routingKey}`;
}

/** Destination of a delivery (process, receive, settle). */
export function consumerDestination(exchange: string, routingKey: string, queue: string): string {
  let out = exchange;
  if (routingKey !== '' && routingKey !== queue) out = out === '' ? routingKey : `${out}:${routingKey}`;
  if (queue !== '') out = out === '' ? queue : `${out}:${queue}`;
  return out === '' ? DEFAULT_EXCHANGE_DESTINATION : out;
}

/** `whole` without a trailing `:part` (or `''` when it is `part`); undefined when it does not end so. */
function stripLast(whole: string, part: string): string | undefined {
  if (whole === part) return '';
  const n = whole.length - part.length - 1;
  return n >= 0 && whole.endsWith(part) && whole.charCodeAt(n) === 0x3a /* : */ ? whole.slice(0, n) : undefined;
}

/**
 * The exchange a producer span's `messaging.destination.name` names (`''`: the default exchange).
 * @param routingKey the span's routing-key attribute, when it has one
 */
export function exchangeOfProducerDestination(destination: string, routingKey: string | undefined): string {
  if (destination === DEFAULT_EXCHANGE_DESTINATION) return '';
  if (routingKey) return stripLast(destination, routingKey) ?? destination;
  return destination;
}

/**
 * Exchange and queue from a consumer-side span's `messaging.destination.name`.
 * @param routingKey the span's routing-key attribute, when it has one
 * @param queue the queue when something else on the span says it
 * @returns the queue only when known or recoverable from the composite
 */
export function parseConsumerDestination(
  destination: string,
  routingKey: string | undefined,
  queue: string | undefined,
): { exchange: string; queue?: string } {
  if (destination === DEFAULT_EXCHANGE_DESTINATION) return queue ? { exchange: '', queue } : { exchange: '' };
  const key = routingKey || undefined;
  if (queue) {
    const rest = stripLast(destination, queue);
    // Not ending in the queue: a pre-1.30 span, whose destination is the exchange.
    if (rest === undefined) return { exchange: destination, queue };
    const exchange = key !== undefined && key !== queue ? stripLast(rest, key) ?? rest : rest;
    return { exchange, queue };
  }
  if (key !== undefined) {
    // Routing key equal to the queue: written once.
    if (destination === key) return { exchange: '', queue: key };
    const mid = destination.indexOf(`:${key}:`);
    if (mid >= 0) return { exchange: destination.slice(0, mid), queue: destination.slice(mid + key.length + 2) };
    if (destination.startsWith(`${key}:`)) return { exchange: '', queue: destination.slice(key.length + 1) };
    const rest = stripLast(destination, key);
    if (rest !== undefined) return { exchange: rest, queue: key };
  }
  return { exchange: destination };
}
