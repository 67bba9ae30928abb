/**
 * The OpenTelemetry side: which tracer to use (if any), and ending spans
 * safely. Only `@opentelemetry/api` is used; with no SDK registered there
 * are no spans and hoptrace makes W3C ids itself.
 */
import { type Span, type SpanContext, SpanStatusCode, type Tracer, trace } from '@opentelemetry/api';
import type { Config } from './config.ts';
import { errorType } from './records.ts';
import { Attr } from '../contract/semconv.ts';
import { telemetryFailed } from './telemetry.ts';
import { PACKAGE_NAME, VERSION } from '../contract/version.ts';

interface DelegatingProvider {
  getDelegate(): unknown;
  getDelegateTracer(name: string, version?: string): Tracer | undefined;
}

// The global provider is a proxy whose delegate appears when an SDK
// registers (possibly after a channel was wrapped) and is replaced by
// `trace.disable()`. Asking the proxy for its delegate costs one call; the
// tracer is looked up again only when the delegate changes.
let lastProvider: unknown;
let lastDelegate: unknown;
let lastTracer: Tracer | undefined;

/** The tracer to make spans with, or `undefined` when no SDK is registered. */
export function activeTracer(cfg: Config): Tracer | undefined {
  if (cfg.fixedTracer !== undefined) return cfg.fixedTracer;
  const provider = trace.getTracerProvider() as unknown as Partial<DelegatingProvider> & { getTracer(n: string, v?: string): Tracer };
  if (typeof provider.getDelegate !== 'function' || typeof provider.getDelegateTracer !== 'function') {
    // Not the API's proxy (another API copy registered something else): trust it.
    return provider.getTracer(PACKAGE_NAME, VERSION);
  }
  const delegate = provider.getDelegate();
  if (provider !== lastProvider || delegate !== lastDelegate) {
    lastProvider = provider;
    lastDelegate = delegate;
    lastTracer = provider.getDelegateTracer(PACKAGE_NAME, VERSION);
  }
  return lastTracer;
}

/**
 * A span is usable for ids when it has a valid context of its own. A no-op
 * tracer hands back the parent's context (or an invalid one); then hoptrace
 * falls back to its own ids.
 */
export function ownSpanContext(span: Span, parent: SpanContext | undefined): SpanContext | undefined {
  const sc = span.spanContext();
  // What isSpanContextValid checks (hex ids, not all zero), without its two regular expressions per span.
  if (!isHexId(sc.traceId, 32) || !isHexId(sc.spanId, 16)) return undefined;
  if (parent !== undefined && sc.spanId === parent.spanId) return undefined;
  return sc;
}

/** `id` is `length` hex digits (either case), not all zero. */
function isHexId(id: unknown, length: number): boolean {
  if (typeof id !== 'string' || id.length !== length) return false;
  let nonZero = false;
  for (let i = 0; i < length; i++) {
    const c = id.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      if (c !== 48) nonZero = true;
    } else if ((c >= 97 && c <= 102) || (c >= 65 && c <= 70)) nonZero = true;
    else return false;
  }
  return nonZero;
}

/** Run a span operation; a throwing SDK or exporter is contained and counted. */
export function endSpan(cfg: Config, span: Span): void {
  try {
    span.end();
  } catch (err) {
    telemetryFailed(cfg, 'span', err);
  }
}

/** Mark a span failed with the error's type and message, then end it. Never throws. */
export function failSpan(cfg: Config, span: Span, err: unknown): void {
  try {
    span.setAttribute(Attr.ERROR_TYPE, errorType(err));
    span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
  } catch (e) {
    telemetryFailed(cfg, 'span', e);
  }
  endSpan(cfg, span);
}

/** Add an event to a span and end it (a span closed by something other than its own end: timeout, channel close). */
export function endSpanWith(cfg: Config, span: Span, event: string): void {
  try {
    span.addEvent(event);
  } catch (err) {
    telemetryFailed(cfg, 'span', err);
  }
  endSpan(cfg, span);
}

/**
 * A span's ids as records carry them: lowercase hex. The SDK's are already;
 * a custom id generator's uppercase ones are valid to OpenTelemetry but not
 * to the record schema.
 */
export function lowerHex(id: string): string {
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i);
    if (c >= 65 && c <= 70) return id.toLowerCase();
  }
  return id;
}
