/**
 * The {@link Store} on PostgreSQL, shared by several stateless collectors.
 * The jobs live in modules of their own, behind this class:
 *
 * - `pg-commit.ts`: inserts (each call its own committed statement);
 * - `pg-summaries.ts`: dirty marks claimed `FOR UPDATE SKIP LOCKED`, chain
 *   summaries, tags, trace ids, topology contributions, `NOTIFY`;
 * - `pg-coordinator.ts`: `LISTEN` and the sweep lock (one collector runs the
 *   sweep and retention; another takes over when it dies);
 * - `pg-chain-list.ts`, `pg-topology.ts`, `pg-records.ts`: reads;
 * - `pg-retention.ts` and `pg-partitions.ts`: partitions by day of arrival,
 *   dropped whole;
 * - `pg-migrations.ts`: the schema, migrated under an advisory lock.
 *
 * Durability is PostgreSQL's: with its defaults (`synchronous_commit = on`,
 * `fsync = on`), a `202` means the records are in the WAL on disk.
 */
import { randomUUID } from 'node:crypto';
import { StoreError } from './errors.ts';
import type { ChainList, ChainSummary, StoredHop, Topology } from './api-types.ts';
import { DEFAULT_ENGINE_OPTIONS } from './chain-engine.ts';
import type { EngineSettings } from './chain-summary.ts';
import { listChainsPg } from './pg-chain-list.ts';
import { PgCommit, type PgInsertMethod } from './pg-commit.ts';
import { PgCoordinator } from './pg-coordinator.ts';
import { redactUrl } from '../src/contract/url.ts';
import { parsePgUrl, PgDb } from './pg-db.ts';
import { migratePg } from './pg-migrations.ts';
import { DEFAULT_PARTITION_MS, PgPartitions } from './pg-partitions.ts';
import { PgRecords } from './pg-records.ts';
import { PgRetention } from './pg-retention.ts';
import { PgStrings } from './pg-strings.ts';
import { PgSummaries, type ChainNotice } from './pg-summaries.ts';
import { PgTopology } from './pg-topology.ts';
import type { IngestRecord } from './record-identity.ts';
import type { ChainChange, ChainQuery, FailureBin, FailureCountQuery, InsertResult, RetentionPolicy, RetentionResult, Store, StoreStats } from './store.ts';
import type { FailureGroupInfo } from './failure-buckets.ts';
import { failureCountsPg, failureGroupsPg } from './pg-failures.ts';

export interface PgStoreOptions {
  /**
   * `postgres://user:password@host:5432/database`, optionally `?schema=name`
   * (the tables' schema, created when missing).
   * @default schema 'hoptrace'
   * @example 'postgres://hoptrace@db.internal:5432/observability?schema=hoptrace'
   */
  url: string;
  /** The chain engine's limits that summaries are judged by. @default DEFAULT_ENGINE_OPTIONS */
  engine?: EngineSettings;
  /** Pooled connections at most (one more is kept for LISTEN and the sweep lock). @default 10 */
  poolSize?: number;
  /** How inserts send rows (`pg-commit.ts`); the bench measures all three. @default 'unnest' */
  insertMethod?: PgInsertMethod;
  /**
   * Width of a time partition when this call creates the schema (an existing schema keeps its own).
   * Retention drops whole partitions: records stay up to one width longer than the retention age.
   * Also `?partition_ms=` in the URL.
   * @default 86_400_000 (one day)
   */
  partitionMs?: number;
  /** Names this collector's sessions in pg_stat_activity. @default `hoptrace collector <pid>` */
  applicationName?: string;
}

export class PgStore implements Store {
  /** The URL, password masked. */
  readonly url: string;
  readonly #db: PgDb;
  readonly #coordinator: PgCoordinator;
  readonly #commit: PgCommit;
  readonly #records: PgRecords;
  readonly #summaries: PgSummaries;
  readonly #topology: PgTopology;
  readonly #retention: PgRetention;
  /** Chains other collectors announced, for the next `flushSummaries`. */
  readonly #heard = new Map<string, 'new' | 'changed'>();
  readonly #inFlight = new Set<Promise<unknown>>();

