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
 *
 * The schema is written with the contract's validation vocabulary
 * (`src/contract/schema.ts`); each record kind's schema carries the type it
 * accepts, which test/hop-schema-types.test.ts holds equal to the contract's
 * record types.
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
  type HopRecordV2Kind,
} from '../src/contract/hop.ts';
import { SPAN_ID_PATTERN, TRACE_ID_PATTERN } from '../src/contract/ids.ts';
import { arrayOf, boolean, Failure, finite, isPlainObject, object, oneOf, string, stringMap, Value } from '../src/contract/schema.ts';
import { recordHops, type IngestRecord } from './record-identity.ts';

export { HopLimits };

const TRACE_ID = string(32, { pattern: TRACE_ID_PATTERN, patternText: 'be 32 lowercase hex characters' });
const SPAN_ID = string(16, { pattern: SPAN_ID_PATTERN, patternText: 'be 16 lowercase hex characters' });

/** Epoch milliseconds (or a duration in ms) within the range a JavaScript Date can hold. */
const epochMs = finite({ min: 0, max: HopLimits.MAX_EPOCH_MS });
const durationMs = epochMs;
const count = finite({ min: 0, max: Number.MAX_SAFE_INTEGER, integer: true });
const int = finite({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER, integer: true });
/** A time a broker or another system stamped: any sign, within a Date's range. */
const anyTime = finite({ min: -HopLimits.MAX_EPOCH_MS, max: HopLimits.MAX_EPOCH_MS });

const short = string(HopLimits.SHORT);
const shortNonEmpty = string(HopLimits.SHORT, { nonEmpty: true });
const headers = stringMap(HopLimits.ENTRIES, HopLimits.SHORT, HopLimits.MEDIUM);

const deathEntry = object(
  {
    queue: short,
    reason: short,
    count,
    exchange: short,
    routingKeys: arrayOf(short, HopLimits.ENTRIES),
    time: anyTime,
  },
  ['queue', 'reason', 'count', 'exchange', 'routingKeys'],
);
const death = arrayOf(deathEntry, HopLimits.ENTRIES);

const hopError = object(
  { type: short, message: string(HopLimits.MEDIUM), stack: string(HopLimits.LONG), code: short, truncated: boolean },
  ['type', 'message'],
);

const properties = object({
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
});

/** The version-1 record's fields ({@link HopRecord}). */
const HOP_FIELDS = {
  v: oneOf([HOP_SCHEMA_VERSION]),
  kind: oneOf(HOP_KINDS),
  ts: epochMs,
  service: shortNonEmpty,
  instance: shortNonEmpty,
  traceId: TRACE_ID,
  spanId: SPAN_ID,
  parentSpanId: SPAN_ID,
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
  death,
  outcome: oneOf(['ack', 'nack', 'reject', 'returned', 'ok', 'error']),
  requeue: boolean,
  multiple: boolean,
  replyCode: int,
  replyText: string(HopLimits.MEDIUM),
  durationMs,
  error: hopError,
  messageType: short,
  contentType: short,
  bodySize: count,
  headers,
  properties,
  payload: string(HopLimits.LONG),
  payloadTruncated: boolean,
  truncated: boolean,
  requestedBy: short,
};

const REQUIRED = ['v', 'kind', 'ts', 'service', 'instance', 'traceId', 'spanId', 'correlationId', 'messageId'] as const;

/** The version-1 record ({@link HopRecord}); test/hop-schema-types.test.ts keeps the two in step. */
export const hopSchema = object(HOP_FIELDS, REQUIRED);

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
    if (r instanceof Value) out.push(r.value as T);
  }
  return out === undefined ? { hops: hops as T[], unreadable: 0 } : { hops: out, unreadable: hops.length - out.length };
}

/** Fields both version-2 kinds have ({@link HopRecordV2Base}); the shared ones have the version-1 checks. */
const V2_BASE = {
  v: oneOf([HOP_RECORD_V2]),
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
  headers,
  properties,
  payload: HOP_FIELDS.payload,
  payloadTruncated: boolean,
  truncated: boolean,
  open: boolean,
};
const V2_REQUIRED = ['v', 'kind', 'ts', 'service', 'traceId', 'spanId', 'messageId'] as const;

/** A producer's version-2 record ({@link PublishRecordV2}). */
export const publishSchema = object(
  {
    ...V2_BASE,
    kind: oneOf(['publish']),
    exchange: short,
    routingKey: short,
    confirmMs: durationMs,
    confirm: oneOf(['ack', 'nack']),
    error: hopError,
  },
  [...V2_REQUIRED, 'routingKey'],
);

/** A consumer's version-2 record ({@link ConsumeRecordV2}). */
export const consumeSchema = object(
  {
    ...V2_BASE,
    kind: oneOf(['consume']),
    queue: short,
    exchange: short,
    routingKey: short,
    consumerTag: short,
    deliveryTag: count,
    redelivered: boolean,
    death,
    processMs: durationMs,
    error: hopError,
    settle: oneOf(['ack', 'nack', 'reject']),
    settleMs: durationMs,
    requeue: boolean,
    multiple: boolean,
    settleSpanId: SPAN_ID,
  },
  [...V2_REQUIRED, 'queue'],
);

const V2_KINDS = { publish: publishSchema, consume: consumeSchema } as const satisfies Record<HopRecordV2Kind, unknown>;
const V2_KIND_TEXT = `be one of ${HOP_RECORD_V2_KINDS.map((k) => JSON.stringify(k)).join(', ')}`;

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
    const kind = candidate.kind;
    const check = kind === 'publish' || kind === 'consume' ? V2_KINDS[kind] : undefined;
    if (check === undefined) return failed(new Failure('kind', kind === undefined ? 'be present' : V2_KIND_TEXT, kind));
    const r = check(candidate);
    if (r instanceof Failure) return failed(r);
    const rec = (r === undefined ? candidate : r.value) as HopRecordV2;
    const instance = rec.instance ?? (line && lineInstance(line));
    if (instance === undefined) {
      return { ok: false, field: `${prefix}instance`, reason: 'must be present (or the pino line must carry hostname and pid)' };
    }
    return { ok: true, record: rec.instance === instance ? (rec as IngestRecord) : { ...rec, instance } };
  }
  const r = hopSchema(candidate);
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
