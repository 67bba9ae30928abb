/**
 * Names and defaults only the collector uses: the environment it reads, where
 * it listens and stores by default, and the tag names of the Jaeger export.
 * Names shared with the library (`HOPTRACE_URL`, `HOPTRACE_TOKEN`, `AMQP_URL`,
 * the semantic conventions) come from the contract and are spread in here, so
 * collector code reads every name from this one module.
 */
import { Defaults as SharedDefaults, Env as SharedEnv } from '../src/contract/semconv.ts';

/** Environment variables the collector (and `hoptrace` CLI) reads. */
export const Env = {
  ...SharedEnv,
  /** SQLite file of the store. */
  HOPTRACE_DB: 'HOPTRACE_DB',
  /** The store as a URL (`postgres://…`, `sqlite:PATH`), instead of `HOPTRACE_DB`. */
  HOPTRACE_STORE: 'HOPTRACE_STORE',
  /** The token replay needs, apart from the one that guards ingest and reads. */
  HOPTRACE_ADMIN_TOKEN: 'HOPTRACE_ADMIN_TOKEN',
  /** Jaeger UI the timeline links traces to. */
  HOPTRACE_JAEGER_URL: 'HOPTRACE_JAEGER_URL',
} as const;

/** The collector's defaults (with the shared ones). */
export const Defaults = {
  ...SharedDefaults,
  /** The port of the address the transport ships to by default, so the two never disagree. */
  COLLECTOR_PORT: Number(new URL(SharedDefaults.COLLECTOR_URL).port),
  DB_PATH: './hoptrace.db',
} as const;

/** Jaeger's own tag and log-field names (jaeger-idl / Jaeger UI conventions), used by the chain export. */
export const JaegerTags = {
  SPAN_KIND: 'span.kind',
  ERROR: 'error',
  /** Log field naming the event; an error log has `event: error`. */
  EVENT: 'event',
  EVENT_ERROR: 'error',
  OTEL_STATUS_CODE: 'otel.status_code',
  OTEL_STATUS_DESCRIPTION: 'otel.status_description',
} as const;
