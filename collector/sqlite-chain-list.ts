/**
 * The chain list (`GET /api/chains`) in SQLite: each filter is a set of
 * `chain_tags` values (see `chainTags`) any of which matches; the most
 * selective single-valued filter drives an index range newest first, the
 * others are tested by primary-key lookups; `q` matches correlation ids,
 * message ids (`records`) and trace ids (`chain_traces`), exact or prefix.
 */
import { ErrorCodes, ValidationError } from '../src/errors.ts';
import type { ChainList, ChainSummary } from './api-types.ts';
import type { ChainTag } from './chain-summary.ts';
import { hexPrefixRange, packedPrefixRanges, unpackId } from './record-codec.ts';
import type { SqliteDb } from './sqlite-db.ts';
import { REDELIVERED_FILTER, type ChainQuery } from './store.ts';

/** Tag filters with more entries than this are equally bad drivers: counting stops there. */
const DRIVER_COUNT_CAP = 5_000;
/** Chains a `q` prefix can match through message and trace ids, at most (a prefix that short matches noise). */
const Q_MATCH_CAP = 1_000;

const TAG_PREFIX = { service: 's:', status: 't:', exchange: 'x:', routingKey: 'r:' } as const;
const REDELIVERED_KEY = 'f:redelivered';

/** How a tag is stored in `chain_tags.tag` (migration 3's encoding). */
export function tagKey(tag: ChainTag): string {
  return tag.kind === 'redelivered' ? REDELIVERED_KEY : TAG_PREFIX[tag.kind] + tag.value;
}

function encodeCursor(startTs: number, correlationId: string): string {
  return Buffer.from(JSON.stringify([startTs, correlationId])).toString('base64url');
}

function decodeCursor(cursor: string): [number, string] {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(value) && value.length === 2 && typeof value[0] === 'number' && typeof value[1] === 'string') {
      return [value[0], value[1]];
    }
  } catch {
    // fall through
  }
  throw new ValidationError(ErrorCodes.INVALID_QUERY, 'query parameter "cursor" is not a cursor this collector gave out', {
    field: 'cursor',
  });
}

type SqlValue = string | number | Uint8Array | null;

/** The trace-id byte range of a hex prefix (all 32 digits: one id), or undefined when it is not one. */
function traceRange(q: string): { lo: Uint8Array; hi: Uint8Array | undefined } | undefined {
  return /^[0-9a-f]{1,32}$/.test(q) ? hexPrefixRange(q) : undefined;
}

