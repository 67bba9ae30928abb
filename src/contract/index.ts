/**
 * hoptrace's contract: what the library, the collector, the demo and the UI
 * agree on. The hop record types and their limits, the messaging
 * semantic-convention and header names, the RabbitMQ destination naming, the
 * span model, the id shapes, the error root, the validation vocabulary, URL
 * redaction, and the package's name and version. It depends on nothing but
 * `@opentelemetry/api` (for the span model's `SpanKind`).
 *
 * Inside this repository each part imports the module it needs
 * (`src/contract/hop.ts`, …); `test/import-boundaries.test.ts` keeps
 * `collector/`, `demo/` and `ui/` away from `src/internal/`.
 */
export {
  HOP_KINDS,
  HOP_SCHEMA_VERSION,
  HOP_RECORD_V2,
  HOP_RECORD_V2_KINDS,
  HOP_LOG_KEY,
  HopLimits,
} from './hop.ts';
export type {
  HopRecord,
  HopKind,
  DeathEntry,
  HopError,
  HopOutcome,
  HopProperties,
  HopRecordV2,
  HopRecordV2Base,
  HopRecordV2Kind,
  PublishRecordV2,
  ConsumeRecordV2,
  AnyHopRecord,
} from './hop.ts';
export {
  Attr,
  Defaults,
  DEFAULT_EXCHANGE_DESTINATION,
  DEFAULT_SERVICE_NAME,
  Env,
  Headers,
  MESSAGING_SYSTEM_RABBITMQ,
  OperationType,
  SpanEvents,
} from './semconv.ts';
export {
  consumerDestination,
  exchangeOfProducerDestination,
  parseConsumerDestination,
  producerDestination,
} from './destination.ts';
export { deliverySpan, publishSpan, settleSpan } from './span-model.ts';
export type { SpanModel } from './span-model.ts';
export {
  isSpanId,
  isTraceId,
  SPAN_ID_PATTERN,
  TRACE_ID_PATTERN,
  UUID_PATTERN,
  ZERO_SPAN_ID,
  ZERO_TRACE_ID,
} from './ids.ts';
export { ConfigError, HoptraceError, INVALID_OPTION } from './errors.ts';
export { PACKAGE_NAME, VERSION } from './version.ts';
export { redactUrl } from './url.ts';
