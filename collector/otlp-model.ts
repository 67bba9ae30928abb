/**
 * The decoded shape of an OTLP ExportTraceServiceRequest, shared by the
 * protobuf and the JSON decoder: only what the hop mapping reads, ids as
 * lowercase hex, times as unix nanoseconds in a bigint.
 *
 * Field numbers and JSON names follow opentelemetry-proto
 * (`opentelemetry/proto/trace/v1/trace.proto`, `common/v1/common.proto`).
 */
import { ErrorCodes, ValidationError } from './errors.ts';

/** An attribute value: AnyValue with int64 as a number (or a decimal string beyond 2^53) and bytes as hex. */
export type OtlpValue = string | number | boolean | OtlpValue[] | { [key: string]: OtlpValue } | null;

export type OtlpAttributes = Map<string, OtlpValue>;

/** OTLP `SpanKind` (the wire value: the API's kind + 1). */
export const OtlpSpanKind = {
  UNSPECIFIED: 0,
  INTERNAL: 1,
  SERVER: 2,
  CLIENT: 3,
  PRODUCER: 4,
  CONSUMER: 5,
} as const;

/** OTLP `Status.StatusCode`. */
export const OtlpStatusCode = { UNSET: 0, OK: 1, ERROR: 2 } as const;

export interface OtlpEvent {
  timeUnixNano: bigint;
  name: string;
  attributes: OtlpAttributes;
}

export interface OtlpLink {
  traceId: string;
  spanId: string;
  attributes: OtlpAttributes;
}

export interface OtlpSpan {
  traceId: string;
  spanId: string;
  /** Empty when the span is a root. */
  parentSpanId: string;
  name: string;
  kind: number;
  startTimeUnixNano: bigint;
  endTimeUnixNano: bigint;
  attributes: OtlpAttributes;
  events: OtlpEvent[];
  links: OtlpLink[];
  status: { code: number; message: string };
}

export interface OtlpScopeSpans {
  scopeName: string;
  scopeVersion: string;
  spans: OtlpSpan[];
}

export interface OtlpResourceSpans {
  resource: OtlpAttributes;
  scopeSpans: OtlpScopeSpans[];
}

/**
 * Caps that keep a hostile or broken request from costing more than its size:
 * counts beyond them are an error (the sender must split the batch), lengths
 * beyond them are cut.
 */
export const OtlpLimits = {
  /** Spans in one request. The OpenTelemetry SDK's default batch is 512. */
  MAX_SPANS: 20_000,
  /** Attributes kept per span, event, link or resource; the rest are dropped. */
  MAX_ATTRIBUTES: 256,
  /** Events and links kept per span. */
  MAX_EVENTS: 128,
  MAX_LINKS: 128,
  /** Array / kvlist entries kept per attribute value. */
  MAX_VALUES: 256,
  /** Nesting of array / kvlist attribute values; deeper values become null. */
  MAX_VALUE_DEPTH: 8,
  /** Characters kept of any string. */
  MAX_STRING: 16 * 1024,
} as const;

/** The one error every undecodable body becomes (400, `HOPTRACE_ERR_INVALID_BODY`). */
export function invalidBody(what: string, cause?: unknown): ValidationError {
  return new ValidationError(ErrorCodes.INVALID_BODY, `invalid OTLP trace request: ${what}`, { cause });
}

/** More spans than {@link OtlpLimits.MAX_SPANS}: 413, so the sender splits its batch. */
export function tooManySpans(): ValidationError {
  return new ValidationError(
    ErrorCodes.PAYLOAD_TOO_LARGE,
    `OTLP trace request has more than ${OtlpLimits.MAX_SPANS} spans; send smaller batches (OTEL_BSP_MAX_EXPORT_BATCH_SIZE)`,
    { statusCode: 413 },
  );
}

export function capString(s: string): string {
  return s.length > OtlpLimits.MAX_STRING ? s.slice(0, OtlpLimits.MAX_STRING) : s;
}
