/**
 * The chain list (`GET /api/chains`) in PostgreSQL, the same plan as
 * `sqlite-chain-list.ts`: each filter is a set of `chain_tags` keys
 * (`chain-list-filters.ts`); the most selective single-valued filter drives
 * an index range newest first, the others are tested by primary-key lookups;
 * `q` matches correlation ids, message ids and trace ids, exact or prefix.
 * Text columns use the "C" collation, so ranges and the cursor compare bytes
 * as SQLite does.
 */
import type { ChainList, ChainSummary } from './api-types.ts';
import { ErrorCodes, ValidationError } from './errors.ts';
import {
  DRIVER_COUNT_CAP,
  isTracePrefix,
  Q_MATCH_CAP,
  REDELIVERED_KEY,
  tagFilters as queryTagFilters,
} from './chain-list-filters.ts';
import type { PgDb } from './pg-db.ts';
import { fromPgId, pgIdPrefixRanges } from './pg-ids.ts';
import { hexPrefixRange } from './record-codec.ts';
import type { ChainQuery } from './store.ts';

/**
 * @param fresh resolves once summaries are up to date: the parts of the plan
 *   that read records only (the driver's counts, message-id matches) run
 *   meanwhile, the rest after it
 */
export async function listChainsPg(db: PgDb, query: ChainQuery, fresh: Promise<void> = Promise.resolve()): Promise<ChainList> {
  const tagFilters = queryTagFilters(query);
  // The other filters are tested row by row as the driver's range is walked newest first (primary-key
  // probes that stop at the page's end): `OFFSET 0` keeps PostgreSQL from turning them into a hash
  // semi-join that reads every chain of the other tag first.
  const [driver, messageMatches] = await Promise.all([
    driverFilter(db, tagFilters, query),
    query.q === undefined ? Promise.resolve([]) : messageIdMatches(db, query.q),
    fresh,
  ]);
  // Rows of the walk: a tag's range (d) or the chains themselves (c); a chain is `id` either way.
  const t = driver ? 'd' : 'c';
  const id = driver ? 'd.chain_id' : 'c.id';
  const where: string[] = [];
  const params: unknown[] = [];
  const p = (value: unknown): string => {
    params.push(value);
    return `$${params.length}`;
  };
  if (driver) where.push(`d.tag = ${p(driver[0])}`);
  for (const tags of tagFilters) {
    if (tags === driver) continue;
    where.push(
      `EXISTS (SELECT 1 FROM chain_tags o WHERE o.tag = ANY(${p(tags)}::text[]) AND o.start_ts = ${t}.start_ts AND o.chain_id = ${id} OFFSET 0)`,
    );
  }
  if (query.redelivered === false) {
    where.push(`NOT EXISTS (SELECT 1 FROM chain_tags o WHERE o.tag = ${p(REDELIVERED_KEY)} AND o.start_ts = ${t}.start_ts AND o.chain_id = ${id} OFFSET 0)`);
  }
  if (query.q !== undefined) {
    // Correlation ids by range on chains' primary key, message ids (found in records) by correlation id,
    // trace ids by chain id. Walking the chains, each is an index condition of its own (a bitmap OR);
    // walking a tag's range, the first two are a lookup in chains.
    const col = driver ? 'correlation_id' : 'c.correlation_id';
    let byCorrelation = `(${col} >= ${p(query.q)} AND ${col} < ${p(query.q + '\uffff')})`;
    if (messageMatches.length > 0) byCorrelation += ` OR ${col} = ANY(${p(messageMatches)}::text[])`;
    const alternatives = [driver ? `d.chain_id IN (SELECT id FROM chains WHERE ${byCorrelation})` : byCorrelation];
    const traced = await traceIdMatches(db, query.q);
    if (traced.length > 0) alternatives.push(`${id} = ANY(${p(traced)}::int8[])`);
    where.push(`(${alternatives.join(' OR ')})`);
  }
  if (query.from !== undefined) where.push(`${t}.start_ts >= ${p(query.from)}`);
  if (query.to !== undefined) where.push(`${t}.start_ts <= ${p(query.to)}`);
  if (query.cursor !== undefined) {
    const [startTs, chainId] = decodeCursor(query.cursor);
    where.push(`(${t}.start_ts, ${id}) < (${p(startTs)}::float8, ${p(chainId)}::int8)`);
  }
  // With a driver, the page is cut from the tags alone, then joined to its chains: PostgreSQL would
  // otherwise hash-join every chain before it applies the LIMIT.
  const pageSql =
    `SELECT ${id} AS id, ${t}.start_ts${driver ? '' : ', c.summary'} FROM ${driver ? 'chain_tags d' : 'chains c'}` +
    (where.length ? ` WHERE ${where.join(' AND ')}` : '') +
    ` ORDER BY ${t}.start_ts DESC, ${id} DESC LIMIT ${p(query.limit + 1)}`;
  const sql = driver
    ? `SELECT c.id, c.start_ts, c.summary FROM (${pageSql}) p JOIN chains c ON c.id = p.id ORDER BY p.start_ts DESC, p.id DESC`
    : pageSql;
  const rows = await db.query<{ id: number; start_ts: number; summary: string }>(sql, params);
  const page = rows.slice(0, query.limit);
  const last = page.at(-1);
  return {
    items: page.map((r) => JSON.parse(r.summary) as ChainSummary),
    nextCursor: rows.length > query.limit && last ? encodeCursor(last.start_ts, last.id) : null,
  };
}

