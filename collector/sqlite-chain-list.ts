/**
 * The chain list (`GET /api/chains`) in SQLite: each filter is a set of
 * `chain_tags` values (see `chainTags`) any of which matches; the most
 * selective single-valued filter drives an index range newest first, the
 * others are tested by primary-key lookups; `q` matches correlation ids,
 * message ids (`records`) and trace ids (`chain_traces`), exact or prefix.
 */
import type { ChainList, ChainSummary } from './api-types.ts';
import {
  decodeCursor,
  DRIVER_COUNT_CAP,
  encodeCursor,
  isTracePrefix,
  Q_MATCH_CAP,
  REDELIVERED_KEY,
  tagFilters as queryTagFilters,
} from './chain-list-filters.ts';
import { hexPrefixRange, packedPrefixRanges, unpackId } from './record-codec.ts';
import type { SqliteDb } from './sqlite-db.ts';
import type { ChainQuery } from './store.ts';

export { tagKey } from './chain-list-filters.ts';

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
