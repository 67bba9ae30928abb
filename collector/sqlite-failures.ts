/**
 * Failure groups in SQLite: the per-minute counts (`failure_buckets`) added
 * up into bins, and the groups' descriptions (`failure_groups`). Both are
 * written by the summaries job (`failure-buckets.ts`); here they are read.
 */
import type { FailureGroupInfo } from './failure-buckets.ts';
import type { SqliteDb } from './sqlite-db.ts';
import type { FailureBin, FailureCountQuery } from './store.ts';

/** Fingerprints per `IN (…)` list. */
const IN_CHUNK = 500;

export function failureCounts(db: SqliteDb, query: FailureCountQuery): FailureBin[] {
  const params: (number | string)[] = [query.binStart, query.binMs, query.from, query.to];
  let sql =
    // CAST: a bin width bound as a real (a huge one: "one bin") would make the quotient fractional.
    `SELECT fingerprint, CAST((bucket - ?) / ? AS INTEGER) AS bin, sum(count) AS count, sum(unresolved) AS unresolved, min(bucket) AS first, max(bucket) AS last
     FROM failure_buckets WHERE bucket >= ? AND bucket <= ?`;
  if (query.fingerprint !== undefined) {
    sql += ' AND fingerprint = ?';
    params.push(query.fingerprint);
  }
  sql += ' GROUP BY fingerprint, bin';
  const rows = db.prepared(sql).all(...params) as { fingerprint: string; bin: number; count: number; unresolved: number; first: number; last: number }[];
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

export function failureGroups(db: SqliteDb, fingerprints: readonly string[]): FailureGroupInfo[] {
  const out: FailureGroupInfo[] = [];
  for (let i = 0; i < fingerprints.length; i += IN_CHUNK) {
    const chunk = fingerprints.slice(i, i + IN_CHUNK);
    const rows = db.prepared(`SELECT * FROM failure_groups WHERE fingerprint IN (${chunk.map(() => '?').join(', ')})`).all(...chunk) as unknown as GroupRow[];
    for (const r of rows) {
      const g: FailureGroupInfo = { fingerprint: r.fingerprint, status: r.status, service: r.service, pattern: r.pattern };
      if (r.queue !== null) g.queue = r.queue;
      if (r.exchange !== null) g.exchange = r.exchange;
      if (r.routing_key !== null) g.routingKey = r.routing_key;
      if (r.error_type !== null) g.errorType = r.error_type;
      if (r.example !== null) g.example = r.example;
      if (r.dead_letter_queue !== null) g.deadLetterQueue = r.dead_letter_queue;
      out.push(g);
    }
  }
  return out;
}
