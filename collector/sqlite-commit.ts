/**
 * The store's write path: records in, committed rows out.
 *
 * A row is one record (a version-1 hop or a version-2 record): its ids
 * packed, its dedupe key (`dedupeKey`), kind, time, and the rest as a
 * compact body (`encodeRecord`). No JSON text, no hash of it, no summary
 * work: the chains a write touched are handed to the summaries job after
 * the commit.
 *
 * Each write is encoded on the main thread as it arrives (`RowPacker`) and
 * committed by the writer thread (`sqlite-writer.ts`). Group commit: while
 * one group is being committed, the writes that arrive queue up, and the
 * next group takes them all — one transaction and one fsync, each write in a
 * savepoint of its own so a failing one is rolled back alone, and every
 * caller hears only after the commit. The busier the store, the larger the
 * groups.
 */
import type { StoredHop } from './api-types.ts';
import { summaryHop } from './chain-summary.ts';
import { recordHops, type IngestRecord } from './record-identity.ts';
import { RowPacker } from './record-rows.ts';
import type { SqliteDb } from './sqlite-db.ts';
import type { SqliteStrings } from './sqlite-strings.ts';
import type { PackedWrite, SqliteWriter } from './sqlite-writer.ts';
import { StoreError } from './errors.ts';
import type { InsertResult } from './store.ts';

/** Records one group commit writes at most; the rest of the queue goes into the next transaction. */
const GROUP_COMMIT_MAX_RECORDS = 50_000;

/** The hops of the records a commit added, by chain, as summary hops: what the summaries job takes from a write. */
export type CommittedHops = Map<string, StoredHop[]>;

interface QueuedWrite {
  records: readonly IngestRecord[];
  packed: PackedWrite;
  resolve: (result: InsertResult) => void;
  reject: (err: unknown) => void;
}

/**
 * A stored hop's id: its record's row id and its place among the hops the record stands for —
 * 0 for a version-1 record's one hop, 1 to 3 for a version-2 record's (so `id % 8` says whether a
 * hop can have a twin from an open record of the same delivery).
 */
export const hopId = (rowId: number, k: number, v2: boolean): number => rowId * 8 + (v2 ? k + 1 : 0);

/** Whether a stored hop came from a version-2 record (see {@link hopId}). */
export const fromV2 = (id: number): boolean => id % 8 !== 0;

export class SqliteCommit {
  readonly #db: SqliteDb;
  readonly #strings: SqliteStrings;
  readonly #writer: SqliteWriter;
  readonly #packer = new RowPacker();
  readonly #onCommitted: (hops: CommittedHops, records: number) => void;
  #queue: QueuedWrite[] = [];
  #committing: Promise<void> | undefined;

  /** @param onCommitted called after each commit with the new hops and how many records were new (duplicates are in neither) */
  constructor(db: SqliteDb, strings: SqliteStrings, writer: SqliteWriter, onCommitted: (hops: CommittedHops, records: number) => void) {
    this.#db = db;
    this.#strings = strings;
    this.#writer = writer;
    this.#onCommitted = onCommitted;
  }

  /** Encode a write now and queue it; resolves after the transaction holding it committed. */
  insert(records: readonly IngestRecord[], receivedAt: number): Promise<InsertResult> {
    try {
      this.#db.open();
    } catch (err) {
      return Promise.reject(err);
    }
    if (records.length === 0) return Promise.resolve({ accepted: 0, duplicates: 0 });
    try {
      for (const r of records) this.#packer.add(r, this.#strings);
    } catch (err) {
      this.#packer.take();
      return Promise.reject(new StoreError(`a record could not be stored: ${(err as Error).message}`, { cause: err, statusCode: 400 }));
    }
    const { bytes, rows } = this.#packer.take();
    return new Promise((resolve, reject) => {
      this.#queue.push({ records, packed: { bytes, rows, receivedAt }, resolve, reject });
      // After the I/O callbacks of this turn: every request parsed meanwhile joins the group.
      if (this.#committing === undefined) {
        this.#committing = new Promise<void>((done) => setImmediate(() => void this.#commitAll().finally(done)));
      }
    });
  }

  /** Commit groups until the queue is empty. */
  async #commitAll(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        let n = 0;
        let size = 0;
        while (n < this.#queue.length && (n === 0 || size + this.#queue[n].packed.rows <= GROUP_COMMIT_MAX_RECORDS)) {
          size += this.#queue[n].packed.rows;
          n++;
        }
        const group = this.#queue.splice(0, n);
        try {
          await this.#commitGroup(group);
        } catch (err) {
          // A bug of ours after the commit: the writes are stored; their callers must still hear.
          for (const w of group) w.reject(err);
        }
      }
    } finally {
      this.#committing = undefined;
    }
  }

  /** Wait until every queued write is committed (or failed). */
  async drain(): Promise<void> {
    while (this.#committing !== undefined) await this.#committing;
  }

  async #commitGroup(group: readonly QueuedWrite[]): Promise<void> {
    const strings = this.#strings.unsent();
    let outcomes;
    try {
      outcomes = await this.#writer.insert(
        strings,
        group.map((w) => w.packed),
      );
    } catch (err) {
      this.#strings.notSent(strings);
      const e = err instanceof StoreError ? err : new StoreError(`store write failed: ${(err as Error).message}`, { cause: err });
      for (const w of group) w.reject(e);
      return;
    }
    const committed: CommittedHops = new Map();
    let added = 0;
    group.forEach((w, i) => {
      const outcome = outcomes[i];
      if (outcome === undefined || 'error' in outcome) {
        w.reject(new StoreError(outcome?.error.message ?? 'store write failed', { statusCode: outcome?.error.statusCode }));
        return;
      }
      let duplicates = 0;
      w.records.forEach((r, k) => {
        const rowId = outcome.rowIds[k];
        if (rowId === 0) {
          duplicates++;
          return;
        }
        added++;
        const correlationId = r.correlationId ?? r.messageId;
        let list = committed.get(correlationId);
        if (list === undefined) committed.set(correlationId, (list = []));
        try {
          const expanded = recordHops(r);
          for (let j = 0; j < expanded.length; j++) list.push(summaryHop(expanded[j], hopId(rowId, j, r.v === 2), w.packed.receivedAt));
        } catch {
          // A record that bypassed validation (through the store's own API) and stands for no hop it can
          // read: stored as it came, it reads as nothing (see SqliteRecords.rowHops).
        }
      });
      w.resolve({ accepted: w.records.length, duplicates });
    });
    if (added > 0) this.#onCommitted(committed, added);
  }
}
