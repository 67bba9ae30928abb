/**
 * Names from the standards and from hoptrace's contract, in one place: message header
 * names, OpenTelemetry messaging semantic-convention attribute names, the
 * values hoptrace writes, and the environment names more than one part reads.
 * Nothing else in the code spells these strings; names only the collector uses
 * (Jaeger tags, its own environment and defaults) are in `collector/settings.ts`.
 */

/** Message headers hoptrace reads and writes (defaults; header names are configurable). */
export const Headers = {
  TRACEPARENT: 'traceparent',
  TRACESTATE: 'tracestate',
  BAGGAGE: 'baggage',
  CORRELATION_ID: 'x-correlation-id',
  CAUSATION_ID: 'x-causation-id',
  /** RabbitMQ's dead-letter history. */
  X_DEATH: 'x-death',
} as const;

/**
 * OpenTelemetry messaging semantic conventions (current, stable names).
 * https://opentelemetry.io/docs/specs/semconv/messaging/rabbitmq/
 */
export const Attr = {
  MESSAGING_SYSTEM: 'messaging.system',
  MESSAGING_OPERATION_TYPE: 'messaging.operation.type',
  MESSAGING_OPERATION_NAME: 'messaging.operation.name',
  MESSAGING_DESTINATION_NAME: 'messaging.destination.name',
  MESSAGING_DESTINATION_TEMPORARY: 'messaging.destination.temporary',
  MESSAGING_CONSUMER_GROUP_NAME: 'messaging.consumer.group.name',
  MESSAGING_MESSAGE_ID: 'messaging.message.id',
  MESSAGING_MESSAGE_CONVERSATION_ID: 'messaging.message.conversation_id',
  MESSAGING_MESSAGE_BODY_SIZE: 'messaging.message.body.size',
  MESSAGING_RABBITMQ_ROUTING_KEY: 'messaging.rabbitmq.destination.routing_key',
  MESSAGING_RABBITMQ_DELIVERY_TAG: 'messaging.rabbitmq.message.delivery_tag',
  ERROR_TYPE: 'error.type',
  SERVER_ADDRESS: 'server.address',
  SERVER_PORT: 'server.port',
  SERVICE_NAME: 'service.name',
  /** hoptrace's own attributes, for what semconv has no name for. */
  HOPTRACE_CAUSATION_ID: 'hoptrace.causation_id',
  HOPTRACE_CORRELATION_ID: 'hoptrace.correlation_id',
  HOPTRACE_QUEUE: 'hoptrace.queue',
  /**
   * The exchange, on its own (`''` for the default exchange): `messaging.destination.name`
   * is a composite since semconv 1.30 (see `destination.ts`), this needs no parsing.
   */
  HOPTRACE_EXCHANGE: 'hoptrace.exchange',
  HOPTRACE_SETTLE_OUTCOME: 'hoptrace.settle.outcome',
  HOPTRACE_REQUEUE: 'hoptrace.settle.requeue',
  HOPTRACE_REDELIVERED: 'hoptrace.redelivered',
  HOPTRACE_DEATH_COUNT: 'hoptrace.death_count',
  /** Older (pre-1.26) semconv names still emitted by some instrumentations; read, never written. */
  LEGACY_MESSAGING_OPERATION: 'messaging.operation',
  LEGACY_MESSAGING_MESSAGE_ID: 'messaging.message_id',
  LEGACY_MESSAGING_CONVERSATION_ID: 'messaging.conversation_id',
  LEGACY_MESSAGING_RABBITMQ_ROUTING_KEY: 'messaging.rabbitmq.routing_key',
  LEGACY_MESSAGING_DESTINATION: 'messaging.destination',
  /** semconv 1.45+ names that replace `messaging.rabbitmq.*`; read, not yet written. */
  RABBITMQ_DESTINATION_ROUTING_KEY: 'rabbitmq.destination.routing_key',
  RABBITMQ_MESSAGE_DELIVERY_TAG: 'rabbitmq.message.delivery_tag',
  /** Resource attributes the OTLP ingest reads for `service` / `instance`. */
  SERVICE_INSTANCE_ID: 'service.instance.id',
  HOST_NAME: 'host.name',
  PROCESS_PID: 'process.pid',
  /** Attributes of the `exception` span event. */
  EXCEPTION_TYPE: 'exception.type',
  EXCEPTION_MESSAGE: 'exception.message',
  EXCEPTION_STACKTRACE: 'exception.stacktrace',
  /** hoptrace's own attributes on exported / re-ingested spans and events. */
  HOPTRACE_SETTLE_MULTIPLE: 'hoptrace.settle.multiple',
  HOPTRACE_OUTCOME: 'hoptrace.outcome',
  HOPTRACE_DURATION_MS: 'hoptrace.duration_ms',
  HOPTRACE_REPLY_CODE: 'hoptrace.reply_code',
  HOPTRACE_REPLY_TEXT: 'hoptrace.reply_text',
  HOPTRACE_CONSUMER_TAG: 'hoptrace.consumer_tag',
  HOPTRACE_MESSAGE_TYPE: 'hoptrace.message_type',
  /** Dead-letter history, rendered `queue (reason ×count), …`, on exported consumer spans. */
  HOPTRACE_DEATH: 'hoptrace.death',
  /** A service's estimated clock offset (ms) in a chain, on exported resources / Jaeger processes. */
  HOPTRACE_CLOCK_OFFSET_MS: 'hoptrace.clock_offset_ms',
  /** An exported span's parent span id when that parent is not part of the chain. */
  HOPTRACE_PARENT_SPAN_ID: 'hoptrace.parent_span_id',
  HOPTRACE_VERSION: 'hoptrace.version',
} as const;

