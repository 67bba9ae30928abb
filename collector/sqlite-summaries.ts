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
 * changed, new trace ids, the topology change of each touched message and
 * the change of its failure-group counts (`failure-buckets.ts`), in one
 * transaction with the chain's `flushed_id` (the newest record its summary
 * includes).
 *
 * A chain not in memory (evicted, or after a restart) is loaded from its
 * records once; what its stored summary and topology already include is the
 * records up to its `flushed_id`, so nothing is counted twice. After every
 * chain of a flush is written, meta `flushed_through` says every record up to
 * then is in a summary: a restart re-flushes only the chains with newer
 * records (and those in `dirty_chains`, whose summaries must be recomputed).
 */
import type { StatementSync } from 'node:sqlite';
import { StoreError } from './errors.ts';
import type { ChainSummary, StoredHop } from './api-types.ts';
import { chainTags, summarizeChainHops, summaryHop, type ChainTag, type EngineSettings } from './chain-summary.ts';
import { unpackId } from './record-codec.ts';
import { distinctHops } from './record-identity.ts';
import { fromV2, type CommittedHops } from './sqlite-commit.ts';
import type { SqliteDb } from './sqlite-db.ts';
import { CHAIN_ROW_COLUMNS, storedSummary, summaryFromRow, TAG_SEP, tagKey, type ChainRow } from './sqlite-chain-list.ts';
import type { SqliteRecords } from './sqlite-records.ts';
import type { SqliteWriter, WriterOp } from './sqlite-writer.ts';
import type { ChainChange } from './store.ts';
import { EdgeTally, encodeWaits, messageContributions, type TopologyHop } from './topology-buckets.ts';
import { FailureDeltas, newGroups } from './failure-buckets.ts';

/** Chains written per transaction by a flush (bounds how long one holds the writer). */
const FLUSH_CHUNK = 2_000;
/**
 * Summary hops kept in memory at most; least recently used chains are dropped first (they reload
 * from their records). About 700 bytes of heap each: 50,000 hold the chains of a few seconds of
 * busy traffic, which is when a chain still gets hops; a miss costs a read of its records.
 */
export const MAX_CACHED_HOPS = 50_000;
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
  /** That summary as the chain row keeps it (`storedSummary`), to tell a change from none. */
  stored: string | undefined;
  /** The tags the chain row has (stored keys), at `summary.startTs`. */
  tags: Set<string> | undefined;
  updatedAt: number;
}

const rowIdOf = (hopId: number): number => Math.floor(hopId / 8);

function topologyHop(h: StoredHop): TopologyHop {
  return {
    kind: h.kind,
    service: h.service,
    exchange: h.exchange ?? null,
    queue: h.queue ?? null,
    ts: h.ts,
    outcome: h.outcome ?? null,
    deathCount: h.deathCount ?? null,
  };
}

function byMessage(hops: readonly StoredHop[], messages: ReadonlySet<string>): Map<string, TopologyHop[]> {
  const out = new Map<string, TopologyHop[]>();
  for (const m of messages) out.set(m, []);
  for (const h of hops) out.get(h.messageId)?.push(topologyHop(h));
  return out;
}

/** A chain's tags to add (at its start) and to remove (at its old start), as stored keys joined by U+001E. */
function tagChanges(old: { startTs: number; tags: ReadonlySet<string> } | undefined, startTs: number, next: ReadonlySet<string>): { added: string; removed: string } {
  const added: string[] = [];
  const removed: string[] = [];
  const sameStart = old !== undefined && old.startTs === startTs;
  if (old !== undefined) for (const key of old.tags) if (!(sameStart && next.has(key))) removed.push(key);
  for (const key of next) if (!(sameStart && old.tags.has(key))) added.push(key);
  return { added: added.join(TAG_SEP), removed: removed.join(TAG_SEP) };
}

const tagSet = (summary: ChainSummary, hops: readonly StoredHop[]): Set<string> => new Set(chainTags(summary, hops).map((t: ChainTag) => tagKey(t)));

/** Topology changes as the writer's bucket ops. */
function bucketOps(tally: EdgeTally, ops: WriterOp[]): void {
  for (const e of tally.changed()) ops.push(['bucket', e.bucket, e.from, e.to, e.count, e.errors, encodeWaits(e.waits)]);
}

/** A chain's new state, computed by a flush and kept once its writes committed. */
interface Refreshed {
  id: string;
  state: ChainState;
  change: ChainChange | undefined;
  isNew: boolean;
}

