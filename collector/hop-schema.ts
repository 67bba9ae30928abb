/**
 * Validation of incoming hop records (`POST /v1/hops`, `POST /v1/traces`,
 * `hoptrace import`): one schema, compiled once into a list of field checks.
 *
 * A record is either a bare {@link HopRecord} (version 1 or 2) or a pino log
 * line carrying one under `hop`. Known fields must have their documented type
 * and stay within the {@link HopLimits}; fields the schema does not know are
 * left out of what is stored, at every level (the top-level record, `error`,
 * `properties`, `death` entries), so the stored record has the schema's fixed
 * depth and bounded size whatever arrived. A newer library's new fields are
 * therefore kept only by a collector that knows them.
 */
import type { RejectedRecord } from './api-types.ts';
import {
  HOP_KINDS,
  HOP_LOG_KEY,
  HOP_RECORD_V2,
  HOP_RECORD_V2_KINDS,
  HOP_SCHEMA_VERSION,
  HopLimits,
  type HopRecord,
  type HopRecordV2,
} from '../src/contract/hop.ts';
import { recordHops, type IngestRecord } from './record-identity.ts';

export { HopLimits };

/** A failed check: the field path below the checked value and what it must be. */
class Failure {
  readonly field: string;
  readonly must: string;
  constructor(field: string, must: string) {
    this.field = field;
    this.must = must;
  }
  /** The same failure seen from the parent: `name` joined in front of the path. */
  under(name: string): Failure {
    const sep = this.field === '' || this.field.startsWith('[') ? '' : '.';
    return new Failure(name + sep + this.field, this.must);
  }
}

/** A passed check whose value must be replaced by a copy without the unknown fields it held. */
class Stripped {
  readonly value: unknown;
  constructor(value: unknown) {
    this.value = value;
  }
}

/**
 * One compiled check. `undefined`: the value is valid as it is; {@link Stripped}: valid once
 * the unknown fields are left out (the copy is in it); {@link Failure}: invalid. Paths are
 * built only on failure, from the bottom up, so a valid record costs no string building.
 */
type Check = (value: unknown) => Failure | Stripped | undefined;

const HEX32 = /^[0-9a-f]{32}$/;
const HEX16 = /^[0-9a-f]{16}$/;

const fail = (must: string): Failure => new Failure('', must);

function string(max: number, opts: { nonEmpty?: boolean; pattern?: RegExp; patternText?: string } = {}): Check {
  const what = opts.patternText ?? (opts.nonEmpty ? `a non-empty string of at most ${max} characters` : `a string of at most ${max} characters`);
  return (v) => {
    if (typeof v !== 'string') return fail(opts.patternText ?? `be a string`);
    if (opts.pattern && !opts.pattern.test(v)) return fail(what);
    if (opts.nonEmpty && v.length === 0) return fail(`be ${what}`);
    if (v.length > max) return fail(`be at most ${max} characters long`);
    return undefined;
  };
}

/** A finite number in [min, max] (integer when asked); the bounds keep every later sum and conversion finite. */
function finite(opts: { min: number; max: number; integer?: boolean }): Check {
  return (v) => {
    if (typeof v !== 'number' || !Number.isFinite(v)) return fail('be a finite number');
    if (opts.integer && !Number.isInteger(v)) return fail('be an integer');
    if (v < opts.min) return fail(`be at least ${opts.min}`);
    if (v > opts.max) return fail(`be at most ${opts.max}`);
    return undefined;
  };
}

/** Epoch milliseconds (or a duration in ms) within the range a JavaScript Date can hold. */
const epochMs = finite({ min: 0, max: HopLimits.MAX_EPOCH_MS });
const durationMs = epochMs;
const count = finite({ min: 0, max: Number.MAX_SAFE_INTEGER, integer: true });
const int = finite({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER, integer: true });
/** A time a broker or another system stamped: any sign, within a Date's range. */
const anyTime = finite({ min: -HopLimits.MAX_EPOCH_MS, max: HopLimits.MAX_EPOCH_MS });

const boolean: Check = (v) => (typeof v === 'boolean' ? undefined : fail('be true or false'));

