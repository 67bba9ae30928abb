/**
 * Chain summaries, list tags, trace ids and topology contributions, kept up
 * to date from the records commits add — never by re-reading and re-parsing
 * a chain per write.
 *
 * State: each chain's summary state is its summary hops (`summaryHop`, a
 * hop without headers, payload or stack), held in memory for recently active
 * chains. A commit hands over its new hops (`added`); a flush merges them
 * into their chains' state, recomputes each touched chain's summary once
 * however many writes touched it, and writes the chain row, the tags that
 * changed, new trace ids and the topology change of each touched message, in
 * one transaction with the chain's `flushed_id` (the newest record its
 * summary includes).
 *
 * A chain not in memory (evicted, or after a restart) is loaded from its
 * records once; what its stored summary and topology already include is the
 * records up to its `flushed_id`, so nothing is counted twice. After every
 * chain of a flush is written, meta `flushed_through` says every record up to
 * then is in a summary: a restart re-flushes only the chains with newer
 * records (and those in `dirty_chains`, whose summaries must be recomputed).
 */
import type { StatementSync } from 'node:sqlite';
import { StoreError } from '../src/errors.ts';
import type { ChainSummary, StoredHop } from './api-types.ts';
import { hopsOfMessages, newTraceIds, tagChanges, topologyHop } from './chain-refresh.ts';
import { summarizeChainHops, summaryHop, type EngineSettings } from './chain-summary.ts';
import { unpackId } from './record-codec.ts';
import { distinctHops } from './record-identity.ts';
import type { CommittedHops } from './sqlite-commit.ts';
import type { SqliteDb } from './sqlite-db.ts';
import type { SqliteRecords } from './sqlite-records.ts';
import type { SqliteTopology } from './sqlite-topology.ts';
import type { ChainChange } from './store.ts';
import { EdgeTally, messageContributions, type TopologyHop } from './topology-buckets.ts';

/** Chains written per transaction by a flush (bounds how long one holds the write lock). */
const FLUSH_CHUNK = 2_000;
/** Summary hops kept in memory at most; least recently used chains are dropped first (they reload from records). */
export const MAX_CACHED_HOPS = 100_000;
/** Changes kept for the next `flush()` from flushes that reads did; beyond this, live events are dropped. */
const MAX_PENDING_CHANGES = 10_000;

/** A chain's summary state. */
interface ChainState {
  /** Summary hops, each once. */
  hops: StoredHop[];
  /** The newest record id these hops include. */
  flushedId: number;
  /** The stored summary (undefined before the chain's first flush). */
  summary: ChainSummary | undefined;
  json: string | undefined;
  updatedAt: number;
}

const rowIdOf = (hopId: number): number => Math.floor(hopId / 8);

function byMessage(hops: readonly StoredHop[], messages: ReadonlySet<string>): Map<string, TopologyHop[]> {
  return new Map([...hopsOfMessages(hops, messages)].map(([m, list]) => [m, list.map(topologyHop)]));
}

export class SqliteSummaries {
  readonly #db: SqliteDb;
  readonly #records: SqliteRecords;
  readonly #topology: SqliteTopology;
  readonly #settings: EngineSettings;
  /** Committed summary hops not yet in their chain's summary. */
  #pending = new Map<string, StoredHop[]>();
  /** Chains whose summary must be recomputed though no new hop is pending (restart, a failed flush). */
  readonly #resummarize = new Set<string>();
  /** Summary state of recently active chains, least recently used first. */
  readonly #cache = new Map<string, ChainState>();
  #cachedHops = 0;
  /** The newest committed record id. */
  #maxRecordId: number;
  /** Changes from flushes done by reads, handed out by the next `flush()`. */
  readonly #pendingChanges = new Map<string, ChainChange>();
  #chainCount: number;

  readonly #chainRow: StatementSync;
  readonly #upsertChain: StatementSync;
  readonly #markChecked: StatementSync;
  readonly #insertTag: StatementSync;
  readonly #deleteTag: StatementSync;
  readonly #insertTrace: StatementSync;
  readonly #markDirty: StatementSync;
  readonly #clearDirty: StatementSync;
  readonly #setFlushedThrough: StatementSync;