export class SqliteSummaries {
  readonly #db: SqliteDb;
  readonly #records: SqliteRecords;
  readonly #writer: SqliteWriter;
  readonly #settings: EngineSettings;
  /** Committed summary hops not yet in their chain's summary. */
  #pending = new Map<string, StoredHop[]>();
  /** Chains whose summary must be recomputed though no new hop is pending (restart, a failed flush of the writer). */
  readonly #resummarize = new Set<string>();
  /**
   * Chains whose summary could not be computed (marked in dirty_chains too): retried, from their
   * records, when they get a new hop or the store reopens — not on every flush.
   */
  readonly #stale = new Set<string>();
  /** Summary state of recently active chains, least recently used first. */
  readonly #cache = new Map<string, ChainState>();
  #cachedHops = 0;
  /** The newest committed record id. */
  #maxRecordId: number;
  /** Changes from flushes done by reads, handed out by the next `flush()`. */
  readonly #pendingChanges = new Map<string, ChainChange>();
  #chainCount: number;
  /** The flush in progress: flushes run one after another, each seeing what the last one wrote. */
  #running: Promise<unknown> = Promise.resolve();
  /** Failure groups known to be described in failure_groups (rows are never deleted). */
  readonly #knownGroups = new Set<string>();
  /** Groups the flush transaction being built describes. */
  #groupsWritten: string[] = [];

  readonly #chainRow: StatementSync;

