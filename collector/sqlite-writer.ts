/**
 * The main thread's side of the store's writer thread
 * (`sqlite-writer.worker.ts`): requests go over in order, each answered when
 * its transaction committed (or failed).
 *
 * Why a thread: SQLite's insert of a record (its row and two index entries)
 * costs about as much CPU as everything else the collector does with it
 * (parsing, validating, encoding, summarizing). On one thread they add up;
 * with the writer's connection on a thread of its own they overlap, on two
 * cores, and a commit's fsync never stalls the main thread.
 */
import { Worker } from 'node:worker_threads';
import { StoreError } from './errors.ts';
import type { SqliteDbOptions } from './sqlite-db.ts';

/** A write in one group commit: packed rows (`record-rows.ts`) and when they arrived. */
export interface PackedWrite {
  bytes: ArrayBuffer;
  rows: number;
  receivedAt: number;
}

/** What one write of a group came to: each row's new id (0: a duplicate, not written), or why it failed. */
export type WriteOutcome = { rowIds: Float64Array } | { error: { message: string; statusCode?: number } };

/** A write the summaries, the sweep and retention ask for, applied in one transaction with others. */
export type WriterOp =
  /**
   * A chain's summary row (correlation id, status, start, end, hop count, updated at, settled,
   * checked at, stored summary, flushed id), then its tag changes (keys joined by TAG_SEP: added at
   * the new start, removed at the old start) and its new trace ids (32 hex each, concatenated).
   */
  | ['chain', string, string, number, number, number, number, number, number, string, number, string, number, string, string]
  | ['checked', number, number, number, string]
  | ['tag+' | 'tag-', string, number, string]
  | ['trace+' | 'trace-', Uint8Array, string]
  | ['dirty+', string, number]
  | ['dirty-', string]
  | ['meta', string, number]
  | ['bucket', number, string, string, number, number, string | null]
  /** A failure group's counts in one minute change: fingerprint, bucket, count delta, unresolved delta. */
  | ['failure', string, number, number, number]
  /** A failure group as first seen (kept when it exists): fingerprint, status, service, queue, exchange, routing key, error type, pattern, example, dead-letter queue. */
  | ['group', string, string, string, string | null, string | null, string | null, string | null, string, string | null, string | null]
  | ['chain-', string, string | Uint8Array];

export type WriterRequest =
  | { type: 'insert'; seq: number; strings: [number, string][]; writes: PackedWrite[] }
  | { type: 'apply'; seq: number; ops: WriterOp[] }
  | { type: 'close'; seq: number };

export type WriterReply =
  | { seq: number; ok: true; outcomes?: WriteOutcome[] }
  | { seq: number; ok: false; error: { message: string; statusCode?: number } };

const WORKER_URL = new URL(`./sqlite-writer.worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url);

export class SqliteWriter {
  readonly #worker: Worker;
  readonly #waiting = new Map<number, { resolve: (r: WriterReply) => void; reject: (e: Error) => void }>();
  #seq = 0;
  #broken: Error | undefined;

  constructor(options: SqliteDbOptions) {
    // The writer appends near the right edge of its indexes: a small page cache and heap do.
    this.#worker = new Worker(WORKER_URL, {
      workerData: { cacheMiB: 16, ...options },
      resourceLimits: { maxYoungGenerationSizeMb: 8 },
    });
    this.#worker.on('message', (reply: WriterReply) => {
      const w = this.#waiting.get(reply.seq);
      this.#waiting.delete(reply.seq);
      w?.resolve(reply);
    });
    const fail = (err: Error) => {
      this.#broken = new StoreError(`the store's writer thread stopped: ${err.message}`, { cause: err, statusCode: 503 });
      for (const w of this.#waiting.values()) w.reject(this.#broken);
      this.#waiting.clear();
    };
    this.#worker.on('error', fail);
    this.#worker.on('exit', (code) => {
      if (this.#waiting.size > 0) fail(new Error(`exit code ${code}`));
    });
    // Seq 0 is the worker's "open" answer: nothing else is sent until it came, but requests may queue meanwhile.
    this.#waiting.set(0, { resolve: () => {}, reject: () => {} });
    this.#worker.unref();
  }

  #send(req: WriterRequest, transfer: ArrayBuffer[] = []): Promise<WriterReply> {
    if (this.#broken) return Promise.reject(this.#broken);
    return new Promise((resolve, reject) => {
      this.#waiting.set(req.seq, { resolve, reject });
      this.#worker.ref();
      this.#worker.postMessage(req, transfer);
    }).finally(() => {
      if (this.#waiting.size === 0 || (this.#waiting.size === 1 && this.#waiting.has(0))) this.#worker.unref();
    }) as Promise<WriterReply>;
  }

  /** Commit a group of writes; each outcome says what became of one write. Rejects when the group failed as a whole. */
  async insert(strings: [number, string][], writes: PackedWrite[]): Promise<WriteOutcome[]> {
    const reply = await this.#send({ type: 'insert', seq: ++this.#seq, strings, writes }, writes.map((w) => w.bytes));
    if (!reply.ok) throw new StoreError(reply.error.message, { statusCode: reply.error.statusCode });
    return reply.outcomes ?? [];
  }

  /** Apply writes in one transaction. */
  async apply(ops: WriterOp[]): Promise<void> {
    if (ops.length === 0) return;
    const reply = await this.#send({ type: 'apply', seq: ++this.#seq, ops });
    if (!reply.ok) throw new StoreError(reply.error.message, { statusCode: reply.error.statusCode });
  }

  /** Finish what was asked and close the connection. */
  async close(): Promise<void> {
    if (this.#broken) {
      await this.#worker.terminate();
      return;
    }
    this.#worker.ref();
    await this.#send({ type: 'close', seq: ++this.#seq });
    // The connection is closed by now; the thread only has to stop.
    await this.#worker.terminate();
  }
}
