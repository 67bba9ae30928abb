/**
 * Reading the hop context from user code: which message is being handled,
 * and a pino mixin that stamps those ids onto the user's own log lines.
 */
import { currentDelivery } from './internal/delivery.ts';

/** The ids of the message whose handler is running. */
export interface HopContext {
  /** Id of the whole chain the message belongs to. */
  correlationId: string;
  /** Message id of the message that caused this one; absent for a chain root. */
  causationId: string | undefined;
  /** Id of the message being handled (the causation id of anything published now). */
  messageId: string;
  /** W3C trace id of the consumer span. */
  traceId: string;
}

/**
 * The ids of the message being handled, or `undefined` outside a consume
 * handler (and everything it awaits or schedules).
 * @example
 * await ch.consume(q, async (msg) => {
 *   const { correlationId } = currentHopContext()!;
 * });
 */
export function currentHopContext(): HopContext | undefined {
  const d = currentDelivery();
  if (d === undefined) return undefined;
  return { correlationId: d.correlationId, causationId: d.causationId, messageId: d.messageId, traceId: d.traceId };
}

/** Fields {@link hoptraceMixin} adds to a log line. */
export interface HoptraceLogFields {
  correlationId?: string;
  causationId?: string;
  messageId?: string;
  traceId?: string;
  spanId?: string;
}


/**
 * A pino `mixin`: inside a consume handler every line of your logger carries
 * `correlationId`, `causationId`, `messageId`, `traceId` and `spanId`;
 * outside one it adds nothing.
 * @example
 * const log = pino({ mixin: hoptraceMixin });
 */
export function hoptraceMixin(): HoptraceLogFields {
  const d = currentDelivery();
  // A new object each time, also outside a handler: pino's default mixinMergeStrategy assigns the
  // line's fields into what the mixin returns, so a shared (or frozen) one would be written to.
  if (d === undefined) return {};
  return d.causationId === undefined
    ? { correlationId: d.correlationId, messageId: d.messageId, traceId: d.traceId, spanId: d.spanId }
    : { correlationId: d.correlationId, causationId: d.causationId, messageId: d.messageId, traceId: d.traceId, spanId: d.spanId };
}
