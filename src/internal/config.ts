/**
 * HoptraceOptions → Config, once per instrument()/connect(). Validation
 * happens here and nowhere else; switched-off features become no-op
 * functions so the hot path never asks "is this on?".
 */
import { hostname } from 'node:os';
import type { Tracer, TracerProvider } from '@opentelemetry/api';
import pino, { type Logger } from 'pino';
import { ConfigError } from '../errors.ts';
import type { HopRecord } from '../hop.ts';
import type { HoptraceOptions, PayloadInfo } from '../options.ts';
import { DEFAULT_SERVICE_NAME, Env, Headers } from './semconv.ts';
import { describe, telemetryFailed } from './telemetry.ts';
import { LIBRARY_NAME, LIBRARY_VERSION } from './version.ts';

export interface Captured {
  payload: string;
  truncated: boolean;
}

export type CaptureFn = (
  cfg: Config,
  content: Buffer,
  direction: 'send' | 'receive',
  exchange: string,
  routingKey: string,
  contentType: string | undefined,
  messageType: string | undefined,
  headers: Record<string, unknown> | undefined,
) => Captured | undefined;

export interface Config {
  readonly service: string;
  /** `host/pid`. */
  readonly instance: string;
  readonly logger: Logger;
  readonly correlationHeader: string;
  readonly causationHeader: string;
  readonly capture: CaptureFn;
  /** Guarded hook; a no-op when there is none. Set once, right after the config is built. */
  onHop: (hop: HopRecord) => void;
  readonly consumerLink: boolean;
  readonly settleTimeoutMs: number;
  /** Headers for a hop, leaving out those the hop's own fields carry (see {@link renderHeaders}). */
  readonly renderHeaders: (
    cfg: Config,
    headers: Record<string, unknown> | undefined,
    hop: HopRecord,
    traceparentSpanId: string | undefined,
  ) => Record<string, string> | undefined;
  /** The tracer given by `tracerProvider`; undefined means "ask the global provider". */
  readonly fixedTracer: Tracer | undefined;
  /** Failure kinds already reported (report once). */
  readonly reported: Set<string>;
}

const KNOWN = new Set<string>([
  'serviceName',
  'logger',
  'headerNames',
  'capturePayload',
  'hooks',
  'consumerSpanParent',
  'settleTimeoutMs',
  'recordHeaders',
  'tracerProvider',
]);

export const DEFAULT_MAX_PAYLOAD_BYTES = 4096;
export const DEFAULT_SETTLE_TIMEOUT_MS = 300_000;
export const MAX_HEADER_VALUE_CHARS = 256;
export const MAX_RECORDED_HEADERS = 32;
// setTimeout's ceiling; a larger timeout would fire at once.
const MAX_TIMEOUT_MS = 2 ** 31 - 1;
// AMQP shortstr: header names are at most 255 bytes.
const HEADER_NAME_RE = /^[\x21-\x7e]{1,255}$/;

let defaultLogger: Logger | undefined;

/**
 * stdout, asynchronous (never blocks the event loop on a slow reader; pino
 * flushes it on exit), in writes of at most 4 KiB. pino's own default
 * (16 KiB) costs more per line: SonicBoom measures the whole pending chunk
 * with Buffer.byteLength on every line, so a larger chunk is re-copied more
 * often. Measured at five hop lines per round trip into a pipe: 32 µs per
 * message with pino's default, 24 µs with this, 26 µs written synchronously.
 */
function defaultDestination(): ReturnType<typeof pino.destination> {
  return pino.destination({ dest: 1, sync: false, maxWrite: 4096 });
}

function bad(option: string, expected: string, got: unknown): ConfigError {
  return new ConfigError(`hoptrace: option "${option}" must be ${expected} (got ${show(got)})`);
}

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'function') return 'a function';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  return String(v);
}

