/**
 * The {@link Store} on Node's built-in `node:sqlite`: one file, WAL, schema
 * from `migrations.ts`, statements prepared once.
 *
 * Durability: `synchronous=FULL` by default, so a `202` means the hops are on
 * disk and survive a power cut, not only a process crash. In WAL mode that is
 * one fsync per transaction.
 *
 * Group commit: the writes asked for in one turn of the event loop (the
 * requests whose bodies arrived while the previous commit held the thread)
 * share one transaction and one fsync, each inside a savepoint of its own, so
 * one failing write is rolled back alone and every caller still hears only
 * after the commit.
 *
 * Chain summaries are rebuilt from the chain's hops either in the write's own
 * transaction (`summaries: 'inline'`) or later (`'deferred'`): the write only
 * marks the chain dirty, durably, and {@link SqliteStore.flushSummaries} (or
 * any read of summaries) rebuilds each dirty chain once, however many writes
 * touched it in between.
 */
import { hash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { ErrorCodes, StoreError, ValidationError } from '../src/errors.ts';
import type { HopRecord } from '../src/hop.ts';
import type { ChainList, ChainSummary, StoredHop, Topology } from './api-types.ts';
import { LIST_SEP, migrate } from './migrations.ts';
import {
  EdgeTally,
  encodeWaits,
  addEncodedWaits,
  messageContributions,
  TOPOLOGY_BUCKET_MS,
  TOPOLOGY_HOP_COLUMNS,
  type TopologyHop,
} from './topology-buckets.ts';
import {
  REDELIVERED_FILTER,
  type ChainChange,
  type ChainQuery,
  type ChainSummarizer,
  type InsertResult,
  type RetentionPolicy,
  type RetentionResult,
  type Store,
  type StoreStats,
} from './store.ts';

export interface SqliteStoreOptions {
  /** Path of the database file; created with its directory when missing. `:memory:` for a throwaway store. */
  path: string;
  /** Rebuilds a chain's summary from its hops (the chain engine, bound to its options). */
  summarize: ChainSummarizer;
  /**
   * `full`: a committed transaction survives a power cut. `normal`: it
   * survives a crash of the process, not of the machine (faster; fine for
   * `hoptrace import`, which can be re-run).
   * @default 'full'
   */
  durability?: 'full' | 'normal';
  /** How long a write waits for another process holding the lock (e.g. an import running beside the collector). @default 10_000 */
  busyTimeoutMs?: number;
  /**
   * When chain summaries are rebuilt. `inline`: inside each write's
   * transaction ({@link InsertResult.changes} lists them). `deferred`: a write
   * marks its chains dirty in its transaction and returns no changes; they
   * are rebuilt by `flushSummaries()` (the collector calls it every few
   * hundred ms and announces what changed), before any read of summaries
   * (`listChains`, `chainSummary`, `stats`, the sweep, retention) and on
   * close: once per chain for many writes, off the write's path.
   * @default 'inline'
   * @example new SqliteStore({ path, summarize, summaries: 'deferred' })
   */
  summaries?: 'inline' | 'deferred';
}

/** Hops one group commit writes at most; the rest of the queue goes into the next transaction. */
const GROUP_COMMIT_MAX_HOPS = 20_000;
/** Dirty chains rebuilt per transaction by a flush (bounds how long one holds the write lock). */
const FLUSH_CHUNK = 2_000;
/** Changes kept for the next `flushSummaries()` from flushes that reads did; beyond this, live events are dropped. */
const MAX_PENDING_CHANGES = 10_000;

interface QueuedWrite {
  hops: readonly HopRecord[];
  receivedAt: number;
  resolve: (result: InsertResult) => void;
  reject: (err: unknown) => void;
}

/** Wrap an error thrown in a write as the store's error (validation and store errors pass as they are). */
function writeError(err: unknown): Error {
  if (err instanceof StoreError || err instanceof ValidationError) return err;
  return new StoreError(`store write failed: ${(err as Error).message}`, { cause: err });
}

/**
 * Canonical JSON: object keys sorted at every level, so the same hop written
 * with its fields in another order has the same text and the same dedupe key.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out += ',';
      const item = value[i];
      out += item === undefined || typeof item === 'function' ? 'null' : canonicalJson(item);
    }
    return out + ']';
  }
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj).sort();
  let out = '{';
  let first = true;
  for (const key of keys) {
    const item = obj[key];
    if (item === undefined || typeof item === 'function') continue;
    if (!first) out += ',';
    first = false;
    out += JSON.stringify(key) + ':' + canonicalJson(item);
  }
  return out + '}';
}

/** The dedupe key of a hop: the first 16 bytes of the SHA-256 of its canonical JSON. */
export function dedupeKey(canonical: string): Buffer {
  return hash('sha256', canonical, 'buffer').subarray(0, 16);
}

interface HopRow {
  id: number;
  received_at: number;
  json: string;
}

interface ChainRow {
  summary: string;
  updated_at: number;
}

/** chain_tags prefixes (migration 3). */
const TAG_SERVICE = 's:';
const TAG_STATUS = 't:';
const TAG_EXCHANGE = 'x:';
const TAG_ROUTING_KEY = 'r:';
const TAG_QUEUE = 'q:';
/** chain_tags flags (migration 5): `f:redelivered`, any delivery of the chain was a redelivery. */
const TAG_REDELIVERED = 'f:redelivered';
/** Tag filters with more entries than this are equally bad drivers: counting stops there. */
const DRIVER_COUNT_CAP = 5_000;

const wrapList = (items: readonly string[]): string => LIST_SEP + items.join(LIST_SEP) + LIST_SEP;

function encodeCursor(startTs: number, correlationId: string): string {
  return Buffer.from(JSON.stringify([startTs, correlationId])).toString('base64url');
}

function decodeCursor(cursor: string): [number, string] {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(value) && value.length === 2 && typeof value[0] === 'number' && typeof value[1] === 'string') {
      return [value[0], value[1]];
    }
  } catch {
    // fall through
  }
  throw new ValidationError(ErrorCodes.INVALID_QUERY, 'query parameter "cursor" is not a cursor this collector gave out', {
    field: 'cursor',
  });
}