  private constructor(parts: {
    url: string;
    db: PgDb;
    coordinator: PgCoordinator;
    commit: PgCommit;
    records: PgRecords;
    summaries: PgSummaries;
    topology: PgTopology;
    retention: PgRetention;
  }) {
    this.url = parts.url;
    this.#db = parts.db;
    this.#coordinator = parts.coordinator;
    this.#commit = parts.commit;
    this.#records = parts.records;
    this.#summaries = parts.summaries;
    this.#topology = parts.topology;
    this.#retention = parts.retention;
  }

  /** Connect, migrate the schema (waiting for another collector migrating it), and start listening. */
  static async open(options: PgStoreOptions): Promise<PgStore> {
    const target = parsePgUrl(options.url);
    const url = redactUrl(options.url);
    const applicationName = options.applicationName ?? `hoptrace collector ${process.pid}`;
    const db = new PgDb({ target, poolSize: options.poolSize ?? 10, applicationName });
    const storeId = randomUUID();
    let heard: ((notice: ChainNotice) => void) | undefined;
    const coordinator = new PgCoordinator(target, applicationName, (notice) => heard?.(notice));
    try {
      const client = await db.pool.connect();
      try {
        await migratePg(client, target.schema, undefined, applicationName);
      } finally {
        client.release();
      }
      const partitions = await PgPartitions.open(db, options.partitionMs ?? target.partitionMs ?? DEFAULT_PARTITION_MS);
      const strings = new PgStrings(db);
      await strings.load();
      const records = new PgRecords(db, strings);
      const summaries = new PgSummaries(db, records, partitions, options.engine ?? DEFAULT_ENGINE_OPTIONS, storeId);
      await coordinator.start();
      const store = new PgStore({
        url,
        db,
        coordinator,
        commit: new PgCommit(db, strings, partitions, options.insertMethod ?? 'unnest'),
        records,
        summaries,
        topology: new PgTopology(db, records),
        retention: new PgRetention(db, partitions, summaries),
      });
      heard = (notice) => store.#hear(notice);
      return store;
    } catch (cause) {
      await coordinator.close();
      await db.close().catch(() => {});
      if (cause instanceof StoreError) throw cause;
      throw new StoreError(`cannot open the hoptrace store at ${url}: ${(cause as Error).message}`, { cause });
    }
  }

  #hear(notice: ChainNotice): void {
    if (notice.s === this.#summaries.storeId || notice.d !== this.#db.schema) return;
    for (const id of notice.n) this.#heard.set(id, 'new');
    for (const id of notice.c) if (this.#heard.get(id) !== 'new') this.#heard.set(id, 'changed');
  }

  /** Track an operation so `close()` waits for it. */
  #track<T>(p: Promise<T>): Promise<T> {
    this.#inFlight.add(p);
    const done = () => this.#inFlight.delete(p);
    p.then(done, done);
    return p;
  }

  insertHops(records: readonly IngestRecord[], receivedAt: number): Promise<InsertResult> {
    return this.#track(this.#commit.insert(records, receivedAt));
  }