  constructor(db: SqliteDb, records: SqliteRecords, writer: SqliteWriter, settings: EngineSettings) {
    this.#db = db;
    this.#records = records;
    this.#writer = writer;
    this.#settings = settings;
    const d = db.db;
    this.#chainRow = d.prepare(`SELECT ${CHAIN_ROW_COLUMNS}, flushed_id FROM chains WHERE correlation_id = ?`);
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

  /** Forget what is known of a chain in memory (its state is no longer trusted). */
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

  /** Forget a chain for good (retention deleted it). */
  drop(correlationId: string): void {
    this.forget(correlationId);
    this.#stale.delete(correlationId);
  }

  /** Chains deleted: that many fewer. */
  deleted(count: number): void {
    this.#chainCount -= count;
  }

  /** The chain's state: from memory, or loaded from its records (dropping pending hops, which the records include). */
  #state(correlationId: string): { state: ChainState; before: StoredHop[]; fresh: StoredHop[] } | undefined {
    const cached = this.#cache.get(correlationId);
    const pending = this.#pending.get(correlationId) ?? [];
    if (cached !== undefined) {
      this.#cache.delete(correlationId); // re-inserted as most recently used once written
      this.#cachedHops -= cached.hops.length;
      const fresh = pending.filter((h) => rowIdOf(h.id) > cached.flushedId);
      return { state: cached, before: cached.hops, fresh };
    }
    const row = this.#chainRow.get(correlationId) as (ChainRow & { flushed_id: number }) | undefined;
    if (row === undefined && !this.#resummarize.has(correlationId) && !this.#stale.has(correlationId)) {
      // A chain never summarized and not left over from a restart or a failure: its pending hops are all it has.
      return pending.length === 0
        ? undefined
        : { state: { hops: [], flushedId: 0, summary: undefined, stored: undefined, tags: undefined, updatedAt: 0 }, before: [], fresh: pending };
    }
    const flushedId = row?.flushed_id ?? 0;
    // Every hop of every row, repeats included: what the stored summary holds is the rows up to flushed_id, each hop once.
    const all: StoredHop[] = [];
    for (const r of this.#records.chainRows(correlationId)) {
      for (const h of this.#records.rowHops(r, correlationId)) all.push(summaryHop(h, h.id, h.receivedAt));
    }
    if (all.length === 0) return undefined;
    const stored = all.filter((h) => rowIdOf(h.id) <= flushedId);
    const before = stored.some((h) => fromV2(h.id)) ? distinctHops(stored) : stored;
    const fresh = all.filter((h) => rowIdOf(h.id) > flushedId);
    const summary = row === undefined ? undefined : summaryFromRow(row);
    const state: ChainState = {
      hops: before,
      flushedId,
      summary,
      stored: summary && storedSummary(summary),
      tags: summary && tagSet(summary, before),
      updatedAt: row?.updated_at ?? 0,
    };
    return { state, before, fresh };
  }

  /** Recompute one chain's summary from its state plus its new hops; the writes go into `ops`, topology into `tally`. */
  #refresh(correlationId: string, now: number, tally: EdgeTally, failures: FailureDeltas, ops: WriterOp[]): Refreshed | undefined {
    const loaded = this.#state(correlationId);
    this.#pending.delete(correlationId);
    if (loaded === undefined) return undefined;
    const { state, before, fresh } = loaded;
    // Only a version-2 record's hops can have a twin (from the open record of the same delivery).
    const hops = fresh.length === 0 ? before : fresh.some((h) => fromV2(h.id)) ? distinctHops([...before, ...fresh]) : [...before, ...fresh];
    let updatedAt = state.updatedAt;
    let flushedId = state.flushedId;
    for (const h of fresh) {
      if (h.receivedAt > updatedAt) updatedAt = h.receivedAt;
      const row = rowIdOf(h.id);
      if (row > flushedId) flushedId = row;
    }
    const { summary, settled, failures: problems } = summarizeChainHops(correlationId, hops, { now, updatedAt }, this.#settings);
    const stored = storedSummary(summary);
    const old = state.summary;
    const same =
      old !== undefined &&
      stored === state.stored &&
      summary.status === old.status &&
      summary.startTs === old.startTs &&
      summary.endTs === old.endTs &&
      summary.hopCount === old.hopCount &&
      summary.updatedAt === old.updatedAt;

    if (fresh.length > 0) {
      const touched = new Set(fresh.map((h) => h.messageId));
      const was = byMessage(before, touched);
      const is = byMessage(hops, touched);
      for (const m of touched) {
        tally.addContributions(messageContributions(was.get(m)!), -1, true);
        tally.addContributions(messageContributions(is.get(m)!), 1, true);
      }
    }

    let change: ChainChange | undefined;
    let tags = state.tags;
    if (!same) {
      // Failure groups: the chain's new tally minus the one its stored summary holds; groups first seen described.
      failures.add(old?.failureTally, -1);
      failures.add(summary.failureTally, 1);
      for (const g of newGroups(problems, (fp) => this.#knownGroups.has(fp))) {
        ops.push(['group', g.fingerprint, g.status, g.service, g.queue ?? null, g.exchange ?? null, g.routingKey ?? null, g.errorType ?? null, g.pattern, g.example ?? null, g.deadLetterQueue ?? null]);
        this.#groupsWritten.push(g.fingerprint);
      }
      tags = tagSet(summary, hops);
      const { added, removed } = tagChanges(old && state.tags && { startTs: old.startTs, tags: state.tags }, summary.startTs, tags);
      const known = new Set(state.summary?.traceIds ?? []);
      const traces = summary.traceIds.filter((t) => !known.has(t) && t.length === 32).join('');
      // One op per chain: its row, the tags it gained and lost, its new trace ids (hex, 32 each).
      ops.push([
        'chain',
        correlationId,
        summary.status,
        summary.startTs,
        summary.endTs,
        summary.hopCount,
        updatedAt,
        settled ? 1 : 0,
        now,
        stored,
        flushedId,
        added,
        old?.startTs ?? summary.startTs,
        removed,
        traces,
      ]);
      change = { type: state.summary === undefined ? 'new' : 'changed', chain: summary };
    } else {
      ops.push(['checked', now, settled ? 1 : 0, flushedId, correlationId]);
    }
    return {
      id: correlationId,
      state: { hops, flushedId, summary, stored, tags, updatedAt },
      change,
      isNew: state.summary === undefined && change !== undefined,
    };
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

  /** Run `job` after the flush in progress, as the next one. */
  #serial<T>(job: () => Promise<T>): Promise<T> {
    const next = this.#running.then(job, job);
    this.#running = next.catch(() => undefined);
    return next;
  }

  /**
   * Bring every chain with new hops (or marked for it) up to date, in
   * transactions of {@link FLUSH_CHUNK} chains. A chain whose summary throws
   * keeps its old summary and is marked to be recomputed (from its records)
   * on the next flush; the first such error is returned, so one bad chain
   * never blocks the others.
   */
  async #flushAll(now: number): Promise<{ changes: ChainChange[]; error?: Error }> {
    const changes: ChainChange[] = [];
    let error: Error | undefined;
    const ids = [...new Set([...this.#pending.keys(), ...this.#resummarize])];
    const through = this.#maxRecordId;
    for (let start = 0; start < ids.length; start += FLUSH_CHUNK) {
      const chunk = ids.slice(start, start + FLUSH_CHUNK);
      const last = start + FLUSH_CHUNK >= ids.length;
      const done = await this.#writeChunk(chunk, now, last ? through : undefined);
      for (const c of done.changes) changes.push(c);
      if (done.error) error ??= done.error;
    }
    return { changes, error };
  }

  /**
   * One flush transaction. When it fails as a whole, its chains are
   * forgotten and marked, so the next flush reloads them from their records
   * and what the database holds.
   */
  async #writeChunk(chunk: readonly string[], now: number, through: number | undefined): Promise<{ changes: ChainChange[]; error?: Error }> {
    const ops: WriterOp[] = [];
    const tally = new EdgeTally();
    const failures = new FailureDeltas();
    this.#groupsWritten = [];
    const refreshed: Refreshed[] = [];
    const failed: string[] = [];
    let error: Error | undefined;
    for (const id of chunk) {
      const wasMarked = this.#resummarize.has(id) || this.#stale.has(id);
      try {
        const r = this.#refresh(id, now, tally, failures, ops);
        if (r) refreshed.push(r);
        if (wasMarked) ops.push(['dirty-', id]);
      } catch (err) {
        error ??= new StoreError(`cannot summarize chain "${id}": ${(err as Error).message}`, { cause: err });
        failed.push(id);
        ops.push(['dirty+', id, now]);
      }
      this.#resummarize.delete(id);
    }
    bucketOps(tally, ops);
    for (const c of failures.changed()) ops.push(['failure', c.fingerprint, c.bucket, c.count, c.unresolved]);
    if (through !== undefined) ops.push(['meta', 'flushed_through', through]);
    const groups = this.#groupsWritten;
    try {
      await this.#writer.apply(ops);
      for (const fp of groups) this.#knownGroups.add(fp);
    } catch (err) {
      for (const id of chunk) {
        this.forget(id);
        this.#resummarize.add(id);
      }
      throw err;
    }
    for (const id of failed) {
      this.forget(id);
      this.#stale.add(id);
    }
    const changes: ChainChange[] = [];
    for (const r of refreshed) {
      this.#stale.delete(r.id);
      this.#remember(r.id, r.state);
      if (r.isNew) this.#chainCount++;
      if (r.change) changes.push(r.change);
    }
    return { changes, error };
  }

  /** Before a read of summaries: bring them up to date, keeping the changes for the next `flush()`. */
  async fresh(): Promise<void> {
    await this.#serial(async () => {
      if (!this.dirty) return;
      for (const change of (await this.#flushAll(Date.now())).changes) this.#keep(change);
    });
  }

  /**
   * Bring summaries up to date, then run `job` before any other flush: what
   * it reads of the summaries stays true until its writes are applied
   * (retention deletes chains this way). Changes go to the next `flush()`.
   */
  whileFresh<T>(job: () => Promise<T>): Promise<T> {
    this.#db.open();
    return this.#serial(async () => {
      if (this.dirty) for (const change of (await this.#flushAll(Date.now())).changes) this.#keep(change);
      return job();
    });
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
  flush(now: number): Promise<ChainChange[]> {
    this.#db.open();
    return this.#serial(async () => {
      const { changes, error } = this.dirty ? await this.#flushAll(now) : { changes: [] };
      for (const change of changes) this.#keep(change);
      const out = [...this.#pendingChanges.values()];
      this.#pendingChanges.clear();
      if (error) throw error;
      return out;
    });
  }

  /** Re-summarize up to `limit` unsettled chains, least recently checked first; the ones whose summary changed. */
  async refreshUnsettled(now: number, limit: number): Promise<ChainChange[]> {
    this.#db.open();
    await this.fresh();
    return this.#serial(async () => {
      const ids = this.#db.prepared('SELECT correlation_id FROM chains WHERE settled = 0 ORDER BY checked_at LIMIT ?').all(limit) as {
        correlation_id: string;
      }[];
      if (ids.length === 0) return [];
      return (await this.#writeChunk(ids.map((r) => r.correlation_id), now, undefined)).changes;
    });
  }

  /** The stored summary of a chain (after bringing summaries up to date). */
  async summary(correlationId: string): Promise<ChainSummary | undefined> {
    this.#db.open();
    await this.fresh();
    const cached = this.#cache.get(correlationId);
    if (cached?.summary !== undefined) return cached.summary;
    const row = this.#chainRow.get(correlationId) as ChainRow | undefined;
    return row ? summaryFromRow(row) : undefined;
  }
}
