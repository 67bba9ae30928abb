/**
 * The OpenTelemetry side: which tracer to use (if any), and the shared
 * pieces of hop records. Only `@opentelemetry/api` is used; with no SDK
 * registered there are no spans and hoptrace makes W3C ids itself.
 */
import { type Span, type SpanContext, type Tracer, isSpanContextValid, trace } from '@opentelemetry/api';
import { HOP_SCHEMA_VERSION, type HopError, type HopKind, type HopProperties, type HopRecord } from '../hop.ts';
import type { Config } from './config.ts';
import { telemetryFailed } from './telemetry.ts';
import { LIBRARY_NAME, LIBRARY_VERSION } from './version.ts';

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
    return provider.getTracer(LIBRARY_NAME, LIBRARY_VERSION);
  }
  const delegate = provider.getDelegate();
  if (provider !== lastProvider || delegate !== lastDelegate) {
    lastProvider = provider;
    lastDelegate = delegate;
    lastTracer = provider.getDelegateTracer(LIBRARY_NAME, LIBRARY_VERSION);
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
  if (!isSpanContextValid(sc)) return undefined;
  if (parent !== undefined && sc.spanId === parent.spanId) return undefined;
  return sc;
}

/** Run a span operation; a throwing SDK or exporter is contained and counted. */
export function endSpan(cfg: Config, span: Span): void {
  try {
    span.end();
  } catch (err) {
    telemetryFailed(cfg, 'span', err);
  }
}

/** The fields every hop has. */
export function baseHop(
  cfg: Config,
  kind: HopKind,
  traceId: string,
  spanId: string,
  parentSpanId: string | undefined,
  correlationId: string,
  causationId: string | undefined,
  messageId: string,
): HopRecord {
  const hop: HopRecord = {
    v: HOP_SCHEMA_VERSION,
    kind,
    ts: Date.now(),
    service: cfg.service,
    instance: cfg.instance,
    traceId,
    spanId,
    correlationId,
    messageId,
  };
  if (parentSpanId !== undefined) hop.parentSpanId = parentSpanId;
  if (causationId !== undefined) hop.causationId = causationId;
  return hop;
}

/** An error as a hop carries it. */
export function hopError(err: unknown): HopError {
  if (err instanceof Error) {
    const out: HopError = { type: errorType(err), message: err.message };
    if (err.stack !== undefined) out.stack = err.stack;
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' || typeof code === 'number') out.code = String(code);
    return out;
  }
  let message: string;
  try {
    message = String(err);
  } catch {
    message = 'unprintable value';
  }
  return { type: err === null ? 'null' : typeof err, message };
}

export function errorType(err: unknown): string {
  if (err instanceof Error) return err.name || err.constructor?.name || 'Error';
  return err === null ? 'null' : typeof err;
}

type PropertySource = {
  contentType?: unknown;
  contentEncoding?: unknown;
  deliveryMode?: unknown;
  persistent?: unknown;
  priority?: unknown;
  correlationId?: unknown;
  replyTo?: unknown;
  expiration?: unknown;
  messageId?: unknown;
  timestamp?: unknown;
  type?: unknown;
  userId?: unknown;
  appId?: unknown;
};

/**
 * AMQP basic properties as a hop records them, from publish options or a
 * delivered message, leaving out what the hop's own fields already hold:
 * `messageId` (= `messageId`), `contentType` (= `contentType`), `type`
 * (= `messageType`), `appId` when it equals `service`, and on a send hop
 * a `timestamp` equal to `Math.floor(ts / 1000)` (the one hoptrace stamps
 * when the caller gave none). `undefined` when nothing is left. Call after
 * the hop's own fields are set.
 */
export function hopProperties(p: PropertySource, hop: HopRecord, isSend: boolean): HopProperties | undefined {
  let out: HopProperties | undefined;
  if (typeof p.contentType === 'string' && p.contentType !== hop.contentType) (out ??= {}).contentType = p.contentType;
  if (typeof p.contentEncoding === 'string') (out ??= {}).contentEncoding = p.contentEncoding;
  // Publish options say `persistent` (amqplib's preferred spelling) or `deliveryMode`.
  if (p.persistent !== undefined) (out ??= {}).deliveryMode = p.persistent ? 2 : 1;
  else if (typeof p.deliveryMode === 'number') (out ??= {}).deliveryMode = p.deliveryMode;
  else if (p.deliveryMode === true) (out ??= {}).deliveryMode = 2;
  if (typeof p.priority === 'number') (out ??= {}).priority = p.priority;
  if (typeof p.correlationId === 'string') (out ??= {}).correlationId = p.correlationId;
  if (typeof p.replyTo === 'string') (out ??= {}).replyTo = p.replyTo;
  if (typeof p.expiration === 'string' || typeof p.expiration === 'number') (out ??= {}).expiration = String(p.expiration);
  if (typeof p.messageId === 'string' && p.messageId !== hop.messageId) (out ??= {}).messageId = p.messageId;
  if (typeof p.timestamp === 'number' && !(isSend && p.timestamp === Math.floor(hop.ts / 1000))) {
    (out ??= {}).timestamp = p.timestamp;
  }
  if (typeof p.type === 'string' && p.type !== hop.messageType) (out ??= {}).type = p.type;
  if (typeof p.userId === 'string') (out ??= {}).userId = p.userId;
  if (typeof p.appId === 'string' && p.appId !== hop.service) (out ??= {}).appId = p.appId;
  return out;
}

/** How a log line names where a message went: `exchange "x" key "k"` or `queue "q"`. */
export function where(exchange: string, routingKey: string): string {
  return exchange === '' ? `queue "${routingKey}" (default exchange)` : `exchange "${exchange}" key "${routingKey}"`;
}