  /** Own flush changes, plus the changes other collectors announced since the last call. */
  async flushSummaries(now: number): Promise<ChainChange[]> {
    const own = await this.#track(this.#summaries.flush(now));
    if (this.#heard.size === 0) return own;
    const heard = new Map(this.#heard);
    this.#heard.clear();
    for (const c of own) heard.delete(c.chain.correlationId);
    const rows = await this.#db.query<{ summary: string }>('SELECT summary FROM chains WHERE correlation_id = ANY($1::text[])', [[...heard.keys()]]);
    const out = [...own];
    for (const r of rows) {
      const chain = JSON.parse(r.summary) as ChainSummary;
      out.push({ type: heard.get(chain.correlationId) ?? 'changed', chain });
    }
    return out;
  }

  async chainHops(correlationId: string): Promise<StoredHop[]> {
    this.#db.open();
    return this.#records.chainHops(correlationId);
  }

  async chainSummary(correlationId: string): Promise<ChainSummary | undefined> {
    await this.#summaries.fresh();
    const rows = await this.#db.query<{ summary: string }>('SELECT summary FROM chains WHERE correlation_id = $1', [correlationId]);
    return rows[0] ? (JSON.parse(rows[0].summary) as ChainSummary) : undefined;
  }

  async listChains(query: ChainQuery): Promise<ChainList> {
    this.#db.open();
    return listChainsPg(this.#db, query, this.#summaries.fresh());
  }

  async messageChains(messageId: string): Promise<string[]> {
    this.#db.open();
    return this.#records.messageChains(messageId);
  }

  async failureCounts(query: FailureCountQuery): Promise<FailureBin[]> {
    await this.#summaries.fresh();
    return failureCountsPg(this.#db, query);
  }

  async failureGroups(fingerprints: readonly string[]): Promise<FailureGroupInfo[]> {
    await this.#summaries.fresh();
    return failureGroupsPg(this.#db, fingerprints);
  }

  async topology(from: number, to: number): Promise<Topology> {
    await this.#summaries.fresh();
    return this.#topology.topology(from, to);
  }

  /** Runs on the collector holding the sweep lock only; elsewhere it returns no change. */
  async refreshUnsettled(now: number, limit: number): Promise<ChainChange[]> {
    this.#db.open();
    if (!(await this.#coordinator.claimSweep())) return [];
    return this.#track(this.#summaries.refreshUnsettled(now, limit));
  }

  /** Runs on the collector holding the sweep lock only (see pg-retention.ts for what it drops). */
  async applyRetention(policy: RetentionPolicy, now: number): Promise<RetentionResult> {
    this.#db.open();
    if (!(await this.#coordinator.claimSweep())) return { deletedChains: 0, deletedHops: 0 };
    await this.#summaries.fresh();
    return this.#track(this.#retention.apply(policy, now));
  }

  /** Whether this collector runs the sweep and retention now. */
  get sweeper(): boolean {
    return this.#coordinator.sweeper;
  }

  async stats(): Promise<StoreStats> {
    await this.#summaries.fresh();
    const [counts, bytes] = await Promise.all([
      this.#db.query<{ hops: number; chains: number }>(
        `SELECT (SELECT coalesce(sum(n), 0) FROM record_counts)::int8 AS hops, (SELECT coalesce(sum(n), 0) FROM chain_counts)::int8 AS chains`,
      ),
      this.#db.usedBytes(),
    ]);
    return { hops: counts[0].hops, chains: counts[0].chains, bytes };
  }

  /** The records as stored (for `hoptrace migrate` and tests): decoded rows in id order after `afterId`. */
  async recordsAfter(afterId: number, limit: number): Promise<{ id: number; receivedAt: number; record: Record<string, unknown> }[]> {
    const rows = await this.#db.query<{ id: number; message_id: Buffer; correlation_id: Buffer; kind: number; ts: number; received_at: number; body: Buffer }>(
      'SELECT id, message_id, correlation_id, kind, ts, received_at, body FROM records WHERE id > $1 ORDER BY id LIMIT $2',
      [afterId, limit],
    );
    const records = await this.#records.records(rows);
    return rows.map((r, i) => ({ id: r.id, receivedAt: r.received_at, record: records[i] }));
  }

  async close(): Promise<void> {
    if (this.#db.closed) return;
    // Finish what was asked: writes in flight are committed (or fail), then summaries brought up to date.
    await Promise.allSettled([...this.#inFlight]);
    try {
      await this.#summaries.flush(Date.now());
    } catch {
      // the marks stay: the next flush, here or on another collector, takes them
    }
    await this.#coordinator.close();
    await this.#db.close();
  }
}
