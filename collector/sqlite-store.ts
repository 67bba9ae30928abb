/**
 * The {@link Store} on Node's built-in `node:sqlite`: one file, WAL, schema
 * from `migrations.ts`. The jobs live in modules of their own, behind this
 * class and the Store interface:
 *
 * - `sqlite-commit.ts`: group commit of lean record rows (the write path);
 * - `sqlite-summaries.ts`: chain summaries, tags, trace ids and topology
 *   contributions, kept from committed records off the write path;
 * - `sqlite-chain-list.ts`: the chain-list query;
 * - `sqlite-topology.ts`: per-minute topology buckets and their query;
 * - `sqlite-failures.ts`: failure groups' per-minute counts and descriptions;
 * - `sqlite-retention.ts`: deleting old chains;
 * - `sqlite-records.ts`: reading records back as hops.
 *
 * Durability: `synchronous=FULL` by default, so a `202` means the hops are on
 * disk and survive a power cut, not only a process crash. In WAL mode that is
 * one fsync per transaction.
 */
import type { ChainList, ChainSummary, StoredHop, Topology } from './api-types.ts';
import { DEFAULT_ENGINE_OPTIONS } from './chain-engine.ts';
import type { EngineSettings } from './chain-summary.ts';
import type { IngestRecord } from './record-identity.ts';
import type { FailureGroupInfo } from './failure-buckets.ts';
import { listChains } from './sqlite-chain-list.ts';
import { failureCounts, failureGroups } from './sqlite-failures.ts';
import { SqliteCommit } from './sqlite-commit.ts';
import { SqliteDb } from './sqlite-db.ts';
import { SqliteRecords } from './sqlite-records.ts';
import { SqliteRetention } from './sqlite-retention.ts';
import { SqliteStrings } from './sqlite-strings.ts';
import { SqliteSummaries } from './sqlite-summaries.ts';
import { SqliteTopology } from './sqlite-topology.ts';
import { SqliteWriter } from './sqlite-writer.ts';
import type {
  ChainChange,
  ChainQuery,
  FailureBin,
  FailureCountQuery,
  InsertResult,
  RetentionPolicy,
  RetentionResult,
  Store,
  StoreStats,
} from './store.ts';

export interface SqliteStoreOptions {
  /** Path of the database file; created with its directory when missing. `:memory:` for a throwaway store. */
  path: string;
  /**
   * The chain engine's limits that summaries are judged by (lost/stuck after, redelivery loop).
   * @default DEFAULT_ENGINE_OPTIONS
   */
  engine?: EngineSettings;
  /**
   * `full`: a committed transaction survives a power cut. `normal`: it
   * survives a crash of the process, not of the machine (faster; fine for
   * `hoptrace import`, which can be re-run).
   * @default 'full'
   */
  durability?: 'full' | 'normal';
  /** How long a write waits for another process holding the lock (e.g. an import running beside the collector). @default 10_000 */
  busyTimeoutMs?: number;
}

export class SqliteStore implements Store {
  readonly path: string;
  readonly #db: SqliteDb;
  readonly #writer: SqliteWriter;
  readonly #strings: SqliteStrings;
  readonly #records: SqliteRecords;
  readonly #commit: SqliteCommit;
  readonly #summaries: SqliteSummaries;
  readonly #topology: SqliteTopology;
  readonly #retention: SqliteRetention;
  #recordCount: number;
  #closing: Promise<void> | undefined;

  constructor(options: SqliteStoreOptions) {
    const dbOptions = {
      path: options.path,
      durability: options.durability ?? 'full',
      busyTimeoutMs: options.busyTimeoutMs ?? 10_000,
    } as const;
    // This connection migrates the schema (here, before anything else runs) and then only reads;
    // the writer thread holds the one connection that writes.
    this.#db = new SqliteDb(dbOptions);
    this.path = this.#db.path;
    this.#writer = new SqliteWriter({ ...dbOptions, path: this.path });
    this.#strings = new SqliteStrings(this.#db);
    this.#records = new SqliteRecords(this.#db, this.#strings);
    this.#topology = new SqliteTopology(this.#db, this.#records);
    this.#summaries = new SqliteSummaries(this.#db, this.#records, this.#writer, options.engine ?? DEFAULT_ENGINE_OPTIONS);
    this.#commit = new SqliteCommit(this.#db, this.#strings, this.#writer, (hops, records) => {
      this.#recordCount += records;
      this.#summaries.added(hops);
    });
    this.#retention = new SqliteRetention(this.#db, this.#records, this.#summaries, this.#writer);
    this.#recordCount = this.#countRecords();
  }

  #countRecords(): number {
    return (this.#db.db.prepare('SELECT count(*) AS n FROM records').get() as { n: number }).n;
  }

  insertHops(records: readonly IngestRecord[], receivedAt: number): Promise<InsertResult> {
    return this.#commit.insert(records, receivedAt);
  }

  flushSummaries(now: number): Promise<ChainChange[]> {
    return this.#summaries.flush(now);
  }

  async chainHops(correlationId: string): Promise<StoredHop[]> {
    return this.#records.chainHops(correlationId);
  }

  chainSummary(correlationId: string): Promise<ChainSummary | undefined> {
    return this.#summaries.summary(correlationId);
  }

  async listChains(query: ChainQuery): Promise<ChainList> {
    this.#db.open();
    await this.#summaries.fresh();
    return listChains(this.#db, query);
  }

  async messageChains(messageId: string): Promise<string[]> {
    return this.#records.messageChains(messageId);
  }

  async topology(from: number, to: number): Promise<Topology> {
    this.#db.open();
    await this.#summaries.fresh();
    return this.#topology.topology(from, to);
  }

  async failureCounts(query: FailureCountQuery): Promise<FailureBin[]> {
    this.#db.open();
    await this.#summaries.fresh();
    return failureCounts(this.#db, query);
  }

  async failureGroups(fingerprints: readonly string[]): Promise<FailureGroupInfo[]> {
    this.#db.open();
    await this.#summaries.fresh();
    return failureGroups(this.#db, fingerprints);
  }

  refreshUnsettled(now: number, limit: number): Promise<ChainChange[]> {
    return this.#summaries.refreshUnsettled(now, limit);
  }

  async applyRetention(policy: RetentionPolicy, now: number): Promise<RetentionResult> {
    const result = await this.#retention.apply(policy, now);
    if (result.deletedChains > 0) this.#recordCount = this.#countRecords();
    return result;
  }

  async stats(): Promise<StoreStats> {
    this.#db.open();
    await this.#summaries.fresh();
    return { hops: this.#recordCount, chains: this.#summaries.chainCount, bytes: this.#db.usedBytes() };
  }

  async close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closing = (async () => {
      // Finish pending work: queued writes are committed, summaries brought up to date.
      await this.#commit.drain();
      try {
        await this.#summaries.fresh();
      } catch {
        // the chains stay unflushed; the next open re-flushes them from their records
      }
      await this.#writer.close();
      this.#db.close();
    })();
    return this.#closing;
  }
}
