/**
 * HoptraceOptions → Config, once per instrument()/connect(). Validation
 * happens here and nowhere else; switched-off features become no-op
 * functions so the hot path never asks "is this on?".
 */
import { hostname } from 'node:os';
import type { Tracer, TracerProvider } from '@opentelemetry/api';
import pino, { type Logger } from 'pino';
import { exactObject, fail, type Failure, finite, func, guard, type Infer, isPlainObject, oneOf, optional, parse, string } from '../contract/schema.ts';
import { ConfigError } from '../errors.ts';
import { type AnyHopRecord, HopLimits } from '../contract/hop.ts';
import type { HoptraceOptions, PayloadInfo } from '../options.ts';
import { type Cut, clip, text } from './clip.ts';
import { type HopWriter, writerFor } from './hop-writer.ts';
import type { MessageIds } from './message-ids.ts';
import { DEFAULT_SERVICE_NAME, Env, Headers } from '../contract/semconv.ts';
import { describe, telemetryFailed } from './telemetry.ts';
import { PACKAGE_NAME, VERSION } from '../contract/version.ts';

export interface Captured {
  payload: string;
  truncated: boolean;
}

/** The message properties (or publish options) a payload capture is told about. */
export interface CaptureProps {
  contentType?: unknown;
  type?: unknown;
  headers?: unknown;
}

export type CaptureFn = (
  cfg: Config,
  content: Buffer,
  direction: 'send' | 'receive',
  exchange: string,
  routingKey: string,
  props: CaptureProps | undefined,
) => Captured | undefined;

/** Headers for a record, leaving out those the record's own fields carry (see {@link renderHeaders}). */
export type RenderHeadersFn = (
  cfg: Config,
  headers: Record<string, unknown> | undefined,
  ids: MessageIds,
  traceparentSpanId: string | undefined,
  cut: Cut,
) => Record<string, string> | undefined;

/** A headers object per set of headers hoptrace adds, keys in the order they go out. */
export interface HeaderShapes {
  traceparentOnly: Record<string, unknown>;
  withCorrelation: Record<string, unknown>;
  withCausation: Record<string, unknown>;
  withBoth: Record<string, unknown>;
}

function headerShapes(correlation: string, causation: string): HeaderShapes {
  const tp = Headers.TRACEPARENT;
  return {
    traceparentOnly: { [tp]: '' },
    withCorrelation: { [tp]: '', [correlation]: '' },
    withCausation: { [tp]: '', [causation]: '' },
    withBoth: { [tp]: '', [correlation]: '', [causation]: '' },
  };
}

export interface Config {
  readonly service: string;
  /** `host/pid`. */
  readonly instance: string;
  readonly logger: Logger;
  /** How records reach the logger's stream, decided once per logger. */
  readonly writer: HopWriter;
  /** `instance` as version-2 records carry it: absent when the writer's lines say hostname and pid. */
  readonly recordInstance: string | undefined;
  readonly correlationHeader: string;
  readonly causationHeader: string;
  /** Headers objects reused by every publish that carries only hoptrace's headers, one per set of them (publish.ts). */
  readonly headerShapes: HeaderShapes;
  readonly capture: CaptureFn;
  /** Guarded hook; a no-op when there is none. Set once, right after the config is built. */
  onHop: (record: AnyHopRecord) => void;
  /** A hook wants every record, even those the logger's level leaves out. */
  hooked: boolean;
  readonly consumerLink: boolean;
  readonly settleTimeoutMs: number;
  /** A side unfinished this long gets an `open` record. */
  readonly recordGraceMs: number;
  readonly renderHeaders: RenderHeadersFn;
  /** The tracer given by `tracerProvider`; undefined means "ask the global provider". */
  readonly fixedTracer: Tracer | undefined;
  /** Failure kinds already reported (report once). */
  readonly reported: Set<string>;
}

