/**
 * Retention in PostgreSQL: whole time partitions dropped, never rows
 * deleted one by one from `records`.
 *
 * What is dropped: every partition whose records all arrived before the
 * cutoff (by age: `now - maxAgeMs`; by size: the oldest partitions while the
 * store is larger than `maxBytes`, never the one being written) — its records
 * and the topology counted in it (a message's contributions live in the
 * partition of its newest record, `pg-topology.ts`). Records are kept from
 * the cutoff rounded down to a partition start: up to one partition width
 * longer than `maxAgeMs`.
 *
 * Chains, in the same transaction (which holds the flush lock exclusively,
 * so no summary is being computed meanwhile):
 * - a chain whose summary holds only dropped records (last arrival before
 *   the cutoff) is deleted: summary, tags and trace ids (rows of `chains`,
 *   `chain_tags`, `chain_traces`: about one in five of the records' rows),
 *   and its failure tally is subtracted from the failure-group counts;
 * - a chain with records on both sides of the cutoff (active longer than a
 *   partition) is summarized again from the records it keeps; its topology
 *   contributions move from all its hops to the kept ones, in the kept
 *   partitions.
 * Dirty marks of records that were dropped unflushed find no records later
 * and are cleared by the flush.
 */
import type { FailureTally } from './api-types.ts';
import { FailureDeltas } from './failure-buckets.ts';
import type { PgDb } from './pg-db.ts';
import { LOCK, lockArgs, lockCall } from './pg-db.ts';
import { addFailureChanges } from './pg-failures.ts';
import type { PgPartitions } from './pg-partitions.ts';
import type { PgSummaries } from './pg-summaries.ts';
import type { RetentionPolicy, RetentionResult } from './store.ts';

/** Chains summarized again per statement batch. */
const REWRITE_CHUNK = 500;

export class PgRetention {
  readonly #db: PgDb;
  readonly #partitions: PgPartitions;
  readonly #summaries: PgSummaries;

  constructor(db: PgDb, partitions: PgPartitions, summaries: PgSummaries) {
    this.#db = db;
    this.#partitions = partitions;
    this.#summaries = summaries;
  }

  /** The parts to drop now: a prefix of the existing ones, oldest first. */
  async #toDrop(policy: RetentionPolicy, now: number): Promise<number[]> {
    const parts = await this.#partitions.list();
    const current = this.#partitions.partOf(now);
    const drop: number[] = [];
    let i = 0;
    if (policy.maxAgeMs !== undefined) {
      const cutoff = now - policy.maxAgeMs;
      while (i < parts.length && this.#partitions.endOf(parts[i]) <= cutoff && parts[i] < current) drop.push(parts[i++]);
    }
    if (policy.maxBytes !== undefined) {
      const sizes = await this.#partitions.sizes();
      let total = await this.#db.usedBytes();
      for (const p of drop) total -= sizes.get(p) ?? 0;
      while (i < parts.length && total > policy.maxBytes && parts[i] < current) {
        total -= sizes.get(parts[i]) ?? 0;
        drop.push(parts[i++]);
      }
    }
    return drop;
  }

  async apply(policy: RetentionPolicy, now: number): Promise<RetentionResult> {
    const drop = await this.#toDrop(policy, now);
    if (drop.length === 0) return { deletedChains: 0, deletedHops: 0 };
    const cutoff = this.#partitions.endOf(drop[drop.length - 1]);
    const dropped = new Set(drop);
    const result = await this.#db.transaction(async (c) => {
      // No flush or sweep runs while this holds it (they share it); it waits for those running.
      await c.query(`SELECT ${lockCall('pg_advisory_xact_lock', 1)}`, lockArgs(LOCK.flush, this.#db.schema));
      const hops = await c.query<{ n: number }>('SELECT coalesce(sum(n), 0)::int8 AS n FROM record_counts WHERE part = ANY($1::int[])', [drop]);
      // The deleted chains' failure tallies leave the failure-group counts with them.
      const dead = await c.query<{ n: number; failures: string | null }>(
        `WITH dead AS (DELETE FROM chains WHERE updated_at < $1 RETURNING id, summary),
         tags AS (DELETE FROM chain_tags WHERE chain_id IN (SELECT id FROM dead)),
         traces AS (DELETE FROM chain_traces WHERE chain_id IN (SELECT id FROM dead))
         SELECT count(*)::int8 AS n,
           json_agg(summary::json -> 'failureTally') FILTER (WHERE summary LIKE '%"failureTally"%')::text AS failures
         FROM dead`,
        [cutoff],
      );
      const deletedChains = dead.rows[0].n;
      const failures = new FailureDeltas();
      for (const tally of JSON.parse(dead.rows[0].failures ?? '[]') as (FailureTally[] | null)[]) failures.add(tally ?? undefined, -1);
      await addFailureChanges(c, failures.changed());
      if (deletedChains > 0) {
        await c.query(
          'INSERT INTO chain_counts (backend, n) VALUES (pg_backend_pid(), $1) ON CONFLICT (backend) DO UPDATE SET n = chain_counts.n + excluded.n',
          [-deletedChains],
        );
      }
      const straddling = await c.query<{ correlation_id: string }>('SELECT correlation_id FROM chains WHERE received_from < $1', [cutoff]);
      const ids = straddling.rows.map((r) => r.correlation_id);
      for (let i = 0; i < ids.length; i += REWRITE_CHUNK) {
        await this.#summaries.rewrite(c, ids.slice(i, i + REWRITE_CHUNK), (h) => h.receivedAt >= cutoff, now, dropped);
      }
      await c.query('DELETE FROM record_counts WHERE part = ANY($1::int[])', [drop]);
      await this.#partitions.drop(c, drop);
      return { deletedChains, deletedHops: hops.rows[0].n };
    }, 'retention');
    this.#partitions.forget(drop);
    return result;
  }
}