/** Validate options and resolve every default. Throws ConfigError naming the option. */
export function resolveConfig(options: HoptraceOptions | undefined): Config {
  if (options === undefined || options === null) options = {};
  if (typeof options !== 'object' || Array.isArray(options)) throw bad('options', 'an object', options);
  for (const key of Object.keys(options)) {
    if (!KNOWN.has(key)) {
      throw new ConfigError(
        `hoptrace: unknown option "${key}"; known options are ${[...KNOWN].join(', ')}`,
      );
    }
  }

  const envName = process.env[Env.OTEL_SERVICE_NAME];
  const service = options.serviceName ?? (envName !== undefined && envName !== '' ? envName : DEFAULT_SERVICE_NAME);
  if (typeof service !== 'string' || service === '') throw bad('serviceName', 'a non-empty string', service);

  let logger = options.logger;
  if (logger === undefined) logger = defaultLogger ??= pino({ name: LIBRARY_NAME }, defaultDestination());
  else if (
    logger === null ||
    typeof logger !== 'object' ||
    typeof logger.info !== 'function' ||
    typeof logger.warn !== 'function' ||
    typeof logger.error !== 'function'
  ) {
    throw bad('logger', 'a pino logger (an object with info, warn and error methods)', logger);
  }

  let correlationHeader: string = Headers.CORRELATION_ID;
  let causationHeader: string = Headers.CAUSATION_ID;
  const names = options.headerNames;
  if (names !== undefined) {
    if (names === null || typeof names !== 'object') throw bad('headerNames', 'an object', names);
    for (const key of Object.keys(names)) {
      if (key !== 'correlationId' && key !== 'causationId') {
        throw new ConfigError(`hoptrace: unknown option "headerNames.${key}"; use correlationId or causationId`);
      }
    }
    if (names.correlationId !== undefined) correlationHeader = headerName('headerNames.correlationId', names.correlationId);
    if (names.causationId !== undefined) causationHeader = headerName('headerNames.causationId', names.causationId);
    if (correlationHeader === causationHeader) {
      throw new ConfigError(
        `hoptrace: option "headerNames" gives the correlation and causation ids the same header "${correlationHeader}"`,
      );
    }
  }

  const capture = resolveCapture(options.capturePayload);

  const hooks = options.hooks;
  let hook: ((hop: HopRecord) => void) | undefined;
  if (hooks !== undefined) {
    if (hooks === null || typeof hooks !== 'object') throw bad('hooks', 'an object', hooks);
    for (const key of Object.keys(hooks)) {
      if (key !== 'onHop') throw new ConfigError(`hoptrace: unknown option "hooks.${key}"; known hooks: onHop`);
    }
    if (hooks.onHop !== undefined) {
      if (typeof hooks.onHop !== 'function') throw bad('hooks.onHop', 'a function', hooks.onHop);
      hook = hooks.onHop;
    }
  }

  const parent = options.consumerSpanParent ?? 'child';
  if (parent !== 'child' && parent !== 'link') throw bad('consumerSpanParent', "'child' or 'link'", parent);

  const settleTimeoutMs = options.settleTimeoutMs ?? DEFAULT_SETTLE_TIMEOUT_MS;
  if (typeof settleTimeoutMs !== 'number' || !Number.isFinite(settleTimeoutMs) || settleTimeoutMs <= 0 || settleTimeoutMs > MAX_TIMEOUT_MS) {
    throw bad('settleTimeoutMs', `a number of milliseconds between 1 and ${MAX_TIMEOUT_MS}`, settleTimeoutMs);
  }

  const recordHeaders = options.recordHeaders ?? true;
  if (typeof recordHeaders !== 'boolean') throw bad('recordHeaders', 'a boolean', recordHeaders);

  const provider: TracerProvider | undefined = options.tracerProvider;
  if (provider !== undefined && (provider === null || typeof provider.getTracer !== 'function')) {
    throw bad('tracerProvider', 'an OpenTelemetry TracerProvider (with getTracer)', provider);
  }

  const cfg: Config = {
    service,
    instance: `${hostname()}/${process.pid}`,
    logger,
    correlationHeader,
    causationHeader,
    capture,
    onHop: noop,
    consumerLink: parent === 'link',
    settleTimeoutMs,
    renderHeaders: recordHeaders ? renderHeaders : noHeaders,
    fixedTracer: provider?.getTracer(LIBRARY_NAME, LIBRARY_VERSION),
    reported: new Set(),
  };
  if (hook !== undefined) cfg.onHop = guardHook(hook, cfg);
  return cfg;
}

function headerName(option: string, v: unknown): string {
  if (typeof v !== 'string' || !HEADER_NAME_RE.test(v)) throw bad(option, 'a header name (1-255 printable ASCII characters, no spaces)', v);
  return v;
}

function noop(): void {}
function noHeaders(): undefined {
  return undefined;
}
function noCapture(): undefined {
  return undefined;
}