export const DEFAULT_MAX_PAYLOAD_BYTES = 4096;
export const DEFAULT_SETTLE_TIMEOUT_MS = 300_000;
export const DEFAULT_RECORD_GRACE_MS = 1_000;
/** AMQP short strings (shortstr) hold at most this many bytes. */
export const MAX_SHORTSTR_BYTES = 255;
export const MAX_HEADER_VALUE_CHARS = 256;
export const MAX_RECORDED_HEADERS = 32;
// setTimeout's ceiling; a larger timeout would fire at once.
const MAX_TIMEOUT_MS = 2 ** 31 - 1;
// AMQP shortstr: header names are at most 255 bytes.
const HEADER_NAME_RE = /^[\x21-\x7e]{1,255}$/;
// eslint-disable-next-line no-control-regex
const CONTROL_RE = /[\u0000-\u001f\u007f]/;

let defaultLogger: Logger | undefined;

/**
 * stdout, asynchronous (never blocks the event loop on a slow reader; pino
 * flushes it on exit), in writes of at most 4 KiB. hoptrace hands it one
 * batch of lines at most every 25 ms. For a file, a synchronous destination
 * costs less per byte (see the README's performance notes).
 */
function defaultDestination(): ReturnType<typeof pino.destination> {
  return pino.destination({ dest: 1, sync: false, maxWrite: 4096 });
}

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'function') return 'a function';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  return String(v);
}

const timeoutMs = finite({ min: Number.MIN_VALUE, max: MAX_TIMEOUT_MS, text: `be a number of milliseconds between 1 and ${MAX_TIMEOUT_MS}` });
const headerName = string(255, { pattern: HEADER_NAME_RE, patternText: 'be a header name (1-255 printable ASCII characters, no spaces)' });

const captureObject = exactObject({
  maxBytes: optional(
    finite({ min: 1, max: HopLimits.LONG, integer: true, text: `be a positive integer of at most ${HopLimits.LONG} (the longest payload a record may carry)` }),
  ),
  redact: optional(func),
});

/**
 * Every option of {@link HoptraceOptions} and what it must be; what depends on
 * the environment or on two options at once is checked after defaults are
 * resolved (in {@link resolveConfig}).
 */
const optionsSchema = exactObject({
  serviceName: optional(guard((v): v is string => typeof v === 'string' && v !== '', 'be a non-empty string')),
  logger: optional(
    guard(
      (v): v is Logger =>
        typeof v === 'object' &&
        v !== null &&
        typeof (v as Logger).info === 'function' &&
        typeof (v as Logger).warn === 'function' &&
        typeof (v as Logger).error === 'function',
      'be a pino logger (an object with info, warn and error methods)',
    ),
  ),
  headerNames: optional(exactObject({ correlationId: optional(headerName), causationId: optional(headerName) })),
  capturePayload: optional<boolean | Infer<typeof captureObject>>((v) =>
    typeof v === 'boolean' ? undefined : isPlainObject(v) ? captureObject(v) : fail('be a boolean or { maxBytes?, redact? }', v),
  ),
  hooks: optional(exactObject({ onHop: optional(func) })),
  consumerSpanParent: optional(oneOf(['child', 'link'], "be 'child' or 'link'")),
  settleTimeoutMs: optional(timeoutMs),
  recordGraceMs: optional(timeoutMs),
  recordHeaders: optional(guard((v): v is boolean => typeof v === 'boolean', 'be a boolean')),
  tracerProvider: optional(
    guard(
      (v): v is TracerProvider => typeof v === 'object' && v !== null && typeof (v as TracerProvider).getTracer === 'function',
      'be an OpenTelemetry TracerProvider (with getTracer)',
    ),
  ),
});

/** The option a failure is about, said the way a user wrote it. */
function optionError(f: Failure): ConfigError {
  if (f.unknown) {
    const dot = f.field.lastIndexOf('.');
    return new ConfigError(`hoptrace: unknown option "${f.field}"; known ${dot < 0 ? 'options are' : `options of "${f.field.slice(0, dot)}" are`} ${f.must.replace(/^be one of /, '')}`);
  }
  return new ConfigError(`hoptrace: option "${f.field || 'options'}" must ${f.must} (got ${show(f.got)})`);
}

