/**
 * Retention in SQLite: whole chains deleted (records, summary, tags, trace
 * ids, and their topology contributions), oldest-updated first, by age and
 * by size, in chunks so a large purge never holds the write lock for long.
 */
import type { ChainSummary } from './api-types.ts';
import { topologyHop } from './chain-refresh.ts';
import { tagKey } from './chain-list-filters.ts';
import { chainTags } from './chain-summary.ts';
import { packId } from './record-codec.ts';
import type { SqliteDb } from './sqlite-db.ts';
import type { SqliteRecords } from './sqlite-records.ts';
import type { SqliteSummaries } from './sqlite-summaries.ts';
import type { SqliteTopology } from './sqlite-topology.ts';
import type { RetentionPolicy, RetentionResult } from './store.ts';
import { EdgeTally, messageContributions } from './topology-buckets.ts';

const CHUNK = 500;

export class SqliteRetention {
  readonly #db: SqliteDb;
  readonly #records: SqliteRecords;
  readonly #summaries: SqliteSummaries;
  readonly #topology: SqliteTopology;

  constructor(db: SqliteDb, records: SqliteRecords, summaries: SqliteSummaries, topology: SqliteTopology) {
    this.#db = db;
    this.#records = records;
    this.#summaries = summaries;
    this.#topology = topology;
  }

  /** Delete whole chains, in one transaction. Summaries must be up to date (the caller flushed). */
  #deleteChains(ids: readonly string[]): RetentionResult {
    const db = this.#db;
    const result = db.transaction(() => {
      let deletedHops = 0;
      let deletedChains = 0;
      // The deleted hops' topology contributions go with them: each message's before and after.
      const tally = new EdgeTally();
      for (const id of ids) {
        const row = db.prepared('SELECT summary FROM chains WHERE correlation_id = ?').get(id) as { summary: string } | undefined;
        const hops = this.#records.chainHops(id);
        for (const messageId of new Set(hops.map((h) => h.messageId))) {
          const all = this.#records.messageHops(messageId);
          tally.addContributions(messageContributions(all.map(topologyHop)), -1, true);
          const kept = all.filter((h) => h.correlationId !== id);
          if (kept.length > 0) tally.addContributions(messageContributions(kept.map(topologyHop)), 1, true);
        }
        if (row !== undefined) {
          const summary = JSON.parse(row.summary) as ChainSummary;
          const tag = db.prepared('DELETE FROM chain_tags WHERE tag = ? AND start_ts = ? AND correlation_id = ?');
          for (const t of chainTags(summary, hops)) tag.run(tagKey(t), summary.startTs, id);
          const trace = db.prepared('DELETE FROM chain_traces WHERE trace_id = ? AND correlation_id = ?');
          for (const t of summary.traceIds) if (t.length === 32) trace.run(Buffer.from(t, 'hex'), id);
        }
        db.prepared('DELETE FROM chain_tags WHERE correlation_id = ?').run(id);
        deletedHops += hops.length;
        db.prepared('DELETE FROM records WHERE correlation_id = ?').run(packId(id));
        deletedChains += Number(db.prepared('DELETE FROM chains WHERE correlation_id = ?').run(id).changes);
        db.prepared('DELETE FROM dirty_chains WHERE correlation_id = ?').run(id);
      }
      this.#topology.apply(tally);
      return { deletedHops, deletedChains };
    });
    for (const id of ids) this.#summaries.forget(id);
    this.#summaries.deleted(result.deletedChains);
    return result;
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
        // A chain that got a hop since the last chunk is no longer idle: its summary says so first.
        this.#summaries.fresh();
        const ids = (old.all(now - policy.maxAgeMs, CHUNK) as { correlation_id: string }[]).map((r) => r.correlation_id);
        if (ids.length === 0) break;
        add(this.#deleteChains(ids));
        await new Promise((r) => setImmediate(r));
        if (db.closed) return total;
      }
    }
    if (policy.maxBytes !== undefined) {
      const oldest = db.prepared('SELECT correlation_id FROM chains ORDER BY updated_at LIMIT ?');
      while (db.usedBytes() > policy.maxBytes && this.#summaries.chainCount > 0) {
        this.#summaries.fresh();
        // A tenth of the chains at a time (at least one chunk), oldest first.
        const n = Math.max(CHUNK, Math.ceil(this.#summaries.chainCount / 10));
        const ids = (oldest.all(n) as { correlation_id: string }[]).map((r) => r.correlation_id);
        if (ids.length === 0) break;
        add(this.#deleteChains(ids));
        await new Promise((r) => setImmediate(r));
        if (db.closed) return total;
      }
    }
    return total;
  }
}