/** The topology fields of a hop being written (as {@link TOPOLOGY_HOP_COLUMNS} reads them back). */
function topologyHop(hop: HopRecord): TopologyHop {
  return {
    kind: hop.kind,
    service: hop.service,
    exchange: hop.exchange ?? null,
    queue: hop.queue ?? null,
    ts: hop.ts,
    outcome: hop.outcome ?? null,
    deathCount: hop.deathCount ?? null,
  };
}

export class SqliteStore implements Store {
  readonly path: string;
  readonly #db: DatabaseSync;
  readonly #summarize: ChainSummarizer;
  readonly #statements = new Map<string, StatementSync>();
  readonly #deferred: boolean;
  #closed = false;
  #hopCount: number;
  #chainCount: number;
  /** Writes waiting for the next group commit. */
  #queue: QueuedWrite[] = [];
  #commitScheduled = false;
  /** False only when dirty_chains is known to be empty: reads then skip the flush. */
  #dirty: boolean;
  /** Changes from flushes done by reads, handed out by the next `flushSummaries()`. */
  readonly #pendingChanges = new Map<string, ChainChange>();

  readonly #insertHop: StatementSync;
  readonly #markDirty: StatementSync;
  readonly #dirtyBatch: StatementSync;
  readonly #clearDirty: StatementSync;
  readonly #chainHops: StatementSync;
  readonly #chainRow: StatementSync;
  readonly #upsertChain: StatementSync;
  readonly #markChecked: StatementSync;
  readonly #deleteTags: StatementSync;
  readonly #insertTag: StatementSync;
  readonly #messageTopologyHops: StatementSync;
  readonly #batchTopologyHops: StatementSync;
  readonly #bucketRow: StatementSync;
  readonly #upsertBucket: StatementSync;
  readonly #deleteBucket: StatementSync;