/** Validate options and resolve every default. Throws ConfigError naming the option. */
export function resolveConfig(given: HoptraceOptions | undefined): Config {
  const options = parse(optionsSchema, given ?? {}, optionError);

  const envName = process.env[Env.OTEL_SERVICE_NAME];
  const service = options.serviceName ?? (envName !== undefined && envName !== '' ? envName : DEFAULT_SERVICE_NAME);
  const serviceBytes = Buffer.byteLength(service);
  if (serviceBytes > MAX_SHORTSTR_BYTES) {
    throw new ConfigError(
      `hoptrace: option "serviceName" must be at most ${MAX_SHORTSTR_BYTES} bytes in UTF-8, the limit of an AMQP short string (got ${serviceBytes} bytes${options.serviceName === undefined ? ` from ${Env.OTEL_SERVICE_NAME}` : ''})`,
    );
  }
  if (CONTROL_RE.test(service)) {
    throw new ConfigError(`hoptrace: option "serviceName" must not contain control characters (got ${JSON.stringify(service)})`);
  }

  const logger = options.logger ?? (defaultLogger ??= pino({ name: PACKAGE_NAME }, defaultDestination()));

  const correlationHeader: string = options.headerNames?.correlationId ?? Headers.CORRELATION_ID;
  const causationHeader: string = options.headerNames?.causationId ?? Headers.CAUSATION_ID;
  if (correlationHeader === causationHeader) {
    throw new ConfigError(
      `hoptrace: option "headerNames" gives the correlation and causation ids the same header "${correlationHeader}"`,
    );
  }

  const capture = resolveCapture(options.capturePayload);
  const hook: ((record: AnyHopRecord) => void) | undefined = options.hooks?.onHop;
  const parent = options.consumerSpanParent ?? 'child';
  const settleTimeoutMs = options.settleTimeoutMs ?? DEFAULT_SETTLE_TIMEOUT_MS;
  const recordGraceMs = options.recordGraceMs ?? DEFAULT_RECORD_GRACE_MS;
  const recordHeaders = options.recordHeaders ?? true;
  const provider = options.tracerProvider;

  const instance = clip(`${hostname()}/${process.pid}`, HopLimits.SHORT, { truncated: false });
  const reported = new Set<string>();
  // The writer outlives this configuration (one per logger): it reports through the first one.
  let first: Config | undefined;
  const writer = writerFor(logger, (err, records) => {
    if (first !== undefined) telemetryFailed(first, 'logger', err, records);
  });
  const recordInstance = writer.lineHasInstance ? undefined : instance;
  const cfg: Config = {
    service,
    instance,
    logger,
    writer,
    recordInstance,
    correlationHeader,
    causationHeader,
    headerShapes: headerShapes(correlationHeader, causationHeader),
    capture,
    onHop: noop,
    hooked: false,
    consumerLink: parent === 'link',
    settleTimeoutMs,
    recordGraceMs,
    renderHeaders: recordHeaders ? renderHeaders : noHeaders,
    fixedTracer: provider?.getTracer(PACKAGE_NAME, VERSION),
    reported,
  };
  first = cfg;
  if (hook !== undefined) {
    cfg.onHop = guardHook(hook, cfg);
    cfg.hooked = true;
  }
  return cfg;
}

function noop(): void {}
function noHeaders(): undefined {
  return undefined;
}
function noCapture(): undefined {
  return undefined;
}

function guardHook(hook: (record: AnyHopRecord) => void, cfg: Config): (record: AnyHopRecord) => void {
  // Made once per configuration, the rejection handler too, so a hook that
  // returns a promise costs no closure per hop.
  const onFailure = (err: unknown): void => telemetryFailed(cfg, 'hook', err);
  return (hop) => {
    try {
      const r: unknown = hook(hop);
      if (r instanceof Promise) r.catch(onFailure);
    } catch (err) {
      onFailure(err);
    }
  };
}

