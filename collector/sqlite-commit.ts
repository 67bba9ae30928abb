/**
 * The store's write path: records in, committed rows out.
 *
 * A row is one record (a version-1 hop or a version-2 record): its ids
 * packed (`packId`), its dedupe key (`dedupeKey`), kind, time, and the rest
 * as a compact body (`encodeRecord`). No JSON text, no hash of it, no
 * summary work: the chains a write touched are handed to the summaries job
 * after the commit.
 *
 * Group commit: the writes asked for in one turn of the event loop (the
 * requests whose bodies arrived while the previous commit held the thread)
 * share one transaction and one fsync, each inside a savepoint of its own, so
 * one failing write is rolled back alone and every caller still hears only
 * after the commit.
 */
import type { StatementSync } from 'node:sqlite';
import type { StoredHop } from './api-types.ts';
import { summaryHop } from './chain-summary.ts';
import { encodeRecord, packId } from './record-codec.ts';
import { dedupeKey, KIND_CODE, recordHops, type IngestRecord } from './record-identity.ts';
import { writeError, type SqliteDb } from './sqlite-db.ts';
import type { SqliteStrings } from './sqlite-strings.ts';
import type { InsertResult } from './store.ts';

/** Records one group commit writes at most; the rest of the queue goes into the next transaction. */
const GROUP_COMMIT_MAX_RECORDS = 20_000;

/** The hops of the records a commit added, by chain, as summary hops: what the summaries job takes from a write. */
export type CommittedHops = Map<string, StoredHop[]>;

interface QueuedWrite {
  records: readonly IngestRecord[];
  receivedAt: number;
  resolve: (result: InsertResult) => void;
  reject: (err: unknown) => void;
}

/** A stored hop's id: its record's row id and its place among the hops the record stands for. */
export const hopId = (rowId: number, k: number): number => rowId * 8 + k;

export class SqliteCommit {
  readonly #db: SqliteDb;
  readonly #strings: SqliteStrings;
  readonly #insert: StatementSync;
  readonly #onCommitted: (hops: CommittedHops, records: number) => void;
  #queue: QueuedWrite[] = [];
  #scheduled = false;

  /** @param onCommitted called after each commit with the new hops and how many records were new (duplicates are in neither) */
  constructor(db: SqliteDb, strings: SqliteStrings, onCommitted: (hops: CommittedHops, records: number) => void) {
    this.#db = db;
    this.#strings = strings;
    this.#onCommitted = onCommitted;
    this.#insert = db.db.prepare(
      `INSERT INTO records (message_id, correlation_id, dkey, kind, ts, received_at, body) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (message_id, dkey) DO NOTHING`,
    );
  }

  /** Queue a write; resolves after the transaction holding it committed. */
  insert(records: readonly IngestRecord[], receivedAt: number): Promise<InsertResult> {
    try {
      this.#db.open();
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      this.#queue.push({ records, receivedAt, resolve, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        // After the I/O callbacks of this turn: every request parsed meanwhile joins this commit.
        setImmediate(this.drain);
      }
    });
  }

  /** Commit everything queued now (also on close). */
  readonly drain = (): void => {
    this.#scheduled = false;
    while (this.#queue.length > 0) {
      let n = 0;
      let size = 0;
      while (n < this.#queue.length && (n === 0 || size + this.#queue[n].records.length <= GROUP_COMMIT_MAX_RECORDS)) {
        size += this.#queue[n].records.length;
        n++;
      }
      this.#commitGroup(this.#queue.splice(0, n));
    }
  };

  /** Write queued batches in one transaction, each in a savepoint; settle each caller after the commit. */
  #commitGroup(group: readonly QueuedWrite[]): void {
    const outcomes: ({ result: InsertResult; hops: [string, StoredHop][] } | Error)[] = [];
    const strings = this.#strings;
    const failAll = (err: unknown) => {
      strings.rolledBack();
      const e = writeError(err);
      for (const w of group) w.reject(e);
    };
    let db;
    try {
      db = this.#db.open();
      db.exec('BEGIN IMMEDIATE');
    } catch (err) {
      failAll(err);
      return;
    }
    for (const w of group) {
      db.exec('SAVEPOINT hoptrace_write');
      const mark = strings.mark();
      try {
        outcomes.push(this.#write(w.records, w.receivedAt));
        db.exec('RELEASE hoptrace_write');
      } catch (err) {
        if (!db.isTransaction) {
          // SQLite rolled the whole transaction back (I/O error, disk full): nothing of the group is written.
          failAll(err);
          return;
        }
        db.exec('ROLLBACK TO hoptrace_write');
        db.exec('RELEASE hoptrace_write');
        strings.rolledBackTo(mark);
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
    strings.committed();
    const committed: CommittedHops = new Map();
    let added = 0;
    for (const outcome of outcomes) {
      if (outcome instanceof Error) continue;
      added += outcome.result.accepted - outcome.result.duplicates;
      for (const [chain, hop] of outcome.hops) {
        const list = committed.get(chain);
        if (list === undefined) committed.set(chain, [hop]);
        else list.push(hop);
      }
    }
    if (added > 0) this.#onCommitted(committed, added);
    group.forEach((w, i) => {
      const outcome = outcomes[i];
      if (outcome instanceof Error) w.reject(outcome);
      else w.resolve(outcome.result);
    });
  }

  /** One caller's batch, inside the group's transaction. */
  #write(records: readonly IngestRecord[], receivedAt: number): { result: InsertResult; hops: [string, StoredHop][] } {
    let duplicates = 0;
    const hops: [string, StoredHop][] = [];
    for (const r of records) {
      const correlationId = r.correlationId ?? r.messageId;
      const row = this.#insert.run(
        packId(r.messageId),
        packId(correlationId),
        dedupeKey(r),
        KIND_CODE[r.kind],
        r.ts,
        receivedAt,
        encodeRecord(r as unknown as Record<string, unknown>, this.#strings),
      );
      if (row.changes === 0) {
        duplicates++;
        continue;
      }
      const rowId = Number(row.lastInsertRowid);
      const expanded = recordHops(r);
      for (let k = 0; k < expanded.length; k++) {
        hops.push([correlationId, summaryHop(expanded[k], hopId(rowId, k), receivedAt)]);
      }
    }
    return { result: { accepted: records.length, duplicates }, hops };
  }
}