  constructor(db: SqliteDb, records: SqliteRecords, topology: SqliteTopology, settings: EngineSettings) {
    this.#db = db;
    this.#records = records;
    this.#topology = topology;
    this.#settings = settings;
    const d = db.db;
    this.#chainRow = d.prepare('SELECT summary, updated_at, flushed_id FROM chains WHERE correlation_id = ?');
    this.#upsertChain = d.prepare(
      `INSERT INTO chains (correlation_id, status, statuses, services, start_ts, end_ts, hop_count, updated_at, settled, checked_at, summary, flushed_id)
       VALUES (?, ?, '', '', ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (correlation_id) DO UPDATE SET status = excluded.status, start_ts = excluded.start_ts, end_ts = excluded.end_ts,
         hop_count = excluded.hop_count, updated_at = excluded.updated_at, settled = excluded.settled,
         checked_at = excluded.checked_at, summary = excluded.summary, flushed_id = excluded.flushed_id`,
    );
    this.#markChecked = d.prepare('UPDATE chains SET checked_at = ?, settled = ?, flushed_id = ? WHERE correlation_id = ?');
    this.#insertTag = d.prepare('INSERT OR IGNORE INTO chain_tags (tag, start_ts, correlation_id) VALUES (?, ?, ?)');
    this.#deleteTag = d.prepare('DELETE FROM chain_tags WHERE tag = ? AND start_ts = ? AND correlation_id = ?');
    this.#insertTrace = d.prepare('INSERT OR IGNORE INTO chain_traces (trace_id, correlation_id) VALUES (?, ?)');
    this.#markDirty = d.prepare('INSERT OR IGNORE INTO dirty_chains (correlation_id, updated_at) VALUES (?, ?)');
    this.#clearDirty = d.prepare('DELETE FROM dirty_chains WHERE correlation_id = ?');
    this.#setFlushedThrough = d.prepare("INSERT INTO meta (key, value) VALUES ('flushed_through', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value");

