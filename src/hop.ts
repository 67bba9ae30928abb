/**
 * The hop record: the contract between the library, the transport, the
 * collector and the UI (DESIGN.md, "Hop record", version 1).
 *
 * One JSON object per hop, carried on a pino log line under the `hop` key.
 * Field names are fixed; fields may be added, never renamed or retyped.
 */

/** Schema version written into every record's `v`. */
export const HOP_SCHEMA_VERSION = 1 as const;

/** Every kind of hop, in the order a single message normally meets them. */
export const HOP_KINDS = ['send', 'confirm', 'return', 'receive', 'process', 'settle'] as const;

/**
 * - `send`: publish / sendToQueue
 * - `confirm`: broker ack/nack of a publish on a ConfirmChannel
 * - `return`: an unroutable `mandatory` message handed back by the broker
 * - `receive`: a delivery reached a consumer (consume or get)
 * - `process`: the consume handler finished (ok or error)
 * - `settle`: ack / nack / reject of a delivery
 */
export type HopKind = (typeof HOP_KINDS)[number];

/** One entry of RabbitMQ's `x-death` header, parsed. */
export interface DeathEntry {
  /** Queue the message was dead-lettered from. */
  queue: string;
  /** `rejected`, `expired`, `maxlen`, `delivery_limit`, or what the broker said. */
  reason: string;
  /** How many times the message was dead-lettered from this queue for this reason. */
  count: number;
  /** Exchange the message was published to before it was dead-lettered. */
  exchange: string;
  /** Routing keys the message carried (including CC/BCC). */
  routingKeys: string[];
  /** When it was first dead-lettered this way, epoch milliseconds. */
  time?: number;
}

/** An error, reduced to what survives JSON. */
export interface HopError {
  /** The error's class or `name` (`TypeError`, `HoptraceError`, ...). */
  type: string;
  message: string;
  stack?: string;
  /** A stable code when the error had one (`HOPTRACE_ERR_…`, `ECONNRESET`, ...). */
  code?: string;
}

/**
 * Outcome of a hop. Which values a kind uses:
 * - `confirm`: `ack` | `nack`
 * - `return`: `returned` (with `replyCode` and `replyText`)
 * - `process`: `ok` | `error`
 * - `settle`: `ack` | `nack` | `reject` (with `requeue`, `multiple`)
 */
export type HopOutcome = 'ack' | 'nack' | 'reject' | 'returned' | 'ok' | 'error';

/** The AMQP basic properties of a message, as recorded (never the body). */
export interface HopProperties {
  contentType?: string;
  contentEncoding?: string;
  deliveryMode?: number;
  priority?: number;
  correlationId?: string;
  replyTo?: string;
  expiration?: string;
  messageId?: string;
  /** AMQP timestamp, epoch **seconds** as the protocol carries it. */
  timestamp?: number;
  type?: string;
  userId?: string;
  appId?: string;
}

/** One hop of one message through the system. */
export interface HopRecord {
  /** Schema version, always {@link HOP_SCHEMA_VERSION}. */
  v: typeof HOP_SCHEMA_VERSION;
  kind: HopKind;
  /** Wall-clock time of the hop on the recording host, epoch ms (fractional allowed). */
  ts: number;
  /** Service name (`OTEL_SERVICE_NAME` or the `serviceName` option). */
  service: string;
  /** `host/pid` of the recording process. */
  instance: string;

  /** W3C trace id, 32 lowercase hex chars. */
  traceId: string;
  /** W3C span id of this hop's span, 16 lowercase hex chars. */
  spanId: string;
  /** W3C span id of the parent span, when there is one. */
  parentSpanId?: string;

  /** Id of the whole chain (business flow). */
  correlationId: string;
  /** `messageId` of the message whose handler published this one. */
  causationId?: string;
  /** AMQP `messageId` of the message this hop is about. */
  messageId: string;

  /** Exchange published to / delivered from; `""` is the default exchange. */
  exchange?: string;
  routingKey?: string;
  /** Queue consumed from (receive/process/settle). */
  queue?: string;
  consumerTag?: string;
  deliveryTag?: number;

  redelivered?: boolean;
  /** Sum of `count` over `death`. */
  deathCount?: number;
  /** Dead-letter history parsed from `x-death`, newest first as the broker keeps it. */
  death?: DeathEntry[];

  outcome?: HopOutcome;
  /** settle: whether a nack/reject asked for requeue. */
  requeue?: boolean;
  /** settle: whether this settle came from `allUpTo`, `ackAll` or `nackAll`. */
  multiple?: boolean;
  /** return: AMQP reply code (312 NO_ROUTE, 313 NO_CONSUMERS). */
  replyCode?: number;
  /** return: AMQP reply text. */
  replyText?: string;

  /** process: handler time; confirm: publish → broker confirm latency. */
  durationMs?: number;
  error?: HopError;

  /** AMQP `type` property. */
  messageType?: string;
  contentType?: string;
  /** Body length in bytes. */
  bodySize?: number;

  /**
   * Message headers, every value rendered as a string and capped in length,
   * except those whose value this record already holds: `traceparent` when
   * it is `00-{traceId}-{spanId}-01` (send) or `00-{traceId}-{parentSpanId}-01`
   * (receive), and the correlation / causation id headers when they equal
   * `correlationId` / `causationId`. Absent when no other header is left.
   */
  headers?: Record<string, string>;
  /**
   * AMQP basic properties, except those this record already holds:
   * `messageId`, `contentType`, `type` (as `messageType`), `appId` when it
   * equals `service`, and on a send hop a `timestamp` equal to
   * `Math.floor(ts / 1000)`. Absent when none is left.
   */
  properties?: HopProperties;

  /** Captured body (only when payload capture is on), after redaction, truncated. */
  payload?: string;
  /** True when `payload` was cut at the capture size limit. */
  payloadTruncated?: boolean;
}

/** The key a hop travels under on a pino log line: `{ ..., "hop": HopRecord }`. */
export const HOP_LOG_KEY = 'hop' as const;