  constructor(options: SqliteStoreOptions) {
    this.path = options.path === ':memory:' ? options.path : resolve(options.path);
    this.#summarize = options.summarize;
    this.#deferred = options.summaries === 'deferred';
    if (this.path !== ':memory:') mkdirSync(dirname(this.path), { recursive: true });
    try {
      this.#db = new DatabaseSync(this.path, { timeout: options.busyTimeoutMs ?? 10_000 });
      this.#db.exec('PRAGMA journal_mode = WAL');
      this.#db.exec(`PRAGMA synchronous = ${options.durability === 'normal' ? 'NORMAL' : 'FULL'}`);
      this.#db.exec('PRAGMA temp_store = MEMORY');
      this.#db.exec('PRAGMA cache_size = -65536');
      // Checkpoint every ~40 MB of WAL rather than 4: an index page written by many commits in a row
      // is copied into the database once per checkpoint, not once per few commits.
      this.#db.exec('PRAGMA wal_autocheckpoint = 10000');
      migrate(this.#db);
    } catch (cause) {
      throw new StoreError(`cannot open the hoptrace database at ${this.path}: ${(cause as Error).message}`, { cause });
    }
    const db = this.#db;
    this.#insertHop = db.prepare(
      `INSERT INTO hops (dedupe_key, correlation_id, message_id, trace_id, service, kind, ts, received_at, exchange, routing_key, queue, json)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (dedupe_key) DO NOTHING`,
    );
    this.#chainHops = db.prepare('SELECT id, received_at, json FROM hops WHERE correlation_id = ? ORDER BY ts, id');
    this.#chainRow = db.prepare('SELECT summary, updated_at FROM chains WHERE correlation_id = ?');
    this.#upsertChain = db.prepare(
      `INSERT INTO chains (correlation_id, status, statuses, services, start_ts, end_ts, hop_count, updated_at, settled, checked_at, summary)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (correlation_id) DO UPDATE SET status = excluded.status, statuses = excluded.statuses,
         services = excluded.services, start_ts = excluded.start_ts, end_ts = excluded.end_ts,
         hop_count = excluded.hop_count, updated_at = excluded.updated_at, settled = excluded.settled,
         checked_at = excluded.checked_at, summary = excluded.summary`,
    );
    this.#markChecked = db.prepare('UPDATE chains SET checked_at = ?, settled = ? WHERE correlation_id = ?');
    this.#deleteTags = db.prepare('DELETE FROM chain_tags WHERE correlation_id = ?');
    this.#insertTag = db.prepare('INSERT OR IGNORE INTO chain_tags (tag, start_ts, correlation_id) VALUES (?, ?, ?)');
    this.#markDirty = db.prepare(
      `INSERT INTO dirty_chains (correlation_id, updated_at) VALUES (?, ?)
       ON CONFLICT (correlation_id) DO UPDATE SET updated_at = max(updated_at, excluded.updated_at)`,
    );
    this.#messageTopologyHops = db.prepare(`SELECT correlation_id, ${TOPOLOGY_HOP_COLUMNS} FROM hops WHERE message_id = ?`);
    this.#batchTopologyHops = db.prepare(
      `SELECT message_id, ${TOPOLOGY_HOP_COLUMNS} FROM hops WHERE message_id IN (SELECT value FROM json_each(?))`,
    );
    this.#bucketRow = db.prepare('SELECT count, errors, waits FROM topology_buckets WHERE bucket = ? AND from_node = ? AND to_node = ?');
    this.#upsertBucket = db.prepare(
      `INSERT INTO topology_buckets (bucket, from_node, to_node, count, errors, waits) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (bucket, from_node, to_node) DO UPDATE SET count = excluded.count, errors = excluded.errors, waits = excluded.waits`,
    );
    this.#deleteBucket = db.prepare('DELETE FROM topology_buckets WHERE bucket = ? AND from_node = ? AND to_node = ?');
    this.#dirtyBatch = db.prepare('SELECT correlation_id, updated_at FROM dirty_chains LIMIT ?');
    this.#clearDirty = db.prepare('DELETE FROM dirty_chains WHERE correlation_id = ?');
    this.#dirty = db.prepare('SELECT 1 FROM dirty_chains LIMIT 1').get() !== undefined;
    this.#hopCount = (db.prepare('SELECT count(*) AS n FROM hops').get() as { n: number }).n;
    this.#chainCount = (db.prepare('SELECT count(*) AS n FROM chains').get() as { n: number }).n;
  }

  /** A statement for SQL built at run time (filter combinations), prepared once per distinct text. */
  #prepared(sql: string): StatementSync {
    let stmt = this.#statements.get(sql);
    if (!stmt) {
      stmt = this.#db.prepare(sql);
      this.#statements.set(sql, stmt);
    }
    return stmt;
  }

  #open(): DatabaseSync {
    if (this.#closed) throw new StoreError('the store is closed', { statusCode: 503 });
    return this.#db;
  }

  /** Run `fn` in one write transaction; roll back and wrap the error when it throws. */
  #transaction<T>(fn: () => T): T {
    const db = this.#open();
    db.exec('BEGIN IMMEDIATE');
    try {
      const result = fn();
      db.exec('COMMIT');
      return result;
    } catch (err) {
      try {
        db.exec('ROLLBACK');
      } catch {
        // the failed statement may already have rolled back
      }
      throw writeError(err);
    }
  }

  #readChainHops(correlationId: string): StoredHop[] {
    const rows = this.#chainHops.all(correlationId) as unknown as HopRow[];
    return rows.map((r) => ({ ...(JSON.parse(r.json) as HopRecord), id: r.id, receivedAt: r.received_at }));
  }

  /** The chain's rows in chain_tags (see migration 3), rewritten with its summary. */
  #writeTags(correlationId: string, summary: ChainSummary, hops: readonly StoredHop[]): void {
    const tags = new Set<string>();
    for (const s of summary.services) tags.add(`${TAG_SERVICE}${s}`);
    tags.add(`${TAG_STATUS}${summary.status}`);
    for (const p of summary.problems) tags.add(`${TAG_STATUS}${p}`);
    if (summary.redelivered) tags.add(TAG_REDELIVERED);
    for (const h of hops) {
      if (h.exchange !== undefined && h.exchange !== null) tags.add(`${TAG_EXCHANGE}${h.exchange}`);
      if (h.routingKey !== undefined && h.routingKey !== null) tags.add(`${TAG_ROUTING_KEY}${h.routingKey}`);
      if (h.queue !== undefined && h.queue !== null) tags.add(`${TAG_QUEUE}${h.queue}`);
    }
    this.#deleteTags.run(correlationId);
    for (const tag of tags) this.#insertTag.run(tag, summary.startTs, correlationId);
  }

  /** Rebuild a chain's summary and write it. Returns the change, or undefined when nothing changed. */
  #refreshChain(correlationId: string, now: number, updatedAt: number | undefined): ChainChange | undefined {
    const before = this.#chainRow.get(correlationId) as ChainRow | undefined;
    const hops = this.#readChainHops(correlationId);
    if (hops.length === 0) return undefined;
    const stamp = updatedAt ?? before?.updated_at ?? now;
    const { summary, settled } = this.#summarize(correlationId, hops, { now, updatedAt: stamp });
    const json = JSON.stringify(summary);
    if (before && before.summary === json) {
      this.#markChecked.run(now, settled ? 1 : 0, correlationId);
      return undefined;
    }
    this.#upsertChain.run(
      correlationId,
      summary.status,
      wrapList([summary.status, ...summary.problems]),
      wrapList(summary.services),
      summary.startTs,
      summary.endTs,
      summary.hopCount,
      stamp,
      settled ? 1 : 0,
      now,
      json,
    );
    this.#writeTags(correlationId, summary, hops);
    return { type: before ? 'changed' : 'new', chain: summary };
  }

  insertHops(hops: readonly HopRecord[], receivedAt: number): Promise<InsertResult> {
    try {
      this.#open();
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      this.#queue.push({ hops, receivedAt, resolve, reject });
      if (!this.#commitScheduled) {
        this.#commitScheduled = true;
        // After the I/O callbacks of this turn: every request parsed meanwhile joins this commit.
        setImmediate(this.#commitQueue);
      }
    });
  }

  readonly #commitQueue = (): void => {
    this.#commitScheduled = false;
    while (this.#queue.length > 0) {
      let n = 0;
      let hops = 0;
      while (n < this.#queue.length && (n === 0 || hops + this.#queue[n].hops.length <= GROUP_COMMIT_MAX_HOPS)) {
        hops += this.#queue[n].hops.length;
        n++;
      }
      this.#commitGroup(this.#queue.splice(0, n));
    }
  };

  /** Write queued batches in one transaction, each in a savepoint; settle each caller after the commit. */
  #commitGroup(group: readonly QueuedWrite[]): void {
    const outcomes: (InsertResult | Error)[] = [];
    const failAll = (err: unknown) => {
      const e = writeError(err);
      for (const w of group) w.reject(e);
    };
    let db: DatabaseSync;
    try {
      db = this.#open();
      db.exec('BEGIN IMMEDIATE');
    } catch (err) {
      failAll(err);
      return;
    }
    for (const w of group) {
      db.exec('SAVEPOINT hoptrace_write');
      try {
        outcomes.push(this.#writeHops(w.hops, w.receivedAt));
        db.exec('RELEASE hoptrace_write');
      } catch (err) {
        if (!db.isTransaction) {
          // SQLite rolled the whole transaction back (I/O error, disk full): nothing of the group is written.
          failAll(err);
          return;
        }
        db.exec('ROLLBACK TO hoptrace_write');
        db.exec('RELEASE hoptrace_write');
        outcomes.push(writeError(err));
      }
    }
    try {
      db.exec('COMMIT');
    } catch (err) {
      try {
        db.exec('ROLLBACK');
      } catch {
        // already rolled back
      }
      failAll(err);
      return;
    }
    group.forEach((w, i) => {
      const outcome = outcomes[i];
      if (outcome instanceof Error) {
        w.reject(outcome);
        return;
      }
      // Counters move only once the transaction has committed.
      this.#hopCount += outcome.accepted - outcome.duplicates;
      this.#chainCount += outcome.changes.filter((c) => c.type === 'new').length;
      w.resolve(outcome);
    });
  }

  /** One caller's batch, inside the group's transaction: insert, then summarize or mark dirty. */
  #writeHops(hops: readonly HopRecord[], receivedAt: number): InsertResult {
    let duplicates = 0;
    const touched = new Set<string>();
    // Each message's stored hops before this write: its topology contributions are replaced, not added to.
    const messages = new Map<string, { before: TopologyHop[]; added: TopologyHop[] }>();
    for (const hop of hops) if (!messages.has(hop.messageId)) messages.set(hop.messageId, { before: [], added: [] });
    // One statement for the batch: far cheaper than one lookup per message.
    const stored = this.#batchTopologyHops.all(JSON.stringify([...messages.keys()])) as unknown as (TopologyHop & { message_id: string })[];
    for (const h of stored) messages.get(h.message_id)!.before.push(h);
    for (const hop of hops) {
      const json = canonicalJson(hop);
      const r = this.#insertHop.run(
        dedupeKey(json),
        hop.correlationId,
        hop.messageId,
        hop.traceId,
        hop.service,
        hop.kind,
        hop.ts,
        receivedAt,
        hop.exchange ?? null,
        hop.routingKey ?? null,
        hop.queue ?? null,
        json,
      );
      if (r.changes === 0) duplicates++;
      else {
        touched.add(hop.correlationId);
        messages.get(hop.messageId)!.added.push(topologyHop(hop));
      }
    }
    const tally = new EdgeTally();
    for (const { before, added } of messages.values()) {
      if (added.length === 0) continue;
      tally.addContributions(messageContributions(before), -1, true);
      tally.addContributions(messageContributions([...before, ...added]), 1, true);
    }
    this.#applyToBuckets(tally);
    const changes: ChainChange[] = [];
    if (this.#deferred) {
      for (const correlationId of touched) this.#markDirty.run(correlationId, receivedAt);
      if (touched.size > 0) this.#dirty = true;
    } else {
      for (const correlationId of touched) {
        const change = this.#refreshChain(correlationId, receivedAt, receivedAt);
        if (change) changes.push(change);
      }
    }
    return { accepted: hops.length, duplicates, changes };
  }

  /** Add bucketed changes to topology_buckets, deleting rows left empty. */
  #applyToBuckets(tally: EdgeTally): void {
    for (const e of tally.changed()) {
      const row = this.#bucketRow.get(e.bucket, e.from, e.to) as { count: number; errors: number; waits: string | null } | undefined;
      const count = (row?.count ?? 0) + e.count;
      if (count <= 0) {
        this.#deleteBucket.run(e.bucket, e.from, e.to);
        continue;
      }
      const waits = e.waits;
      addEncodedWaits(waits, row?.waits ?? null);
      this.#upsertBucket.run(e.bucket, e.from, e.to, count, (row?.errors ?? 0) + e.errors, encodeWaits(waits));
    }
  }

  /**
   * Rebuild every dirty chain's summary, in transactions of {@link FLUSH_CHUNK}
   * chains. A chain whose rebuild throws is left with its old summary (its
   * next hop marks it again) and the first such error is returned, so one bad
   * chain never blocks the others or the reads.
   */
  #flushDirty(now: number): { changes: ChainChange[]; error?: Error } {
    const changes: ChainChange[] = [];
    let error: Error | undefined;
    while (this.#dirty) {
      const done = this.#transaction(() => {
        const rows = this.#dirtyBatch.all(FLUSH_CHUNK) as unknown as { correlation_id: string; updated_at: number }[];
        const out: ChainChange[] = [];
        for (const { correlation_id, updated_at } of rows) {
          try {
            const change = this.#refreshChain(correlation_id, now, updated_at);
            if (change) out.push(change);
          } catch (err) {
            error ??= new StoreError(`cannot summarize chain "${correlation_id}": ${(err as Error).message}`, { cause: err });
          }
          this.#clearDirty.run(correlation_id);
        }
        return { out, empty: rows.length < FLUSH_CHUNK };
      });
      this.#chainCount += done.out.filter((c) => c.type === 'new').length;
      for (const c of done.out) changes.push(c);
      if (done.empty) this.#dirty = false;
    }
    return { changes, error };
  }

  /** Before a read of summaries: bring them up to date, keeping the changes for the next `flushSummaries()`. */
  #freshSummaries(): void {
    if (!this.#dirty) return;
    for (const change of this.#flushDirty(Date.now()).changes) this.#keepChange(change);
  }

  #keepChange(change: ChainChange): void {
    const id = change.chain.correlationId;
    const before = this.#pendingChanges.get(id);
    if (!before && this.#pendingChanges.size >= MAX_PENDING_CHANGES) return;
    this.#pendingChanges.set(id, before?.type === 'new' ? { type: 'new', chain: change.chain } : change);
  }

  /**
   * Rebuild the summaries of chains written since their last rebuild, and
   * return what changed since the last call (also changes made by reads
   * that brought summaries up to date in between), once per chain.
   * @throws StoreError when a chain could not be summarized (the others are)
   */
  async flushSummaries(now: number): Promise<ChainChange[]> {
    this.#open();
    const { changes, error } = this.#flushDirty(now);
    for (const change of changes) this.#keepChange(change);
    const out = [...this.#pendingChanges.values()];
    this.#pendingChanges.clear();
    if (error) throw error;
    return out;
  }

  async chainHops(correlationId: string): Promise<StoredHop[]> {
    this.#open();
    return this.#readChainHops(correlationId);
  }

  async chainSummary(correlationId: string): Promise<ChainSummary | undefined> {
    this.#open();
    this.#freshSummaries();
    const row = this.#chainRow.get(correlationId) as ChainRow | undefined;
    return row ? (JSON.parse(row.summary) as ChainSummary) : undefined;
  }

  async listChains(query: ChainQuery): Promise<ChainList> {
    this.#open();
    this.#freshSummaries();
    // Each filter on a chain's lists is a set of chain_tags values, any of which matches.
    const tagFilters: string[][] = [];
    if (query.status && query.status.length > 0) {
      tagFilters.push([...new Set(query.status)].map((s) => (s === REDELIVERED_FILTER ? TAG_REDELIVERED : TAG_STATUS + s)));
    }
    if (query.redelivered === true) tagFilters.push([TAG_REDELIVERED]);
    if (query.service !== undefined) tagFilters.push([TAG_SERVICE + query.service]);
    if (query.exchange !== undefined) tagFilters.push([TAG_EXCHANGE + query.exchange]);
    if (query.routingKey !== undefined) tagFilters.push([TAG_ROUTING_KEY + query.routingKey]);
    if (query.queue !== undefined) tagFilters.push([TAG_QUEUE + query.queue]);
    const driver = this.#driverFilter(tagFilters, query);

    // With a driver: walk that tag's index range newest first (the chains' start order), testing
    // the other filters by primary-key lookups. Without one: walk the chains newest first.
    const t = driver ? 'd' : 'c';
    const where: string[] = [];
    const params: (string | number)[] = [];
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
      params.push(TAG_REDELIVERED);
    }
    if (query.q !== undefined) {
      // Exact or prefix: a range scan on each id's index ('\uffff' sorts after every id character).
      const end = query.q + '\uffff';
      where.push(
        `((c.correlation_id >= ? AND c.correlation_id < ?)
          OR c.correlation_id IN (SELECT correlation_id FROM hops WHERE message_id >= ? AND message_id < ?)
          OR c.correlation_id IN (SELECT correlation_id FROM hops WHERE trace_id >= ? AND trace_id < ?))`,
      );
      params.push(query.q, end, query.q, end, query.q, end);
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
    const rows = this.#prepared(sql).all(...params) as unknown as {
      correlation_id: string;
      start_ts: number;
      summary: string;
    }[];
    const page = rows.slice(0, query.limit);
    const last = page.at(-1);
    return {
      items: page.map((r) => JSON.parse(r.summary) as ChainSummary),
      nextCursor: rows.length > query.limit && last ? encodeCursor(last.start_ts, last.correlation_id) : null,
    };
  }

  /**
   * The tag filter to walk: one of a single value (a chain appears once in its
   * range, in list order), the one with the fewest chains in the time window
   * when there are several. Undefined when no filter has a single value.
   */
  #driverFilter(tagFilters: string[][], query: ChainQuery): string[] | undefined {
    const single = tagFilters.filter((tags) => tags.length === 1);
    if (single.length <= 1) return single[0];
    const count = this.#prepared(
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

  async messageChains(messageId: string): Promise<string[]> {
    this.#open();
    const rows = this.#prepared('SELECT DISTINCT correlation_id FROM hops WHERE message_id = ?').all(messageId) as {
      correlation_id: string;
    }[];
    return rows.map((r) => r.correlation_id);
  }

  /**
   * Sums the buckets the window covers whole; the partial buckets at its two
   * ends are computed from the hops, counting the contributions (see
   * topology-buckets.ts) whose time falls inside the window, so any window
   * gets the same counts as summing per message would.
   */
  async topology(from: number, to: number): Promise<Topology> {
    this.#open();
    const tally = new EdgeTally();
    // Whole buckets: [lo, hi). Edges: [from, lo) and [hi, to].
    const lo = Math.ceil(from / TOPOLOGY_BUCKET_MS) * TOPOLOGY_BUCKET_MS;
    const hi = Math.floor(to / TOPOLOGY_BUCKET_MS) * TOPOLOGY_BUCKET_MS;
    if (lo < hi) {
      // Summed in SQLite; an edge's histograms come back as one JSON array of them, parsed once.
      const rows = this.#prepared(
        `SELECT from_node, to_node, sum(count) AS count, sum(errors) AS errors, '[' || group_concat(waits) || ']' AS waits,
           min(bucket) AS first, max(bucket) AS last
         FROM topology_buckets WHERE bucket >= ? AND bucket < ? GROUP BY from_node, to_node`,
      ).all(lo, hi) as { from_node: string; to_node: string; count: number; errors: number; waits: string | null; first: number; last: number }[];
      for (const r of rows) tally.addRow(r.from_node, r.to_node, r.count, r.errors, r.waits, { first: r.first, last: r.last });
      this.#tallyFromHops(tally, from, lo, false);
      this.#tallyFromHops(tally, hi, to, true);
    } else {
      this.#tallyFromHops(tally, from, to, true);
    }
    return tally.toTopology(from, to);
  }

  /** Add the contributions timed in [start, end) (or [start, end]) from the hops of the messages sent or received then. */
  #tallyFromHops(tally: EdgeTally, start: number, end: number, endInclusive: boolean): void {
    if (end < start || (end === start && !endInclusive)) return;
    const ids = this.#prepared(
      `SELECT DISTINCT message_id FROM hops WHERE ts >= ? AND ts ${endInclusive ? '<=' : '<'} ? AND kind IN ('send', 'receive')`,
    ).all(start, end) as { message_id: string }[];
    const inWindow = (t: number) => t >= start && (endInclusive ? t <= end : t < end);
    for (const { message_id } of ids) {
      const hops = this.#messageTopologyHops.all(message_id) as unknown as TopologyHop[];
      tally.addContributions(messageContributions(hops).filter((c) => inWindow(c.ts)), 1, false);
    }
  }

  async refreshUnsettled(now: number, limit: number): Promise<ChainChange[]> {
    this.#open();
    this.#freshSummaries();
    const ids = this.#prepared(
      'SELECT correlation_id FROM chains WHERE settled = 0 ORDER BY checked_at LIMIT ?',
    ).all(limit) as { correlation_id: string }[];
    if (ids.length === 0) return [];
    return this.#transaction(() => {
      const changes: ChainChange[] = [];
      for (const { correlation_id } of ids) {
        const change = this.#refreshChain(correlation_id, now, undefined);
        if (change) changes.push(change);
      }
      return changes;
    });
  }

  /** Delete whole chains (hops, summary, tags, topology contributions), in one transaction. */
  #deleteChains(ids: readonly string[]): RetentionResult {
    const delHops = this.#prepared('DELETE FROM hops WHERE correlation_id = ?');
    const delChain = this.#prepared('DELETE FROM chains WHERE correlation_id = ?');
    const delDirty = this.#clearDirty;
    const chainMessages = this.#prepared('SELECT DISTINCT message_id FROM hops WHERE correlation_id = ?');
    const result = this.#transaction(() => {
      let deletedHops = 0;
      let deletedChains = 0;
      // The deleted hops' topology contributions go with them: each message's before and after.
      const tally = new EdgeTally();
      for (const id of ids) {
        for (const { message_id } of chainMessages.all(id) as { message_id: string }[]) {
          const hops = this.#messageTopologyHops.all(message_id) as unknown as (TopologyHop & { correlation_id: string })[];
          tally.addContributions(messageContributions(hops), -1, true);
          const kept = hops.filter((h) => h.correlation_id !== id);
          if (kept.length > 0) tally.addContributions(messageContributions(kept), 1, true);
        }
        deletedHops += Number(delHops.run(id).changes);
        deletedChains += Number(delChain.run(id).changes);
        this.#deleteTags.run(id);
        delDirty.run(id);
      }
      this.#applyToBuckets(tally);
      return { deletedHops, deletedChains };
    });
    this.#hopCount -= result.deletedHops;
    this.#chainCount -= result.deletedChains;
    return result;
  }

  #usedBytes(): number {
    const db = this.#open();
    const pages = (db.prepare('PRAGMA page_count').get() as { page_count: number }).page_count;
    const free = (db.prepare('PRAGMA freelist_count').get() as { freelist_count: number }).freelist_count;
    const size = (db.prepare('PRAGMA page_size').get() as { page_size: number }).page_size;
    return (pages - free) * size;
  }

  async applyRetention(policy: RetentionPolicy, now: number): Promise<RetentionResult> {
    this.#open();
    this.#freshSummaries();
    const total: RetentionResult = { deletedChains: 0, deletedHops: 0 };
    const add = (r: RetentionResult) => {
      total.deletedChains += r.deletedChains;
      total.deletedHops += r.deletedHops;
    };
    // In chunks, so a large purge never holds the write lock for long.
    const CHUNK = 500;
    if (policy.maxAgeMs !== undefined) {
      const old = this.#prepared('SELECT correlation_id FROM chains WHERE updated_at < ? ORDER BY updated_at LIMIT ?');
      for (;;) {
        // A chain that got a hop since the last chunk is no longer idle: its summary says so first.
        this.#freshSummaries();
        const ids = (old.all(now - policy.maxAgeMs, CHUNK) as { correlation_id: string }[]).map((r) => r.correlation_id);
        if (ids.length === 0) break;
        add(this.#deleteChains(ids));
        await new Promise((r) => setImmediate(r));
        if (this.#closed) return total;
      }
    }
    if (policy.maxBytes !== undefined) {
      const oldest = this.#prepared('SELECT correlation_id FROM chains ORDER BY updated_at LIMIT ?');
      while (this.#usedBytes() > policy.maxBytes && this.#chainCount > 0) {
        // A tenth of the chains at a time (at least one chunk), oldest first.
        const n = Math.max(CHUNK, Math.ceil(this.#chainCount / 10));
        const ids = (oldest.all(n) as { correlation_id: string }[]).map((r) => r.correlation_id);
        if (ids.length === 0) break;
        add(this.#deleteChains(ids));
        await new Promise((r) => setImmediate(r));
        if (this.#closed) return total;
      }
    }
    return total;
  }

  async stats(): Promise<StoreStats> {
    this.#open();
    this.#freshSummaries();
    return { hops: this.#hopCount, chains: this.#chainCount, bytes: this.#usedBytes() };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    // Finish pending work: queued writes are committed, dirty chains summarized.
    this.#commitQueue();
    try {
      this.#flushDirty(Date.now());
    } catch {
      // they stay marked dirty; the next open rebuilds them
    }
    this.#closed = true;
    try {
      this.#db.exec('PRAGMA optimize');
    } catch {
      // best effort
    }
    this.#db.close();
  }
}

/** Open (creating and migrating when needed) a SQLite store. */
export function openSqliteStore(options: SqliteStoreOptions): SqliteStore {
  return new SqliteStore(options);
}