function guardHook(hook: (hop: HopRecord) => void, cfg: Config): (hop: HopRecord) => void {
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

function resolveCapture(opt: HoptraceOptions['capturePayload']): CaptureFn {
  if (opt === undefined || opt === false) return noCapture;
  let maxBytes = DEFAULT_MAX_PAYLOAD_BYTES;
  let redact: ((text: string, info: PayloadInfo) => string) | undefined;
  if (opt !== true) {
    if (opt === null || typeof opt !== 'object') throw bad('capturePayload', 'a boolean or { maxBytes?, redact? }', opt);
    for (const key of Object.keys(opt)) {
      if (key !== 'maxBytes' && key !== 'redact') {
        throw new ConfigError(`hoptrace: unknown option "capturePayload.${key}"; use maxBytes or redact`);
      }
    }
    if (opt.maxBytes !== undefined) {
      if (!Number.isSafeInteger(opt.maxBytes) || opt.maxBytes < 1) throw bad('capturePayload.maxBytes', 'a positive integer', opt.maxBytes);
      maxBytes = opt.maxBytes;
    }
    if (opt.redact !== undefined) {
      if (typeof opt.redact !== 'function') throw bad('capturePayload.redact', 'a function', opt.redact);
      redact = opt.redact;
    }
  }
  const limit = maxBytes;
  const redactFn = redact;
  // Redact before cutting, or a secret straddling the cut would leak in part.
  // Redaction sees a window four times the kept size (at least 64 KiB), not
  // the whole body: a multi-megabyte body is not decoded for 4 KiB of payload.
  const window = Math.max(limit * 4, 65_536);
  return (cfg, content, direction, exchange, routingKey, contentType, messageType, headers) => {
    if (!Buffer.isBuffer(content)) return undefined;
    let text = content.toString('utf8', 0, Math.min(content.length, redactFn === undefined ? limit : window));
    if (redactFn !== undefined) {
      try {
        text = redactFn(text, { direction, exchange, routingKey, contentType, messageType, headers });
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
 * Headers as a hop records them: strings, at most 32, each value at most 256
 * characters, leaving out the headers whose value the hop already holds in
 * its own fields, so every line does not say the same ids twice:
 * `traceparent` when it is exactly `00-{traceId}-{traceparentSpanId}-01`
 * (the hop's `spanId` on send, its `parentSpanId` on receive), and the
 * correlation and causation id headers when they equal `correlationId` and
 * `causationId`. A header that differs (a malformed or unsampled
 * traceparent, a non-string id) is recorded as it came.
 */
export function renderHeaders(
  cfg: Config,
  headers: Record<string, unknown> | undefined,
  hop: HopRecord,
  traceparentSpanId: string | undefined,
): Record<string, string> | undefined {
  if (headers === undefined || headers === null || typeof headers !== 'object') return undefined;
  let out: Record<string, string> | undefined;
  let n = 0;
  for (const key in headers) {
    const v = headers[key];
    if (typeof v === 'string' && carriedByHop(cfg, key, v, hop, traceparentSpanId)) continue;
    if (n++ === MAX_RECORDED_HEADERS) break;
    (out ??= {})[key] = renderValue(v);
  }
  return out;
}

function carriedByHop(cfg: Config, key: string, value: string, hop: HopRecord, traceparentSpanId: string | undefined): boolean {
  if (key === cfg.correlationHeader) return value === hop.correlationId;
  if (key === cfg.causationHeader) return value === hop.causationId;
  return key === Headers.TRACEPARENT && isTraceParentOf(value, hop.traceId, traceparentSpanId);
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

function renderValue(v: unknown): string {
  let s: string;
  if (typeof v === 'string') s = v;
  else if (Buffer.isBuffer(v)) return v.toString('utf8', 0, Math.min(v.length, MAX_HEADER_VALUE_CHARS)).slice(0, MAX_HEADER_VALUE_CHARS);
  else if (v === null || typeof v !== 'object') s = String(v);
  else {
    try {
      s = JSON.stringify(v) ?? String(v);
    } catch (err) {
      s = `[unserializable: ${describe(err)}]`;
    }
  }
  return s.length > MAX_HEADER_VALUE_CHARS ? s.slice(0, MAX_HEADER_VALUE_CHARS) : s;
}
