/**
 * The ids of one message as one side sees it: built once when a message is
 * published or delivered, and shared by its record, its span and (on the
 * consumer side) the async context its handler runs in.
 */
export interface MessageIds {
  readonly traceId: string;
  /** publish: the send span; consume: the consumer span (hoptrace's own when no SDK is registered). */
  readonly spanId: string;
  readonly parentSpanId: string | undefined;
  /** W3C trace flags to pass on (bit 0: sampled). */
  readonly traceFlags: number;
  readonly messageId: string;
  /** The chain's id: `messageId` for a message that starts its chain. */
  readonly correlationId: string;
  /** `messageId` of the message whose handler published this one. */
  readonly causationId: string | undefined;
  /** W3C tracestate and baggage a delivery carried, passed on when hoptrace propagates by itself. */
  readonly tracestate: string | undefined;
  readonly baggage: string | undefined;
}
