/**
 * Reading hoptrace's context out of a delivered message. Everything here is
 * untrusted input from whoever published: a bad value is ignored with one
 * warning per kind of problem, and the message is still delivered.
 */
import { type DeathEntry, HopLimits } from '../contract/hop.ts';
import { type Cut, addCount, clip, count, text } from './clip.ts';
import type { Config } from './config.ts';
import { type TraceParent, parseTraceParent } from './ids.ts';
import { Headers } from '../contract/semconv.ts';
import { headerIgnored } from './telemetry.ts';

/** Longest id or trace header hoptrace accepts (W3C tracestate allows 512). */
export const MAX_ID_CHARS = HopLimits.SHORT;
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
  /** Something in `death` was cut to the record limits. */
  deathTruncated: boolean;
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
  deathTruncated: false,
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
  let death: DeathEntry[] | undefined;
  let deathCount: number | undefined;
  let deathTruncated = false;
  const rawDeath = headers[Headers.X_DEATH];
  if (rawDeath !== undefined) {
    const cut: Cut = { truncated: false };
    death = parseDeath(cfg, rawDeath, cut);
    deathTruncated = cut.truncated;
    if (death !== undefined) {
      deathCount = 0;
      for (const d of death) deathCount = addCount(deathCount, d.count);
    }
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
    deathTruncated,
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

/**
 * RabbitMQ's `x-death`: an array of tables, newest first. Whatever a
 * publisher put there, the entries come out fitting the record limits: at
 * most `HopLimits.ENTRIES` entries and routing keys, names cut to
 * `HopLimits.SHORT`, `count` a non-negative integer (−1 → 0, 1.5 → 1), a
 * `time` only when it is a finite epoch-ms value; `cut` says when
 * something was cut.
 */
export function parseDeath(cfg: Config, raw: unknown, cut: Cut): DeathEntry[] | undefined {
  if (!Array.isArray(raw)) {
    headerIgnored(cfg, 'x-death', Headers.X_DEATH, 'not an array of tables');
    return undefined;
  }
  const out: DeathEntry[] = [];
  for (const item of raw) {
    if (item === null || typeof item !== 'object' || Array.isArray(item) || Buffer.isBuffer(item)) {
      headerIgnored(cfg, 'x-death', Headers.X_DEATH, 'an entry that is not a table');
      continue;
    }
    if (out.length === HopLimits.ENTRIES) {
      cut.truncated = true;
      break;
    }
    const t = item as Record<string, unknown>;
    const keys = t['routing-keys'];
    const routingKeys: string[] = [];
    if (Array.isArray(keys)) {
      for (const k of keys) {
        if (routingKeys.length === HopLimits.ENTRIES) {
          cut.truncated = true;
          break;
        }
        routingKeys.push(name(k, cut));
      }
    }
    const entry: DeathEntry = {
      queue: name(t.queue, cut),
      reason: name(t.reason, cut),
      count: typeof t.count === 'number' || typeof t.count === 'bigint' ? count(t.count) : 1,
      exchange: name(t.exchange, cut),
      routingKeys,
    };
    const time = timestamp(t.time);
    if (time !== undefined) entry.time = time;
    out.push(entry);
  }
  return out;
}

function name(v: unknown, cut: Cut): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'object' && !Buffer.isBuffer(v)) {
    // A nested table or array where a name belongs: its JSON, cut.
    try {
      return clip(JSON.stringify(v) ?? '', HopLimits.SHORT, cut);
    } catch {
      return '[unserializable]';
    }
  }
  return clip(text(v), HopLimits.SHORT, cut);
}

/** amqplib decodes an AMQP timestamp as `{ '!': 'timestamp', value: seconds }`; epoch ms when finite. */
function timestamp(v: unknown): number | undefined {
  let seconds: unknown = v;
  if (v !== null && typeof v === 'object' && !Buffer.isBuffer(v)) seconds = (v as { value?: unknown }).value;
  if (typeof seconds === 'bigint') seconds = Number(seconds);
  if (typeof seconds !== 'number') return undefined;
  const ms = seconds * 1000;
  return Number.isFinite(ms) ? ms : undefined;
}
