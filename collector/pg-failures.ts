/**
 * Failure groups in PostgreSQL: per-minute counts (`failure_buckets`) and
 * the groups' descriptions (`failure_groups`), kept like SQLite's
 * (`failure-buckets.ts`): the flush adds each written chain's tally change in
 * its transaction, retention subtracts the tallies of the chains it deletes.
 * Rows are updated in place by addition, so collectors flushing different
 * chains at once never overwrite each other's counts; a row that nets to
 * nothing stays at 0 and reads leave it out.
 */
import type pg from 'pg';
import type { FailureBucketChange, FailureGroupInfo } from './failure-buckets.ts';
import type { PgDb } from './pg-db.ts';
import type { FailureBin, FailureCountQuery } from './store.ts';

/** Add bucket changes (in key order, so two transactions lock shared rows in the same order). */
export async function addFailureChanges(c: pg.ClientBase, changes: readonly FailureBucketChange[]): Promise<void> {
  if (changes.length === 0) return;
  const sorted = [...changes].sort((a, b) => (a.fingerprint < b.fingerprint ? -1 : a.fingerprint > b.fingerprint ? 1 : a.bucket - b.bucket));
  await c.query(
    `INSERT INTO failure_buckets (fingerprint, bucket, count, unresolved)
     SELECT * FROM unnest($1::text[], $2::int8[], $3::int[], $4::int[])
     ON CONFLICT (fingerprint, bucket) DO UPDATE
       SET count = failure_buckets.count + excluded.count,
           unresolved = greatest(0, failure_buckets.unresolved + excluded.unresolved)`,
    [sorted.map((x) => x.fingerprint), sorted.map((x) => x.bucket), sorted.map((x) => x.count), sorted.map((x) => x.unresolved)],
  );
}

/** Describe groups seen for the first time (a group described already keeps its first description). */
export async function describeFailureGroups(c: pg.ClientBase, groups: readonly FailureGroupInfo[]): Promise<void> {
  if (groups.length === 0) return;
  const col = (f: (g: FailureGroupInfo) => string | undefined) => groups.map((g) => f(g) ?? null);
  await c.query(
    `INSERT INTO failure_groups (fingerprint, status, service, queue, exchange, routing_key, error_type, pattern, example, dead_letter_queue)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[])
     ON CONFLICT (fingerprint) DO NOTHING`,
    [
      col((g) => g.fingerprint),
      col((g) => g.status),
      col((g) => g.service),
      col((g) => g.queue),
      col((g) => g.exchange),
      col((g) => g.routingKey),
      col((g) => g.errorType),
      col((g) => g.pattern),
      col((g) => g.example),
      col((g) => g.deadLetterQueue),
    ],
  );
}

export async function failureCountsPg(db: PgDb, query: FailureCountQuery): Promise<FailureBin[]> {
  const params: (number | string)[] = [query.binStart, query.binMs, query.from, query.to];
  let sql = `SELECT fingerprint, floor((bucket - $1::float8) / $2::float8)::int8 AS bin, sum(count)::int8 AS count,
       sum(unresolved)::int8 AS unresolved, min(bucket) AS first, max(bucket) AS last
     FROM failure_buckets WHERE bucket >= $3 AND bucket <= $4 AND count > 0`;
  if (query.fingerprint !== undefined) {
    sql += ' AND fingerprint = $5';
    params.push(query.fingerprint);
  }
  sql += ' GROUP BY 1, 2';
  const rows = await db.query<FailureBin>(sql, params);
  return rows.map((r) => ({ fingerprint: r.fingerprint, bin: r.bin, count: r.count, unresolved: r.unresolved, first: r.first, last: r.last }));
}

interface GroupRow {
  fingerprint: string;
  status: string;
  service: string;
  queue: string | null;
  exchange: string | null;
  routing_key: string | null;
  error_type: string | null;
  pattern: string;
  example: string | null;
  dead_letter_queue: string | null;
}

export async function failureGroupsPg(db: PgDb, fingerprints: readonly string[]): Promise<FailureGroupInfo[]> {
  if (fingerprints.length === 0) return [];
  const rows = await db.query<GroupRow>('SELECT * FROM failure_groups WHERE fingerprint = ANY($1::text[])', [fingerprints]);
  return rows.map((r) => {
    const g: FailureGroupInfo = { fingerprint: r.fingerprint, status: r.status, service: r.service, pattern: r.pattern };
    if (r.queue !== null) g.queue = r.queue;
    if (r.exchange !== null) g.exchange = r.exchange;
    if (r.routing_key !== null) g.routingKey = r.routing_key;
    if (r.error_type !== null) g.errorType = r.error_type;
    if (r.example !== null) g.example = r.example;
    if (r.dead_letter_queue !== null) g.deadLetterQueue = r.dead_letter_queue;
    return g;
  });
}