/** Span event names. */
export const SpanEvents = {
  /** The OpenTelemetry exception event (`span.recordException`). */
  EXCEPTION: 'exception',
  /** hoptrace: a broker confirm of a publish (on the producer span). */
  HOPTRACE_CONFIRM: 'hoptrace.confirm',
  /** hoptrace: an unroutable `mandatory` message returned (on the producer span). */
  HOPTRACE_RETURN: 'hoptrace.return',
} as const;

/** Values of `messaging.operation.type`. */
export const OperationType = {
  SEND: 'send',
  RECEIVE: 'receive',
  PROCESS: 'process',
  SETTLE: 'settle',
  CREATE: 'create',
  /** Pre-1.27 name of `send` for batch-less publishes; read, never written. */
  PUBLISH: 'publish',
  /** semconv 1.26's push-delivery name, renamed `process` in 1.27; read, never written. */
  DELIVER: 'deliver',
} as const;

/**
 * `messaging.destination.name` of a publish to the default exchange without a
 * routing key (semconv RabbitMQ note [1]); an instrumentation may also write it for the default exchange.
 */
export const DEFAULT_EXCHANGE_DESTINATION = 'amq.default';

/** Value of `messaging.system`. */
export const MESSAGING_SYSTEM_RABBITMQ = 'rabbitmq';

/** Default service name when neither the option nor `OTEL_SERVICE_NAME` is set. */
export const DEFAULT_SERVICE_NAME = 'unknown_service:node';

/**
 * Environment variables more than one part reads: the library's wrappers and
 * transport, the demo, and the collector (which has its own in
 * `collector/settings.ts`).
 */
export const Env = {
  AMQP_URL: 'AMQP_URL',
  OTEL_SERVICE_NAME: 'OTEL_SERVICE_NAME',
  OTEL_EXPORTER_OTLP_ENDPOINT: 'OTEL_EXPORTER_OTLP_ENDPOINT',
  /** Where the transport ships hops (the collector's base URL). */
  HOPTRACE_URL: 'HOPTRACE_URL',
  /** The collector's token: the transport sends it, the collector checks it. */
  HOPTRACE_TOKEN: 'HOPTRACE_TOKEN',
} as const;

/** Defaults shared by more than one part. */
export const Defaults = {
  AMQP_URL: 'amqp://guest:guest@localhost:5672',
  /** Where a collector listens unless told otherwise (`collector/settings.ts` has its port). */
  COLLECTOR_URL: 'http://localhost:4400',
} as const;
