/**
 * Validation of incoming hop records (`POST /v1/hops`, `POST /v1/traces`,
 * `hoptrace import`): one schema, compiled once into a list of field checks.
 *
 * A record is either a bare {@link HopRecord} or a pino log line carrying one
 * under `hop`. Known fields must have their documented type and stay under a
 * length cap; unknown fields are kept as they are (the record may grow new
 * fields, DESIGN.md "Field names are fixed; more fields may be added").
 */
import { ErrorCodes, ValidationError } from '../src/errors.ts';
import {
  HOP_KINDS,
  HOP_LOG_KEY,
  HOP_RECORD_V2,
  HOP_RECORD_V2_KINDS,
  HOP_SCHEMA_VERSION,
  HopLimits,
  type HopRecord,
  type HopRecordV2,
} from '../src/hop.ts';
import { expandRecordV2 } from './hop-v2.ts';

export { HopLimits };

/** A failed check: the dotted field path and what it must be. */
interface Failure {
  field: string;
  must: string;
}

/** One compiled check: returns a failure or undefined. */
type Check = (value: unknown, path: string) => Failure | undefined;

const HEX32 = /^[0-9a-f]{32}$/;
const HEX16 = /^[0-9a-f]{16}$/;

const fail = (field: string, must: string): Failure => ({ field, must });

function string(max: number, opts: { nonEmpty?: boolean; pattern?: RegExp; patternText?: string } = {}): Check {
  const what = opts.patternText ?? (opts.nonEmpty ? `a non-empty string of at most ${max} characters` : `a string of at most ${max} characters`);
  return (v, p) => {
    if (typeof v !== 'string') return fail(p, opts.patternText ?? `be a string`);
    if (opts.pattern && !opts.pattern.test(v)) return fail(p, what);
    if (opts.nonEmpty && v.length === 0) return fail(p, `be ${what}`);
    if (v.length > max) return fail(p, `be at most ${max} characters long`);
    return undefined;
  };
}

function finite(opts: { min?: number; integer?: boolean } = {}): Check {
  return (v, p) => {
    if (typeof v !== 'number' || !Number.isFinite(v)) return fail(p, 'be a finite number');
    if (opts.integer && !Number.isInteger(v)) return fail(p, 'be an integer');
    if (opts.min !== undefined && v < opts.min) return fail(p, `be at least ${opts.min}`);
    return undefined;
  };
}

const boolean: Check = (v, p) => (typeof v === 'boolean' ? undefined : fail(p, 'be true or false'));

