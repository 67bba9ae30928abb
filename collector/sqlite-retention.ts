/**
 * Retention in SQLite: whole chains deleted (records, summary, tags, trace
 * ids, and their topology and failure-group contributions), oldest-updated first, by age and
 * by size, in chunks so a large purge never holds the write lock for long.
 */
import { chainTags } from './chain-summary.ts';
import { packId } from './record-codec.ts';
import { topologyHop } from './chain-refresh.ts';
import { CHAIN_ROW_COLUMNS, summaryFromRow, tagKey, type ChainRow } from './sqlite-chain-list.ts';
import type { SqliteDb } from './sqlite-db.ts';
import type { SqliteRecords } from './sqlite-records.ts';
import type { SqliteSummaries } from './sqlite-summaries.ts';
import type { SqliteWriter, WriterOp } from './sqlite-writer.ts';
import type { RetentionPolicy, RetentionResult } from './store.ts';
import { EdgeTally, encodeWaits, messageContributions } from './topology-buckets.ts';
import { FailureDeltas } from './failure-buckets.ts';

const CHUNK = 500;

export class SqliteRetention {
  readonly #db: SqliteDb;
  readonly #records: SqliteRecords;
  readonly #summaries: SqliteSummaries;
  readonly #writer: SqliteWriter;

  constructor(db: SqliteDb, records: SqliteRecords, summaries: SqliteSummaries, writer: SqliteWriter) {
    this.#db = db;
    this.#records = records;
    this.#summaries = summaries;
    this.#writer = writer;
  }

  /** Delete whole chains, in one transaction (between summary flushes: see {@link SqliteSummaries.whileFresh}). */
  async #deleteChains(ids: readonly string[]): Promise<RetentionResult> {
    const db = this.#db;
    const ops: WriterOp[] = [];
    let deletedHops = 0;
    let deletedChains = 0;
    // The deleted hops' topology contributions go with them: each message's before and after.
    const tally = new EdgeTally();
    // And the chains' failures (their summaries' tallies).
    const failures = new FailureDeltas();
    for (const id of ids) {
      const row = db.prepared(`SELECT ${CHAIN_ROW_COLUMNS} FROM chains WHERE correlation_id = ?`).get(id) as ChainRow | undefined;
      const hops = this.#records.chainHops(id);
      for (const messageId of new Set(hops.map((h) => h.messageId))) {
        const all = this.#records.messageHops(messageId);
        tally.addContributions(messageContributions(all.map(topologyHop)), -1, true);
        const kept = all.filter((h) => h.correlationId !== id);
        if (kept.length > 0) tally.addContributions(messageContributions(kept.map(topologyHop)), 1, true);
      }
      if (row !== undefined) {
        deletedChains++;
        const summary = summaryFromRow(row);
        failures.add(summary.failureTally, -1);
        for (const t of chainTags(summary, hops)) ops.push(['tag-', tagKey(t), summary.startTs, id]);
        for (const t of summary.traceIds) if (t.length === 32) ops.push(['trace-', Buffer.from(t, 'hex'), id]);
      }
      deletedHops += hops.length;
      ops.push(['chain-', id, packId(id)]);
    }
    for (const e of tally.changed()) ops.push(['bucket', e.bucket, e.from, e.to, e.count, e.errors, encodeWaits(e.waits)]);
    for (const c of failures.changed()) ops.push(['failure', c.fingerprint, c.bucket, c.count, c.unresolved]);
    await this.#writer.apply(ops);
    for (const id of ids) this.#summaries.drop(id);
    this.#summaries.deleted(deletedChains);
    return { deletedHops, deletedChains };
  }

  async apply(policy: RetentionPolicy, now: number): Promise<RetentionResult> {
    const db = this.#db;
    db.open();
    const total: RetentionResult = { deletedChains: 0, deletedHops: 0 };
    const add = (r: RetentionResult) => {
      total.deletedChains += r.deletedChains;
      total.deletedHops += r.deletedHops;
    };
    if (policy.maxAgeMs !== undefined) {
      const old = db.prepared('SELECT correlation_id FROM chains WHERE updated_at < ? ORDER BY updated_at LIMIT ?');
      for (;;) {
        // A chain that got a hop since the last chunk is no longer idle: its summary says so first. No flush
        // runs between reading a chain's summary and deleting it (its tags and counts go with what was read).
        const done = await this.#summaries.whileFresh(async () => {
          const ids = (old.all(now - policy.maxAgeMs!, CHUNK) as { correlation_id: string }[]).map((r) => r.correlation_id);
          return ids.length === 0 ? undefined : this.#deleteChains(ids);
        });
        if (done === undefined) break;
        add(done);
        if (db.closed) return total;
      }
    }
    if (policy.maxBytes !== undefined) {
      const oldest = db.prepared('SELECT correlation_id FROM chains ORDER BY updated_at LIMIT ?');
      while (db.usedBytes() > policy.maxBytes && this.#summaries.chainCount > 0) {
        const done = await this.#summaries.whileFresh(async () => {
          // A tenth of the chains at a time (at least one chunk), oldest first.
          const n = Math.max(CHUNK, Math.ceil(this.#summaries.chainCount / 10));
          const ids = (oldest.all(n) as { correlation_id: string }[]).map((r) => r.correlation_id);
          return ids.length === 0 ? undefined : this.#deleteChains(ids);
        });
        if (done === undefined) break;
        add(done);
        if (db.closed) return total;
      }
    }
    return total;
  }
}