    this.#maxRecordId = (d.prepare('SELECT coalesce(max(id), 0) AS n FROM records').get() as { n: number }).n;
    const through = (d.prepare("SELECT value FROM meta WHERE key = 'flushed_through'").get() as { value: number } | undefined)?.value ?? 0;
    for (const row of d.prepare('SELECT DISTINCT correlation_id FROM records WHERE id > ?').iterate(through) as Iterable<{
      correlation_id: string | Uint8Array;
    }>) {
      this.#resummarize.add(unpackId(row.correlation_id));
    }
    for (const row of d.prepare('SELECT correlation_id FROM dirty_chains').iterate() as Iterable<{ correlation_id: string }>) {
      this.#resummarize.add(row.correlation_id);
    }
    this.#chainCount = (d.prepare('SELECT count(*) AS n FROM chains').get() as { n: number }).n;
  }

  /** Chains with a summary. */
  get chainCount(): number {
    return this.#chainCount;
  }

  /** Whether any chain waits for a flush. */
  get dirty(): boolean {
    return this.#pending.size > 0 || this.#resummarize.size > 0;
  }

  /** A commit's new hops (called right after the commit). */
  readonly added = (hops: CommittedHops): void => {
    for (const [chain, list] of hops) {
      const pending = this.#pending.get(chain);
      if (pending === undefined) this.#pending.set(chain, list);
      else for (const h of list) pending.push(h);
      for (const h of list) {
        const row = rowIdOf(h.id);
        if (row > this.#maxRecordId) this.#maxRecordId = row;
      }
    }
  };

  /** Forget a chain (retention deleted it). */
  forget(correlationId: string): void {
    const st = this.#cache.get(correlationId);
    if (st !== undefined) {
      this.#cachedHops -= st.hops.length;
      this.#cache.delete(correlationId);
    }
    this.#pending.delete(correlationId);
    this.#resummarize.delete(correlationId);
    this.#pendingChanges.delete(correlationId);
  }

  /** A chain deleted: one fewer. */
  deleted(count: number): void {
    this.#chainCount -= count;
  }

  /** The chain's state: from memory, or loaded from its records (dropping pending hops, which the records include). */
  #state(correlationId: string): { state: ChainState; before: StoredHop[]; fresh: StoredHop[] } | undefined {
    const cached = this.#cache.get(correlationId);
    const pending = this.#pending.get(correlationId) ?? [];
    if (cached !== undefined) {
      this.#cache.delete(correlationId); // re-inserted as most recently used
      this.#cachedHops -= cached.hops.length;
      const fresh = pending.filter((h) => rowIdOf(h.id) > cached.flushedId);
      return { state: cached, before: cached.hops, fresh };
    }
    const row = this.#chainRow.get(correlationId) as { summary: string; updated_at: number; flushed_id: number } | undefined;
    if (row === undefined && !this.#resummarize.has(correlationId)) {
      // A chain never summarized and not left over from a restart or a failure: its pending hops are all it has.
      return pending.length === 0 ? undefined : { state: { hops: [], flushedId: 0, summary: undefined, json: undefined, updatedAt: 0 }, before: [], fresh: pending };
    }
    const flushedId = row?.flushed_id ?? 0;
    // Every hop of every row, repeats included: what the stored summary holds is the rows up to flushed_id, each hop once.
    const all: StoredHop[] = [];
    for (const row of this.#records.chainRows(correlationId)) {
      for (const h of this.#records.rowHops(row)) all.push(summaryHop(h, h.id, h.receivedAt));
    }
    if (all.length === 0) return undefined;
    const before = distinctHops(all.filter((h) => rowIdOf(h.id) <= flushedId));
    const fresh = all.filter((h) => rowIdOf(h.id) > flushedId);
    const summary = row === undefined ? undefined : (JSON.parse(row.summary) as ChainSummary);
    const state: ChainState = { hops: before, flushedId, summary, json: row?.summary, updatedAt: row?.updated_at ?? 0 };
    return { state, before, fresh };
  }

  /**
   * Recompute one chain's summary from its state plus its new hops, and
   * write what changed. Inside the caller's transaction.
   */
  #refresh(correlationId: string, now: number, tally: EdgeTally): ChainChange | undefined {
    const loaded = this.#state(correlationId);
    this.#pending.delete(correlationId);
    if (loaded === undefined) return undefined;
    const { state, before, fresh } = loaded;
    const hops = fresh.length === 0 ? before : distinctHops([...before, ...fresh]);
    let updatedAt = state.updatedAt;
    let flushedId = state.flushedId;
    for (const h of fresh) {
      if (h.receivedAt > updatedAt) updatedAt = h.receivedAt;
      const row = rowIdOf(h.id);
      if (row > flushedId) flushedId = row;
    }
    const { summary, settled } = summarizeChainHops(correlationId, hops, { now, updatedAt }, this.#settings);
    const json = JSON.stringify(summary);

    if (fresh.length > 0) {
      const touched = new Set(fresh.map((h) => h.messageId));
      const was = byMessage(before, touched);
      const now_ = byMessage(hops, touched);
      for (const m of touched) {
        tally.addContributions(messageContributions(was.get(m)!), -1, true);
        tally.addContributions(messageContributions(now_.get(m)!), 1, true);
      }
    }

    let change: ChainChange | undefined;
    if (json !== state.json) {
      this.#upsertChain.run(
        correlationId,
        summary.status,
        summary.startTs,
        summary.endTs,
        summary.hopCount,
        updatedAt,
        settled ? 1 : 0,
        now,
        json,
        flushedId,
      );
      this.#writeTags(correlationId, state.summary, before, summary, hops);
      this.#writeTraces(correlationId, state.summary, summary);
      change = { type: state.summary === undefined ? 'new' : 'changed', chain: summary };
      if (state.summary === undefined) this.#chainCount++;
    } else {
      this.#markChecked.run(now, settled ? 1 : 0, flushedId, correlationId);
    }
    this.#remember(correlationId, { hops, flushedId, summary, json, updatedAt });
    return change;
  }

  #writeTags(correlationId: string, old: ChainSummary | undefined, oldHops: readonly StoredHop[], summary: ChainSummary, hops: readonly StoredHop[]): void {
    const { remove, add } = tagChanges(old, oldHops, summary, hops);
    for (const key of remove) this.#deleteTag.run(key, old!.startTs, correlationId);
    for (const key of add) this.#insertTag.run(key, summary.startTs, correlationId);
  }

  #writeTraces(correlationId: string, old: ChainSummary | undefined, summary: ChainSummary): void {
    for (const t of newTraceIds(old, summary)) this.#insertTrace.run(Buffer.from(t, 'hex'), correlationId);
  }

  #remember(correlationId: string, state: ChainState): void {
    this.#cache.set(correlationId, state);
    this.#cachedHops += state.hops.length;
    for (const [id, st] of this.#cache) {
      if (this.#cachedHops <= MAX_CACHED_HOPS) break;
      this.#cache.delete(id);
      this.#cachedHops -= st.hops.length;
    }
  }

  /**
   * Bring every chain with new hops (or marked for it) up to date, in
   * transactions of {@link FLUSH_CHUNK} chains. A chain whose summary throws
   * keeps its old summary and is marked to be recomputed (from its records)
   * on the next flush; the first such error is returned, so one bad chain
   * never blocks the others.
   */
  #flushAll(now: number): { changes: ChainChange[]; error?: Error } {
    const changes: ChainChange[] = [];
    let error: Error | undefined;
    const ids = [...new Set([...this.#pending.keys(), ...this.#resummarize])];
    const through = this.#maxRecordId;
    for (let start = 0; start < ids.length; start += FLUSH_CHUNK) {
      const chunk = ids.slice(start, start + FLUSH_CHUNK);
      const last = start + FLUSH_CHUNK >= ids.length;
      const done = this.#writeChunk(chunk, now, last ? through : undefined);
      for (const id of done.failed) {
        this.forget(id);
        this.#resummarize.add(id);
      }
      for (const c of done.out) changes.push(c);
      if (done.error) error ??= done.error;
    }
    return { changes, error };
  }

  /**
   * One flush transaction. When it fails as a whole, its chains are
   * forgotten and marked, so the next flush reloads them from their records
   * and what the database holds.
   */
  #writeChunk(chunk: readonly string[], now: number, through: number | undefined): { out: ChainChange[]; failed: string[]; error?: Error } {
    let error: Error | undefined;
    try {
      return this.#db.transaction(() => {
        const out: ChainChange[] = [];
        const failed: string[] = [];
        const tally = new EdgeTally();
        for (const id of chunk) {
          const wasMarked = this.#resummarize.has(id);
          try {
            const change = this.#refresh(id, now, tally);
            this.#resummarize.delete(id);
            if (change) out.push(change);
            if (wasMarked) this.#clearDirty.run(id);
          } catch (err) {
            error ??= new StoreError(`cannot summarize chain "${id}": ${(err as Error).message}`, { cause: err });
            failed.push(id);
            this.#markDirty.run(id, now);
          }
        }
        this.#topology.apply(tally);
        if (through !== undefined) this.#setFlushedThrough.run(through);
        return { out, failed, error };
      });
    } catch (err) {
      for (const id of chunk) {
        this.forget(id);
        this.#resummarize.add(id);
      }
      throw err;
    }
  }

  /** Before a read of summaries: bring them up to date, keeping the changes for the next `flush()`. */
  fresh(): void {
    if (!this.dirty) return;
    for (const change of this.#flushAll(Date.now()).changes) this.#keep(change);
  }

  #keep(change: ChainChange): void {
    const id = change.chain.correlationId;
    const before = this.#pendingChanges.get(id);
    if (!before && this.#pendingChanges.size >= MAX_PENDING_CHANGES) return;
    this.#pendingChanges.set(id, before?.type === 'new' ? { type: 'new', chain: change.chain } : change);
  }

  /**
   * Bring every summary up to date and return what changed since the last
   * call (also changes made by reads in between), once per chain.
   * @throws StoreError when a chain could not be summarized (the others are)
   */
  flush(now: number): ChainChange[] {
    this.#db.open();
    const { changes, error } = this.dirty ? this.#flushAll(now) : { changes: [] };
    for (const change of changes) this.#keep(change);
    const out = [...this.#pendingChanges.values()];
    this.#pendingChanges.clear();
    if (error) throw error;
    return out;
  }

  /** Re-summarize up to `limit` unsettled chains, least recently checked first; the ones whose summary changed. */
  refreshUnsettled(now: number, limit: number): ChainChange[] {
    this.#db.open();
    this.fresh();
    const ids = this.#db.prepared('SELECT correlation_id FROM chains WHERE settled = 0 ORDER BY checked_at LIMIT ?').all(limit) as {
      correlation_id: string;
    }[];
    if (ids.length === 0) return [];
    return this.#db.transaction(() => {
      const changes: ChainChange[] = [];
      const tally = new EdgeTally();
      for (const { correlation_id } of ids) {
        const change = this.#refresh(correlation_id, now, tally);
        if (change) changes.push(change);
      }
      this.#topology.apply(tally);
      return changes;
    });
  }

  /** The stored summary of a chain (after bringing summaries up to date). */
  summary(correlationId: string): ChainSummary | undefined {
    this.#db.open();
    this.fresh();
    const cached = this.#cache.get(correlationId);
    if (cached?.summary !== undefined) return cached.summary;
    const row = this.#chainRow.get(correlationId) as { summary: string } | undefined;
    return row ? (JSON.parse(row.summary) as ChainSummary) : undefined;
  }
}