export function listChains(db: SqliteDb, query: ChainQuery): ChainList {
  const tagFilters: string[][] = [];
  const status = (s: string): string => (s === REDELIVERED_FILTER ? REDELIVERED_KEY : tagKey({ kind: 'status', value: s }));
  if (query.status && query.status.length > 0) tagFilters.push([...new Set(query.status)].map(status));
  if (query.redelivered === true) tagFilters.push([REDELIVERED_KEY]);
  if (query.service !== undefined) tagFilters.push([tagKey({ kind: 'service', value: query.service })]);
  if (query.exchange !== undefined) tagFilters.push([tagKey({ kind: 'exchange', value: query.exchange })]);
  if (query.routingKey !== undefined) tagFilters.push([tagKey({ kind: 'routingKey', value: query.routingKey })]);
  const driver = driverFilter(db, tagFilters, query);

  // With a driver: walk that tag's index range newest first (the chains' start order), testing
  // the other filters by primary-key lookups. Without one: walk the chains newest first.
  const t = driver ? 'd' : 'c';
  const where: string[] = [];
  const params: SqlValue[] = [];
  if (driver) {
    where.push('d.tag = ?');
    params.push(driver[0]);
  }
  for (const tags of tagFilters) {
    if (tags === driver) continue;
    where.push(
      `EXISTS (SELECT 1 FROM chain_tags o WHERE o.tag IN (${tags.map(() => '?').join(', ')})
         AND o.start_ts = ${t}.start_ts AND o.correlation_id = ${t}.correlation_id)`,
    );
    params.push(...tags);
  }
  if (query.redelivered === false) {
    where.push(`NOT EXISTS (SELECT 1 FROM chain_tags o WHERE o.tag = ? AND o.start_ts = ${t}.start_ts AND o.correlation_id = ${t}.correlation_id)`);
    params.push(REDELIVERED_KEY);
  }
  if (query.q !== undefined) {
    // Exact or prefix: a range scan on each id's index ('\uffff' sorts after every id character).
    const alternatives = ['(c.correlation_id >= ? AND c.correlation_id < ?)'];
    params.push(query.q, query.q + '\uffff');
    const others = idMatches(db, query.q);
    if (others.length > 0) {
      alternatives.push(`c.correlation_id IN (${others.map(() => '?').join(', ')})`);
      params.push(...others);
    }
    where.push(`(${alternatives.join(' OR ')})`);
  }
  if (query.from !== undefined) {
    where.push(`${t}.start_ts >= ?`);
    params.push(query.from);
  }
  if (query.to !== undefined) {
    where.push(`${t}.start_ts <= ?`);
    params.push(query.to);
  }
  if (query.cursor !== undefined) {
    const [startTs, correlationId] = decodeCursor(query.cursor);
    where.push(`(${t}.start_ts, ${t}.correlation_id) < (?, ?)`);
    params.push(startTs, correlationId);
  }
  const sql =
    `SELECT c.correlation_id, c.start_ts, c.summary FROM ` +
    (driver ? 'chain_tags d JOIN chains c ON c.correlation_id = d.correlation_id' : 'chains c') +
    (where.length ? ` WHERE ${where.join(' AND ')}` : '') +
    ` ORDER BY ${t}.start_ts DESC, ${t}.correlation_id DESC LIMIT ?`;
  params.push(query.limit + 1);
  const rows = db.prepared(sql).all(...params) as unknown as { correlation_id: string; start_ts: number; summary: string }[];
  const page = rows.slice(0, query.limit);
  const last = page.at(-1);
  return {
    items: page.map((r) => JSON.parse(r.summary) as ChainSummary),
    nextCursor: rows.length > query.limit && last ? encodeCursor(last.start_ts, last.correlation_id) : null,
  };
}

/** Correlation ids of the chains holding a message or trace id that is `q` or starts with it. */
function idMatches(db: SqliteDb, q: string): string[] {
  const out = new Set<string>();
  const range = (table: string, column: string, lo: string | Uint8Array, hi: string | Uint8Array | undefined) => {
    const sql = `SELECT DISTINCT correlation_id FROM ${table} WHERE ${column} >= ?${hi === undefined ? '' : ` AND ${column} < ?`} LIMIT ${Q_MATCH_CAP}`;
    const rows = (hi === undefined ? db.prepared(sql).all(lo) : db.prepared(sql).all(lo, hi)) as { correlation_id: string | Uint8Array }[];
    for (const r of rows) out.add(unpackId(r.correlation_id));
  };
  for (const r of packedPrefixRanges(q)) range('records', 'message_id', r.lo, r.hi);
  const trace = traceRange(q);
  if (trace) range('chain_traces', 'trace_id', trace.lo, trace.hi);
  return [...out];
}

/**
 * The tag filter to walk: one of a single value (a chain appears once in its
 * range, in list order), the one with the fewest chains in the time window
 * when there are several. Undefined when no filter has a single value.
 */
function driverFilter(db: SqliteDb, tagFilters: string[][], query: ChainQuery): string[] | undefined {
  const single = tagFilters.filter((tags) => tags.length === 1);
  if (single.length <= 1) return single[0];
  const count = db.prepared(
    `SELECT count(*) AS n FROM (SELECT 1 FROM chain_tags WHERE tag = ? AND start_ts >= ? AND start_ts <= ? LIMIT ${DRIVER_COUNT_CAP})`,
  );
  let best = single[0];
  let bestCount = Infinity;
  for (const tags of single) {
    const n = (count.get(tags[0], query.from ?? -Infinity, query.to ?? Infinity) as { n: number }).n;
    if (n < bestCount) {
      best = tags;
      bestCount = n;
    }
  }
  return best;
}
