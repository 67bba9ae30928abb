/**
 * The chain list (`GET /api/chains`) in SQLite: each filter is a set of
 * `chain_tags` values (see `chainTags`) any of which matches; the most
 * selective single-valued filter drives an index range newest first, the
 * others are tested by primary-key lookups; `q` matches correlation ids,
 * message ids (`records`) and trace ids (`chain_traces`), exact or prefix.
 */
import { ErrorCodes, ValidationError } from './errors.ts';
import type { ChainList, ChainSummary } from './api-types.ts';
import { DRIVER_COUNT_CAP, isTracePrefix, Q_MATCH_CAP, REDELIVERED_KEY, tagFilters as queryTagFilters } from './chain-list-filters.ts';
import { hexPrefixRange, packedPrefixRanges, unpackId } from './record-codec.ts';
import type { SqliteDb } from './sqlite-db.ts';
import type { ChainQuery } from './store.ts';

/** Separates tag keys in one string (never inside a name: the record separator). */
export const TAG_SEP = '\u001e';

export { tagKey } from './chain-list-filters.ts';

/** A chain row's columns that a summary's fields live in. */
export interface ChainRow {
  correlation_id: string;
  status: string;
  start_ts: number;
  end_ts: number;
  hop_count: number;
  updated_at: number;
  summary: string;
}

/** The columns {@link summaryFromRow} reads, in this order. */
export const CHAIN_ROW_COLUMNS = 'correlation_id, status, start_ts, end_ts, hop_count, updated_at, summary';

/** A summary as a chain row keeps it: JSON without what the row's own columns already hold. */
export function storedSummary(summary: ChainSummary): string {
  const { correlationId: _c, status: _s, startTs: _st, endTs: _e, hopCount: _h, updatedAt: _u, ...rest } = summary;
  return JSON.stringify(rest);
}

/** The summary a chain row holds (rows written before schema 6 hold it whole; the columns agree). */
export function summaryFromRow(row: ChainRow): ChainSummary {
  const rest = JSON.parse(row.summary) as Partial<ChainSummary>;
  return {
    ...rest,
    correlationId: row.correlation_id,
    status: row.status as ChainSummary['status'],
    startTs: row.start_ts,
    endTs: row.end_ts,
    hopCount: row.hop_count,
    updatedAt: row.updated_at,
  } as ChainSummary;
}

function encodeCursor(startTs: number, id: number): string {
  return Buffer.from(JSON.stringify([startTs, id])).toString('base64url');
}

function decodeCursor(cursor: string): [number, number] {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(value) && value.length === 2 && typeof value[0] === 'number' && Number.isInteger(value[1])) {
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
  return isTracePrefix(q) ? hexPrefixRange(q) : undefined;
}

export function listChains(db: SqliteDb, query: ChainQuery): ChainList {
  const tagFilters = queryTagFilters(query);
  const driver = driverFilter(db, tagFilters, query);

  // With a driver: walk that tag's index range newest first (the chains' start order), testing
  // the other filters by primary-key lookups. Without one: walk the chains newest first.
  const t = driver ? 'd' : 'c';
  const id = driver ? 'd.chain_id' : 'c.id';
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
         AND o.start_ts = ${t}.start_ts AND o.chain_id = ${id})`,
    );
    params.push(...tags);
  }
  if (query.redelivered === false) {
    where.push(`NOT EXISTS (SELECT 1 FROM chain_tags o WHERE o.tag = ? AND o.start_ts = ${t}.start_ts AND o.chain_id = ${id})`);
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
    const [startTs, chainId] = decodeCursor(query.cursor);
    where.push(`(${t}.start_ts, ${id}) < (?, ?)`);
    params.push(startTs, chainId);
  }
  const sql =
    `SELECT c.id, ${CHAIN_ROW_COLUMNS.split(', ').map((col) => `c.${col}`).join(', ')} FROM ` +
    (driver ? 'chain_tags d JOIN chains c ON c.id = d.chain_id' : 'chains c') +
    (where.length ? ` WHERE ${where.join(' AND ')}` : '') +
    ` ORDER BY ${t}.start_ts DESC, ${id} DESC LIMIT ?`;
  params.push(query.limit + 1);
  const rows = db.prepared(sql).all(...params) as unknown as (ChainRow & { id: number })[];
  const page = rows.slice(0, query.limit);
  const last = page.at(-1);
  return {
    items: page.map(summaryFromRow),
    nextCursor: rows.length > query.limit && last ? encodeCursor(last.start_ts, last.id) : null,
  };
}

/** Correlation ids of the chains holding a message or trace id that is `q` or starts with it. */
function idMatches(db: SqliteDb, q: string): string[] {
  const out = new Set<string>();
  const range = (sql: string, lo: string | Uint8Array, hi: string | Uint8Array | undefined) => {
    const rows = (hi === undefined ? db.prepared(sql).all(lo) : db.prepared(sql).all(lo, hi)) as { correlation_id: string | Uint8Array }[];
    for (const r of rows) out.add(unpackId(r.correlation_id));
  };
  const upTo = (column: string, hi: unknown) => (hi === undefined ? '' : ` AND ${column} < ?`);
  for (const r of packedPrefixRanges(q)) {
    range(`SELECT DISTINCT correlation_id FROM records WHERE message_id >= ?${upTo('message_id', r.hi)} LIMIT ${Q_MATCH_CAP}`, r.lo, r.hi);
  }
  const trace = traceRange(q);
  if (trace) {
    range(
      `SELECT DISTINCT c.correlation_id FROM chain_traces t JOIN chains c ON c.id = t.chain_id WHERE t.trace_id >= ?${upTo('t.trace_id', trace.hi)} LIMIT ${Q_MATCH_CAP}`,
      trace.lo,
      trace.hi,
    );
  }
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
