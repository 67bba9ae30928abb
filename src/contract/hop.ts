/**
 * The hop record: the contract between the library, the transport, the
 * collector and the UI.
 *
 * Records travel on pino log lines under the `hop` key. Two versions exist,
 * and every reader (the collector, `hoptrace import`, the transport) reads
 * both, mixed freely within one chain:
 *
 * - **Version 1** ({@link HopRecord}): one record per hop (send, confirm,
 *   return, receive, process, settle), each repeating the message's ids.
 *   Five lines of about 600 B for one message's round trip.
 * - **Version 2** ({@link HopRecordV2}), what the library writes: one
 *   record per message per side. The producer writes one `publish` record
 *   (the send, and the broker's confirm on a ConfirmChannel: written at the
 *   confirm there, at the send on a plain channel); the consumer writes one
 *   `consume` record per delivery (the receive, the handler's outcome and
 *   the settle) once the handler has finished and the delivery is settled.
 *   Ids appear once per line; what the line's other fields or the pino line
 *   already say is left out (see each field). A round trip on a
 *   ConfirmChannel is two lines, about 420 and 500 B with their pino fields
 *   for a typical JSON message, where version 1 took five of about 600 B.
 *
 * Why version 2 has this shape: a record is written when a side is done
 * with a message, so the library keeps nothing per message after that and
 * writes one line where it wrote three; the collector stores one row per
 * side instead of one per event. Events that happen later than a side's
 * record (a return; a settle of a message hoptrace never saw delivered) are
 * written as version-1 records.
 *
 * Open records: a side still unfinished after the library's grace period
 * (`recordGraceMs`, default 1 s) is written at once as a record with
 * `open: true` holding what is known so far; the complete record follows
 * when it finishes, and closing the channel writes an open record for what
 * is still pending. Both expand to the same hops, and the collector keeps
 * each hop once, so a delivery that never settles is still seen (and
 * called stuck) within the grace period.
 *
 * What a crash can lose: the records of sides that started less than
 * `recordGraceMs` before it and had not finished, the records written in
 * the last 25 ms before it (the library hands lines to the logger's
 * destination in batches, one write at most 25 ms after a batch's first
 * line, and on exit), and whatever the destination had not written yet
 * (nothing for a synchronous pino destination).
 *
 * Every value a record carries fits {@link HopLimits}: the library clips
 * (a cut string ends with `…`, and `truncated: true` says so on the record
 * or its `error`) and the collector checks, from this one definition.
 *
 * Field names are fixed; fields may be added, never renamed or retyped.
 */

/** Version of the per-hop record ({@link HopRecord}), written into its `v`. */
export const HOP_SCHEMA_VERSION = 1 as const;

/** Version of the per-side record ({@link HopRecordV2}), written into its `v`. */
export const HOP_RECORD_V2 = 2 as const;

/**
 * Size limits of every value a record may carry, in UTF-16 code units: the
 * library clips to them when it writes (a cut string keeps its first
 * `limit - 1` characters and ends with `…`; a cut list keeps its first
 * entries; the record or its error then says `truncated: true`) and the
 * collector checks them when it reads, from this one definition. Numbers
 * are made to fit their fields too: an `x-death` count becomes a
 * non-negative integer (−1 → 0, 1.5 → 1), a time that is not finite is
 * left out.
 */
export const HopLimits = {
  /** service, instance, ids, consumer tag, content type, message type, exchange, routing key, queue. */
  SHORT: 1024,
  /** error message, reply text, one header value. */
  MEDIUM: 64 * 1024,
  /** error stack, captured payload. */
  LONG: 1024 * 1024,
  /** Entries in `headers`, `death`, `routingKeys`. */
  ENTRIES: 1000,
  /** Largest epoch-ms time or ms duration (`ts`, `death[].time`, `durationMs`, …): the range of a JavaScript Date. */
  MAX_EPOCH_MS: 8_640_000_000_000_000,
} as const;

/**
 * Every kind of hop, in the order a single message normally meets them;
 * `replay` (written by the collector, never by the library) comes last.
 */
export const HOP_KINDS = ['send', 'confirm', 'return', 'receive', 'process', 'settle', 'replay'] as const;

/**
 * - `send`: publish / sendToQueue
 * - `confirm`: broker ack/nack of a publish on a ConfirmChannel
 * - `return`: an unroutable `mandatory` message handed back by the broker
 * - `receive`: a delivery reached a consumer (consume or get)
 * - `process`: the consume handler finished (ok or error)
 * - `settle`: ack / nack / reject of a delivery
 * - `replay`: the collector took a dead-lettered message from its dead-letter
 *   queue and republished it (`outcome: 'ack'`: the record is the new
 *   message's publish, `causationId` the dead-lettered message), or tried to
 *   and left it where it was (`nack`, `returned`, `error`: the record is
 *   about the dead-lettered message itself); `requestedBy` says who asked
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
  /** True when a field above was cut to {@link HopLimits} (it then ends with `…`). */
  truncated?: boolean;
}

