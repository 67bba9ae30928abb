/**
 * Reading hoptrace's context out of a delivered message. Everything here is
 * untrusted input from whoever published: a bad value is ignored with one
 * warning per kind of problem, and the message is still delivered.
 */
import type { DeathEntry } from '../hop.ts';
import type { Config } from './config.ts';
import { type TraceParent, parseTraceParent } from './ids.ts';
import { Headers } from './semconv.ts';
import { headerIgnored } from './telemetry.ts';

/** Longest id or trace header hoptrace accepts (W3C tracestate allows 512). */
export const MAX_ID_CHARS = 1024;
/** W3C baggage allows 8192 bytes in total. */
export const MAX_BAGGAGE_CHARS = 8192;

export interface Incoming {
  traceParent: TraceParent | undefined;
  /** The raw, valid traceparent string (for the propagator). */
  traceparent: string | undefined;
  tracestate: string | undefined;
  baggage: string | undefined;
  correlationId: string | undefined;
  causationId: string | undefined;
  death: DeathEntry[] | undefined;
  deathCount: number | undefined;
}

const EMPTY: Incoming = Object.freeze({
  traceParent: undefined,
  traceparent: undefined,
  tracestate: undefined,
  baggage: undefined,
  correlationId: undefined,
  causationId: undefined,
  death: undefined,
  deathCount: undefined,
});

export function readIncoming(cfg: Config, headers: Record<string, unknown> | undefined): Incoming {
  if (headers === undefined || headers === null || typeof headers !== 'object') return EMPTY;
  const traceparent = readString(cfg, headers, Headers.TRACEPARENT, MAX_ID_CHARS);
  let traceParent: TraceParent | undefined;
  let validTraceparent: string | undefined;
  if (traceparent !== undefined) {
    traceParent = parseTraceParent(traceparent);
    if (traceParent === undefined) headerIgnored(cfg, 'traceparent', Headers.TRACEPARENT, 'not a valid W3C traceparent');
    else validTraceparent = traceparent;
  }
  // tracestate without a valid traceparent means nothing (W3C §3.3).
  const tracestate = readString(cfg, headers, Headers.TRACESTATE, MAX_ID_CHARS);
  const death = headers[Headers.X_DEATH] === undefined ? undefined : parseDeath(cfg, headers[Headers.X_DEATH]);
  let deathCount: number | undefined;
  if (death !== undefined) {
    deathCount = 0;
    for (const d of death) deathCount += d.count;
  }
  return {
    traceParent,
    traceparent: validTraceparent,
    tracestate: traceParent === undefined ? undefined : tracestate,
    baggage: readString(cfg, headers, Headers.BAGGAGE, MAX_BAGGAGE_CHARS),
    correlationId: readString(cfg, headers, cfg.correlationHeader, MAX_ID_CHARS),
    causationId: readString(cfg, headers, cfg.causationHeader, MAX_ID_CHARS),
    death,
    deathCount,
  };
}

/** A string header, or undefined when absent or unusable (and then warned about). */
function readString(cfg: Config, headers: Record<string, unknown>, name: string, max: number): string | undefined {
  const v = headers[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') {
    if (v.length > max) {
      headerIgnored(cfg, 'too-large', name, `${v.length} characters, more than ${max}`);
      return undefined;
    }
    return v === '' ? undefined : v;
  }
  // AMQP byte arrays (and some clients' longstr) arrive as Buffers; hoptrace
  // never writes one, so a Buffer here came from elsewhere and is not trusted.
  if (Buffer.isBuffer(v)) headerIgnored(cfg, 'buffer', name, `a ${v.length}-byte Buffer where a string was expected`);
  else headerIgnored(cfg, 'non-string', name, `a ${Array.isArray(v) ? 'array' : typeof v} where a string was expected`);
  return undefined;
}

/** RabbitMQ's `x-death`: an array of tables, newest first. */
export function parseDeath(cfg: Config, raw: unknown): DeathEntry[] | undefined {
  if (!Array.isArray(raw)) {
    headerIgnored(cfg, 'x-death', Headers.X_DEATH, 'not an array of tables');
    return undefined;
  }
  const out: DeathEntry[] = [];
  for (const item of raw) {
    if (item === null || typeof item !== 'object' || Array.isArray(item)) {
      headerIgnored(cfg, 'x-death', Headers.X_DEATH, 'an entry that is not a table');
      continue;
    }
    const t = item as Record<string, unknown>;
    const count = typeof t.count === 'number' ? t.count : typeof t.count === 'bigint' ? Number(t.count) : 1;
    const keys = t['routing-keys'];
    const entry: DeathEntry = {
      queue: text(t.queue),
      reason: text(t.reason),
      count,
      exchange: text(t.exchange),
      routingKeys: Array.isArray(keys) ? keys.map(text) : [],
    };
    const time = timestamp(t.time);
    if (time !== undefined) entry.time = time;
    out.push(entry);
  }
  return out;
}

function text(v: unknown): string {
  if (typeof v === 'string') return v.length > MAX_ID_CHARS ? v.slice(0, MAX_ID_CHARS) : v;
  if (Buffer.isBuffer(v)) return v.toString('utf8', 0, Math.min(v.length, MAX_ID_CHARS));
  return v === undefined || v === null ? '' : String(v);
}

/** amqplib decodes an AMQP timestamp as `{ '!': 'timestamp', value: seconds }`. */
function timestamp(v: unknown): number | undefined {
  if (typeof v === 'number') return v * 1000;
  if (v !== null && typeof v === 'object' && typeof (v as { value?: unknown }).value === 'number') {
    return (v as { value: number }).value * 1000;
  }
  return undefined;
}