function oneOf(values: readonly (string | number)[]): Check {
  const set = new Set<unknown>(values);
  const text = values.map((x) => JSON.stringify(x)).join(', ');
  return (v) => (set.has(v) ? undefined : fail(`be one of ${text}`));
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * An object whose listed fields are checked (required ones must be present). Fields not
 * listed are left out of what is stored: the stored record holds only what the schema
 * knows, at every level, so nothing unbounded in size or depth reaches the store.
 */
function object(fields: Record<string, Check>, required: readonly string[] = []): Check {
  const known = new Map(Object.entries(fields));
  return (v) => {
    if (!isPlainObject(v)) return fail('be an object');
    for (const name of required) {
      if (v[name] === undefined) return new Failure(name, 'be present');
    }
    let unknown = false;
    let replaced: Map<string, unknown> | undefined;
    for (const name in v) {
      const check = known.get(name);
      if (check === undefined) {
        unknown = true;
        continue;
      }
      const value = v[name];
      if (value === undefined) continue;
      const r = check(value);
      if (r === undefined) continue;
      if (r instanceof Failure) return r.under(name);
      (replaced ??= new Map()).set(name, r.value);
    }
    if (!unknown && replaced === undefined) return undefined;
    const copy: Record<string, unknown> = {};
    for (const name in v) {
      if (!known.has(name) || v[name] === undefined) continue;
      copy[name] = replaced?.has(name) ? replaced.get(name) : v[name];
    }
    return new Stripped(copy);
  };
}

function arrayOf(item: Check, max: number): Check {
  return (v) => {
    if (!Array.isArray(v)) return fail('be an array');
    if (v.length > max) return fail(`have at most ${max} entries`);
    let copy: unknown[] | undefined;
    for (let i = 0; i < v.length; i++) {
      const r = item(v[i]);
      if (r === undefined) continue;
      if (r instanceof Failure) return r.under(`[${i}]`);
      (copy ??= v.slice())[i] = r.value;
    }
    return copy === undefined ? undefined : new Stripped(copy);
  };
}

/** Headers: at most `maxEntries` string values (depth one by construction). */
function stringMap(maxEntries: number, maxValue: number): Check {
  return (v) => {
    if (!isPlainObject(v)) return fail('be an object of strings');
    let n = 0;
    for (const key in v) {
      if (++n > maxEntries) return fail(`have at most ${maxEntries} entries`);
      if (key.length > HopLimits.SHORT) return fail(`have keys of at most ${HopLimits.SHORT} characters`);
      const value = v[key];
      if (typeof value !== 'string') return new Failure(key, 'be a string');
      if (value.length > maxValue) return new Failure(key, `be at most ${maxValue} characters long`);
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
  ts: epochMs,
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
  deliveryTag: count,
  redelivered: boolean,
  deathCount: count,
  death: arrayOf(
    object(
      {
        queue: short,
        reason: short,
        count,
        exchange: short,
        routingKeys: arrayOf(short, HopLimits.ENTRIES),
        time: anyTime,
      },
      ['queue', 'reason', 'count', 'exchange', 'routingKeys'],
    ),
    HopLimits.ENTRIES,
  ),
  outcome: oneOf(['ack', 'nack', 'reject', 'returned', 'ok', 'error']),
  requeue: boolean,
  multiple: boolean,
  replyCode: int,
  replyText: string(HopLimits.MEDIUM),
  durationMs,
  error: object(
    { type: short, message: string(HopLimits.MEDIUM), stack: string(HopLimits.LONG), code: short, truncated: boolean },
    ['type', 'message'],
  ),
  messageType: short,
  contentType: short,
  bodySize: count,
  headers: stringMap(HopLimits.ENTRIES, HopLimits.MEDIUM),
  properties: object({
    contentType: short,
    contentEncoding: short,
    deliveryMode: int,
    priority: int,
    correlationId: short,
    replyTo: short,
    expiration: short,
    messageId: short,
    timestamp: anyTime,
    type: short,
    userId: short,
    appId: short,
  }),
  payload: string(HopLimits.LONG),
  payloadTruncated: boolean,
  truncated: boolean,
  requestedBy: short,
};

const REQUIRED = ['v', 'kind', 'ts', 'service', 'instance', 'traceId', 'spanId', 'correlationId', 'messageId'] as const;

const checkHop = object(HOP_FIELDS, REQUIRED);

/** A hop as the store gives it back: the record plus the store's `id` and `receivedAt`. */
const checkStored = object({ ...HOP_FIELDS, id: count, receivedAt: epochMs }, REQUIRED);

/**
 * Stored hops as a read may use them: each checked again with the schema (a
 * store written by an older collector may hold what today's ingest refuses),
 * unknown fields left out, and a hop that fails the check left out of the read.
 * @returns the hops to use, and how many were left out
 */
export function readableStoredHops<T extends HopRecord>(hops: readonly T[]): { hops: T[]; unreadable: number } {
  let out: T[] | undefined;
  for (let i = 0; i < hops.length; i++) {
    const r = checkStored(hops[i]);
    if (r === undefined) {
      out?.push(hops[i]);
      continue;
    }
    out ??= hops.slice(0, i);
    if (r instanceof Stripped) out.push(r.value as T);
  }
  return out === undefined ? { hops: hops as T[], unreadable: 0 } : { hops: out, unreadable: hops.length - out.length };
}

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
  confirmMs: durationMs,
  confirm: oneOf(['ack', 'nack']),
  // consume
  queue: short,
  consumerTag: short,
  deliveryTag: HOP_FIELDS.deliveryTag,
  redelivered: boolean,
  death: HOP_FIELDS.death,
  processMs: durationMs,
  settle: oneOf(['ack', 'nack', 'reject']),
  settleMs: durationMs,
  requeue: boolean,
  multiple: boolean,
  settleSpanId: HOP_FIELDS.spanId,
};
const V2_REQUIRED = ['v', 'kind', 'ts', 'service', 'traceId', 'spanId', 'messageId'] as const;
const checkV2 = object(V2_FIELDS, V2_REQUIRED);
/** The field a version-2 record of this kind cannot do without. */
const V2_KIND_REQUIRES: Record<string, string> = { publish: 'routingKey', consume: 'queue' };

/** Result of {@link checkRecord}: the record ready to store, or why it is not a record. */
export type RecordCheck = { ok: true; record: IngestRecord } | { ok: false; field: string; reason: string };

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
 * line with the record under `hop`. A version-2 record comes back whole, its
 * `instance` resolved (the store keeps it as one row). Fields the schema does
 * not know are left out, at every level. Never throws, whatever the value's
 * size or depth.
 */
export function checkRecord(value: unknown): RecordCheck {
  let candidate = value;
  let prefix = '';
  let line: Record<string, unknown> | undefined;
  if (isPlainObject(value) && value[HOP_LOG_KEY] !== undefined && value.v === undefined) {
    line = value;
    candidate = value[HOP_LOG_KEY];
    prefix = `${HOP_LOG_KEY}.`;
  }
  if (!isPlainObject(candidate)) return { ok: false, field: prefix ? 'hop' : '(record)', reason: 'must be an object' };
  const failed = (f: Failure): RecordCheck => ({ ok: false, field: prefix + f.field, reason: `must ${f.must}` });
  if (candidate.v !== HOP_SCHEMA_VERSION && candidate.v !== HOP_RECORD_V2) {
    return { ok: false, field: `${prefix}v`, reason: `must be one of ${HOP_SCHEMA_VERSION}, ${HOP_RECORD_V2} (the record versions this collector reads)` };
  }
  if (candidate.v === HOP_RECORD_V2) {
    const r = checkV2(candidate);
    if (r instanceof Failure) return failed(r);
    const rec = (r === undefined ? candidate : r.value) as unknown as HopRecordV2;
    const needs = V2_KIND_REQUIRES[rec.kind];
    if ((rec as unknown as Record<string, unknown>)[needs] === undefined) return failed(new Failure(needs, 'be present'));
    const instance = rec.instance ?? (line && lineInstance(line));
    if (instance === undefined) {
      return { ok: false, field: `${prefix}instance`, reason: 'must be present (or the pino line must carry hostname and pid)' };
    }
    return { ok: true, record: rec.instance === instance ? (rec as IngestRecord) : { ...rec, instance } };
  }
  const r = checkHop(candidate);
  if (r instanceof Failure) return failed(r);
  return { ok: true, record: (r === undefined ? candidate : r.value) as HopRecord };
}

/** {@link checkRecord}, with a valid record expanded into the hops it stands for. Never throws. */
export function checkHopRecord(value: unknown): HopCheck {
  const r = checkRecord(value);
  return r.ok ? { ok: true, hops: recordHops(r.record) } : r;
}

/** True when a parsed log line carries a hop (used by import to tell hop lines from other logs). */
export function hasHop(value: unknown): boolean {
  return isPlainObject(value) && (value[HOP_LOG_KEY] !== undefined || (value.v !== undefined && value.kind !== undefined));
}

/** At most this many rejected records are listed in one answer (all are counted). */
export const MAX_LISTED_REJECTIONS = 1000;

/** What {@link validateRecords} made of one request's records. */
export interface CheckedRecords {
  /** Every valid record, in request order (a version-2 record whole). */
  records: IngestRecord[];
  /** How many records were invalid. */
  rejected: number;
  /** The first {@link MAX_LISTED_REJECTIONS} invalid records: index in the request, field, reason. */
  rejections: RejectedRecord[];
}

/**
 * The schema field a rejection is about, for counting by kind: the top-level
 * name without the `hop.` prefix, array indexes or header names (a bounded set).
 */
export function rejectionKind(field: string): string {
  const path = field.startsWith(`${HOP_LOG_KEY}.`) ? field.slice(HOP_LOG_KEY.length + 1) : field;
  return /^[^.[]*/.exec(path)![0] || path;
}

/** Check every record of one request: the valid ones, and the index and reason of each invalid one. */
export function validateRecords(values: readonly unknown[]): CheckedRecords {
  const records: IngestRecord[] = [];
  const rejections: RejectedRecord[] = [];
  let rejected = 0;
  for (let i = 0; i < values.length; i++) {
    const r = checkRecord(values[i]);
    if (!r.ok) {
      rejected++;
      if (rejections.length < MAX_LISTED_REJECTIONS) rejections.push({ index: i, field: r.field, reason: r.reason });
      continue;
    }
    records.push(r.record);
  }
  return { records, rejected, rejections };
}