function oneOf(values: readonly (string | number)[]): Check {
  const set = new Set<unknown>(values);
  const text = values.map((x) => JSON.stringify(x)).join(', ');
  return (v, p) => (set.has(v) ? undefined : fail(p, `be one of ${text}`));
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** An object whose listed fields are checked (required ones must be present); other keys pass. */
function object(fields: Record<string, Check>, required: readonly string[] = []): Check {
  const entries = Object.entries(fields);
  return (v, p) => {
    if (!isPlainObject(v)) return fail(p, 'be an object');
    for (const name of required) {
      if (v[name] === undefined) return fail(`${p}.${name}`, 'be present');
    }
    for (const [name, check] of entries) {
      const value = v[name];
      if (value === undefined) continue;
      const f = check(value, `${p}.${name}`);
      if (f) return f;
    }
    return undefined;
  };
}

function arrayOf(item: Check, max: number): Check {
  return (v, p) => {
    if (!Array.isArray(v)) return fail(p, 'be an array');
    if (v.length > max) return fail(p, `have at most ${max} entries`);
    for (let i = 0; i < v.length; i++) {
      const f = item(v[i], `${p}[${i}]`);
      if (f) return f;
    }
    return undefined;
  };
}

function stringMap(maxEntries: number, maxValue: number): Check {
  return (v, p) => {
    if (!isPlainObject(v)) return fail(p, 'be an object of strings');
    let n = 0;
    for (const key in v) {
      if (++n > maxEntries) return fail(p, `have at most ${maxEntries} entries`);
      if (key.length > HopLimits.SHORT) return fail(p, `have keys of at most ${HopLimits.SHORT} characters`);
      const value = v[key];
      if (typeof value !== 'string') return fail(`${p}.${key}`, 'be a string');
      if (value.length > maxValue) return fail(`${p}.${key}`, `be at most ${maxValue} characters long`);
    }
    return undefined;
  };
}

const short = string(HopLimits.SHORT);
const shortNonEmpty = string(HopLimits.SHORT, { nonEmpty: true });

/** The hop record schema: field → check. Fields not listed here pass unchecked. */
const HOP_FIELDS: Record<string, Check> = {
  v: oneOf([HOP_SCHEMA_VERSION]),
  kind: oneOf(HOP_KINDS),
  ts: finite({ min: 0 }),
  service: shortNonEmpty,
  instance: shortNonEmpty,
  traceId: string(32, { pattern: HEX32, patternText: 'be 32 lowercase hex characters' }),
  spanId: string(16, { pattern: HEX16, patternText: 'be 16 lowercase hex characters' }),
  parentSpanId: string(16, { pattern: HEX16, patternText: 'be 16 lowercase hex characters' }),
  correlationId: shortNonEmpty,
  causationId: short,
  messageId: shortNonEmpty,
  exchange: short,
  routingKey: short,
  queue: short,
  consumerTag: short,
  deliveryTag: finite({ min: 0, integer: true }),
  redelivered: boolean,
  deathCount: finite({ min: 0, integer: true }),
  death: arrayOf(
    object(
      {
        queue: short,
        reason: short,
        count: finite({ min: 0, integer: true }),
        exchange: short,
        routingKeys: arrayOf(short, HopLimits.ENTRIES),
        time: finite(),
      },
      ['queue', 'reason', 'count', 'exchange', 'routingKeys'],
    ),
    HopLimits.ENTRIES,
  ),
  outcome: oneOf(['ack', 'nack', 'reject', 'returned', 'ok', 'error']),
  requeue: boolean,
  multiple: boolean,
  replyCode: finite({ integer: true }),
  replyText: string(HopLimits.MEDIUM),
  durationMs: finite({ min: 0 }),
  error: object(
    { type: short, message: string(HopLimits.MEDIUM), stack: string(HopLimits.LONG), code: short, truncated: boolean },
    ['type', 'message'],
  ),
  messageType: short,
  contentType: short,
  bodySize: finite({ min: 0, integer: true }),
  headers: stringMap(HopLimits.ENTRIES, HopLimits.MEDIUM),
  properties: object({
    contentType: short,
    contentEncoding: short,
    deliveryMode: finite({ integer: true }),
    priority: finite({ integer: true }),
    correlationId: short,
    replyTo: short,
    expiration: short,
    messageId: short,
    timestamp: finite(),
    type: short,
    userId: short,
    appId: short,
  }),
  payload: string(HopLimits.LONG),
  payloadTruncated: boolean,
  truncated: boolean,
};

const REQUIRED = ['v', 'kind', 'ts', 'service', 'instance', 'traceId', 'spanId', 'correlationId', 'messageId'] as const;

const checkHop = object(HOP_FIELDS, REQUIRED);

/** Fields of a version-2 record ({@link HopRecordV2}); the shared ones have the version-1 checks. */
const V2_FIELDS: Record<string, Check> = {
  v: oneOf([HOP_RECORD_V2]),
  kind: oneOf(HOP_RECORD_V2_KINDS),
  ts: HOP_FIELDS.ts,
  service: HOP_FIELDS.service,
  instance: HOP_FIELDS.instance,
  traceId: HOP_FIELDS.traceId,
  spanId: HOP_FIELDS.spanId,
  parentSpanId: HOP_FIELDS.parentSpanId,
  messageId: HOP_FIELDS.messageId,
  correlationId: HOP_FIELDS.correlationId,
  causationId: HOP_FIELDS.causationId,
  bodySize: HOP_FIELDS.bodySize,
  contentType: HOP_FIELDS.contentType,
  messageType: HOP_FIELDS.messageType,
  headers: HOP_FIELDS.headers,
  properties: HOP_FIELDS.properties,
  payload: HOP_FIELDS.payload,
  payloadTruncated: HOP_FIELDS.payloadTruncated,
  truncated: boolean,
  open: boolean,
  exchange: short,
  routingKey: short,
  error: HOP_FIELDS.error,
  // publish
  confirmMs: finite({ min: 0 }),
  confirm: oneOf(['ack', 'nack']),
  // consume
  queue: short,
  consumerTag: short,
  deliveryTag: HOP_FIELDS.deliveryTag,
  redelivered: boolean,
  death: HOP_FIELDS.death,
  processMs: finite({ min: 0 }),
  settle: oneOf(['ack', 'nack', 'reject']),
  settleMs: finite({ min: 0 }),
  requeue: boolean,
  multiple: boolean,
  settleSpanId: HOP_FIELDS.spanId,
};
const V2_REQUIRED = ['v', 'kind', 'ts', 'service', 'traceId', 'spanId', 'messageId'] as const;
const checkV2 = object(V2_FIELDS, V2_REQUIRED);
const checkPublishV2 = object({}, ['routingKey']);
const checkConsumeV2 = object({}, ['queue']);

/** Result of {@link checkHopRecord}: the hops the record stands for, or why it is not a record. */
export type HopCheck = { ok: true; hops: HopRecord[] } | { ok: false; field: string; reason: string };

/** `${hostname}/${pid}` of a pino line, when it has both. */
function lineInstance(line: Record<string, unknown>): string | undefined {
  const { hostname, pid } = line;
  if (typeof hostname !== 'string' || hostname === '' || (typeof pid !== 'number' && typeof pid !== 'string')) return undefined;
  const instance = `${hostname}/${pid}`;
  return instance.length <= HopLimits.SHORT ? instance : undefined;
}

/**
 * Check one input value: a bare hop record (version 1 or 2), or a pino log
 * line with the record under `hop`. A version-2 record comes back expanded
 * into its hops. Never throws.
 */
export function checkHopRecord(value: unknown): HopCheck {
  let candidate = value;
  let prefix = '';
  let line: Record<string, unknown> | undefined;
  if (isPlainObject(value) && value[HOP_LOG_KEY] !== undefined && value.v === undefined) {
    line = value;
    candidate = value[HOP_LOG_KEY];
    prefix = `${HOP_LOG_KEY}.`;
  }
  if (!isPlainObject(candidate)) return { ok: false, field: prefix ? 'hop' : '(record)', reason: 'must be an object' };
  // Paths come out as ".field" from the root object; strip the leading dot.
  const failed = (f: Failure): HopCheck => ({ ok: false, field: prefix + f.field.replace(/^\./, ''), reason: `must ${f.must}` });
  if (candidate.v === HOP_RECORD_V2) {
    const f =
      checkV2(candidate, '') ?? (candidate.kind === 'publish' ? checkPublishV2 : checkConsumeV2)(candidate, '');
    if (f) return failed(f);
    const rec = candidate as unknown as HopRecordV2;
    const instance = rec.instance ?? (line && lineInstance(line));
    if (instance === undefined) {
      return { ok: false, field: `${prefix}instance`, reason: 'must be present (or the pino line must carry hostname and pid)' };
    }
    return { ok: true, hops: expandRecordV2(rec, instance) };
  }
  const f = checkHop(candidate, '');
  if (f) return failed(f);
  return { ok: true, hops: [candidate as unknown as HopRecord] };
}

/** True when a parsed log line carries a hop (used by import to tell hop lines from other logs). */
export function hasHop(value: unknown): boolean {
  return isPlainObject(value) && (value[HOP_LOG_KEY] !== undefined || (value.v !== undefined && value.kind !== undefined));
}

/**
 * Validate every record of one request; throw on the first invalid one so
 * nothing of the request is written.
 * @throws ValidationError `HOPTRACE_ERR_INVALID_HOP` naming the record index and field
 */
export function validateHops(values: readonly unknown[]): HopRecord[] {
  const hops: HopRecord[] = [];
  for (let i = 0; i < values.length; i++) {
    const r = checkHopRecord(values[i]);
    if (!r.ok) {
      throw new ValidationError(ErrorCodes.INVALID_HOP, `record ${i}: field "${r.field}" ${r.reason}`, {
        index: i,
        field: r.field,
      });
    }
    for (const hop of r.hops) hops.push(hop);
  }
  return hops;
}