/** Correlation ids of the chains holding a message whose id is `q` or starts with it (from records: no summary needed). */
async function messageIdMatches(db: PgDb, q: string): Promise<string[]> {
  const out = new Set<string>();
  await Promise.all(
    pgIdPrefixRanges(q).map(async (r) => {
      const shape = r.uuid ? 'length(message_id) = 16' : 'length(message_id) <> 16';
      const sql = `SELECT DISTINCT correlation_id FROM (SELECT correlation_id FROM records WHERE message_id >= $1${r.hi ? ' AND message_id < $2' : ''} AND ${shape} LIMIT ${Q_MATCH_CAP}) m`;
      for (const row of await db.query<{ correlation_id: Buffer }>(sql, r.hi ? [r.lo, r.hi] : [r.lo])) out.add(fromPgId(row.correlation_id));
    }),
  );
  return [...out];
}

/** Ids of the chains with a trace id that is `q` or starts with it (written with summaries). */
async function traceIdMatches(db: PgDb, q: string): Promise<number[]> {
  if (!isTracePrefix(q)) return [];
  const { lo, hi } = hexPrefixRange(q);
  const sql = `SELECT DISTINCT chain_id FROM (SELECT chain_id FROM chain_traces WHERE trace_id >= $1${hi ? ' AND trace_id < $2' : ''} LIMIT ${Q_MATCH_CAP}) t`;
  const rows = await db.query<{ chain_id: number }>(sql, hi ? [Buffer.from(lo), Buffer.from(hi)] : [Buffer.from(lo)]);
  return rows.map((r) => r.chain_id);
}

/** The page cursor: the last chain's start and id. */
function encodeCursor(startTs: number, id: number): string {
  return Buffer.from(JSON.stringify([startTs, id])).toString('base64url');
}

/** @throws ValidationError when the cursor is not one this store gave out */
function decodeCursor(cursor: string): [number, number] {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(value) && value.length === 2 && typeof value[0] === 'number' && Number.isSafeInteger(value[1])) return [value[0], value[1]];
  } catch {
    // fall through
  }
  throw new ValidationError(ErrorCodes.INVALID_QUERY, 'query parameter "cursor" is not a cursor this collector gave out', { field: 'cursor' });
}

/** The tag filter to walk: of the single-valued ones, the one with the fewest chains in the window. */
async function driverFilter(db: PgDb, tagFilters: string[][], query: ChainQuery): Promise<string[] | undefined> {
  const single = tagFilters.filter((tags) => tags.length === 1);
  if (single.length <= 1) return single[0];
  const counts = await Promise.all(
    single.map(async (tags) => {
      const rows = await db.query<{ n: number }>(
        `SELECT count(*)::int8 AS n FROM (SELECT 1 FROM chain_tags WHERE tag = $1 AND start_ts >= $2 AND start_ts <= $3 LIMIT ${DRIVER_COUNT_CAP}) x`,
        [tags[0], query.from ?? -Infinity, query.to ?? Infinity],
      );
      return rows[0].n;
    }),
  );
  let best = single[0];
  let bestCount = Infinity;
  single.forEach((tags, i) => {
    if (counts[i] < bestCount) {
      best = tags;
      bestCount = counts[i];
    }
  });
  return best;
}