/** A capture function for the checked `capturePayload` option (a no-op when capture is off). */
function resolveCapture(opt: boolean | { maxBytes?: number; redact?: (text: string, info: PayloadInfo) => string } | undefined): CaptureFn {
  if (opt === undefined || opt === false) return noCapture;
  const maxBytes = (opt !== true && opt.maxBytes) || DEFAULT_MAX_PAYLOAD_BYTES;
  const redact = opt !== true ? opt.redact : undefined;
  const limit = maxBytes;
  const redactFn = redact;
  // Redact before cutting, or a secret straddling the cut would leak in part.
  // Redaction sees a window four times the kept size (at least 64 KiB), not
  // the whole body: a multi-megabyte body is not decoded for 4 KiB of payload.
  const window = Math.max(limit * 4, 65_536);
  return (cfg, content, direction, exchange, routingKey, props) => {
    if (!Buffer.isBuffer(content)) return undefined;
    let text = content.toString('utf8', 0, Math.min(content.length, redactFn === undefined ? limit : window));
    if (redactFn !== undefined) {
      try {
        const headers = props?.headers;
        text = redactFn(text, {
          direction,
          exchange,
          routingKey,
          contentType: typeof props?.contentType === 'string' ? props.contentType : undefined,
          messageType: typeof props?.type === 'string' ? props.type : undefined,
          headers: headers !== null && typeof headers === 'object' ? (headers as Record<string, unknown>) : undefined,
        });
        if (typeof text !== 'string') throw new TypeError(`redact returned ${typeof text}, not a string`);
      } catch (err) {
        // Never log what redaction was supposed to hide.
        telemetryFailed(cfg, 'redact', err);
        return undefined;
      }
    }
    if (Buffer.byteLength(text) > limit) {
      // Cut at a byte limit without leaving half a character behind.
      return { payload: Buffer.from(text).toString('utf8', 0, limit).replace(/\uFFFD$/, ''), truncated: true };
    }
    return { payload: text, truncated: redactFn === undefined ? content.length > limit : content.length > window };
  };
}

/**
 * Headers as a record keeps them: strings, at most 32, each value at most
 * 256 characters (a longer one is cut and ends with `…`, and the record
 * says `truncated`), leaving out the headers whose value the record already
 * holds in its own fields, so no line says the same ids twice:
 * `traceparent` when it is exactly `00-{traceId}-{traceparentSpanId}-01`
 * (the record's `spanId` on publish, its `parentSpanId` on consume), and the
 * correlation and causation id headers when they equal `correlationId` and
 * `causationId`. A header that differs (a malformed or unsampled
 * traceparent, a non-string id) is recorded as it came.
 */
export function renderHeaders(
  cfg: Config,
  headers: Record<string, unknown> | undefined,
  ids: MessageIds,
  traceparentSpanId: string | undefined,
  cut: Cut,
): Record<string, string> | undefined {
  if (headers === undefined || headers === null || typeof headers !== 'object') return undefined;
  let out: Record<string, string> | undefined;
  let n = 0;
  for (const key in headers) {
    const v = headers[key];
    if (typeof v === 'string' && carriedByRecord(cfg, key, v, ids, traceparentSpanId)) continue;
    if (n++ === MAX_RECORDED_HEADERS) {
      cut.truncated = true;
      break;
    }
    (out ??= {})[clip(key, HopLimits.SHORT, cut)] = renderValue(v, cut);
  }
  return out;
}

function carriedByRecord(cfg: Config, key: string, value: string, ids: MessageIds, traceparentSpanId: string | undefined): boolean {
  if (key === cfg.correlationHeader) return value === ids.correlationId;
  if (key === cfg.causationHeader) return value === ids.causationId;
  return key === Headers.TRACEPARENT && isTraceParentOf(value, ids.traceId, traceparentSpanId);
}

/** `value === \`00-${traceId}-${spanId}-01\`` without building the string. */
function isTraceParentOf(value: string, traceId: string, spanId: string | undefined): boolean {
  return (
    spanId !== undefined &&
    value.length === 55 &&
    value.startsWith('00-') &&
    value.startsWith(traceId, 3) &&
    value.charCodeAt(35) === 45 /* - */ &&
    value.startsWith(spanId, 36) &&
    value.endsWith('-01')
  );
}

function renderValue(v: unknown, cut: Cut): string {
  let s: string;
  if (typeof v === 'string') s = v;
  else if (Buffer.isBuffer(v)) s = v.toString('utf8', 0, Math.min(v.length, MAX_HEADER_VALUE_CHARS * 4));
  else if (v === null || typeof v !== 'object') s = text(v);
  else {
    try {
      s = JSON.stringify(v) ?? String(v);
    } catch (err) {
      s = `[unserializable: ${describe(err)}]`;
    }
  }
  return clip(s, MAX_HEADER_VALUE_CHARS, cut);
}