/**
 * Outcome of a hop. Which values a kind uses:
 * - `confirm`: `ack` | `nack`
 * - `return`: `returned` (with `replyCode` and `replyText`)
 * - `process`: `ok` | `error`
 * - `settle`: `ack` | `nack` | `reject` (with `requeue`, `multiple`)
 * - `replay`: `ack` (republished and confirmed) | `nack` (the broker refused
 *   it) | `returned` (unroutable) | `error` (not in the dead-letter queue, or
 *   the broker failed; `error` says which)
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
  /**
   * True when a value under `headers`, `properties` or `death` was cut to fit
   * {@link HopLimits} (or the library's header cap): a cut string ends with
   * `…`, a cut list keeps its first entries.
   */
  truncated?: boolean;

  /** replay: who asked the collector to replay the message (`ui`, `cli:alice@host`, …). */
  requestedBy?: string;
}

/** The key a hop travels under on a pino log line: `{ ..., "hop": HopRecord }`. */
export const HOP_LOG_KEY = 'hop' as const;

/** What the two version-2 record kinds are about. */
export const HOP_RECORD_V2_KINDS = ['publish', 'consume'] as const;
export type HopRecordV2Kind = (typeof HOP_RECORD_V2_KINDS)[number];

/**
 * Fields both version-2 kinds share. Ids, service and addressing appear
 * once per line.
 */
export interface HopRecordV2Base {
  /** Always {@link HOP_RECORD_V2}. */
  v: typeof HOP_RECORD_V2;
  /** When the side started with the message (publish: the send; consume: the receive), epoch ms. */
  ts: number;
  service: string;
  /**
   * `host/pid` of the recording process. Absent when the pino line carrying
   * the record has `hostname` and `pid`: readers then use
   * `${hostname}/${pid}` of that line.
   */
  instance?: string;
  traceId: string;
  /** publish: the send span; consume: the consumer span. */
  spanId: string;
  parentSpanId?: string;
  messageId: string;
  /** Absent when it equals `messageId` (a message that starts its chain). */
  correlationId?: string;
  causationId?: string;
  bodySize?: number;
  contentType?: string;
  messageType?: string;
  /** As in {@link HopRecord.headers}. */
  headers?: Record<string, string>;
  /** As in {@link HopRecord.properties}. */
  properties?: HopProperties;
  payload?: string;
  payloadTruncated?: boolean;
  /** As in {@link HopRecord.truncated}. */
  truncated?: boolean;
  /**
   * True on a record written before its side finished (after the grace
   * period): what was known then. A complete record for the same message
   * and span follows; readers keep each hop once.
   */
  open?: boolean;
}

/**
 * The producer's record of one publish: the send and, on a ConfirmChannel,
 * the broker's confirm. Expands to a `send` hop and a `confirm` hop.
 */
export interface PublishRecordV2 extends HopRecordV2Base {
  kind: 'publish';
  /** Absent: `""`, the default exchange. */
  exchange?: string;
  routingKey: string;
  /** The broker confirmed this many ms after the send (ConfirmChannel only). */
  confirmMs?: number;
  /** The confirm's outcome when it was a `nack`; absent with `confirmMs` means `ack`. */
  confirm?: 'ack' | 'nack';
  /** Why the broker nacked, when it said. */
  error?: HopError;
}

/**
 * The consumer's record of one delivery: the receive, the handler's outcome
 * and the settle. Expands to `receive`, `process` and `settle` hops.
 */
export interface ConsumeRecordV2 extends HopRecordV2Base {
  kind: 'consume';
  queue: string;
  /** Absent: `""`, the default exchange. */
  exchange?: string;
  /** Absent: equal to `queue` (a message sent to the queue by name). */
  routingKey?: string;
  /** Absent when the broker generated it (`amq.ctag-…`): it names nothing a person chose. */
  consumerTag?: string;
  deliveryTag?: number;
  /** Absent: false. */
  redelivered?: boolean;
  /** Dead-letter history from `x-death`, newest first. */
  death?: DeathEntry[];
  /**
   * The handler ran from `ts` for this many ms. Absent: no handler ran
   * (`get`), or (with `open`) it is still running.
   */
  processMs?: number;
  /** The handler failed with this (the process outcome is `error`). */
  error?: HopError;
  /** How the delivery was settled; absent while open. */
  settle?: 'ack' | 'nack' | 'reject';
  /** The settle came this many ms after `ts`. */
  settleMs?: number;
  /** nack/reject: whether requeue was asked for (written for every nack and reject). */
  requeue?: boolean;
  /** The settle came from `allUpTo`, `ackAll` or `nackAll`. */
  multiple?: boolean;
  /** The settle span's id, when an OpenTelemetry SDK made one. */
  settleSpanId?: string;
}

/** A version-2 record. */
export type HopRecordV2 = PublishRecordV2 | ConsumeRecordV2;

/** Any record a reader accepts. */
export type AnyHopRecord = HopRecord | HopRecordV2;
