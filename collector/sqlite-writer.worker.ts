/**
 * The store's writer thread: the one connection that writes, doing nothing
 * but SQL, so the main thread's parsing, encoding and summaries run beside
 * SQLite's own work instead of before it (see `sqlite-writer.ts`).
 *
 * Messages are handled one at a time, in order; each is one transaction.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { StatementSync } from 'node:sqlite';
import { unpackRows } from './record-rows.ts';
import { TAG_SEP } from './sqlite-chain-list.ts';
import { SqliteDb, writeError, type SqliteDbOptions } from './sqlite-db.ts';
import { addEncodedWaits, encodeWaits } from './topology-buckets.ts';
import type { WriterOp, WriterReply, WriterRequest } from './sqlite-writer.ts';

const port = parentPort!;
const db = new SqliteDb(workerData as SqliteDbOptions);
const d = db.db;
const prepared = (sql: string): StatementSync => db.prepared(sql);

const insertRecord = prepared(
  `INSERT INTO records (message_id, correlation_id, dkey, kind, ts, received_at, body) VALUES (?, ?, ?, ?, ?, ?, ?)
   ON CONFLICT (message_id, dkey) DO NOTHING`,
);
const insertString = prepared('INSERT OR IGNORE INTO strings (id, text) VALUES (?, ?)');

const upsertChain = prepared(
  `INSERT INTO chains (correlation_id, status, start_ts, end_ts, hop_count, updated_at, settled, checked_at, summary, flushed_id)
   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
   ON CONFLICT (correlation_id) DO UPDATE SET status = excluded.status, start_ts = excluded.start_ts, end_ts = excluded.end_ts,
     hop_count = excluded.hop_count, updated_at = excluded.updated_at, settled = excluded.settled,
     checked_at = excluded.checked_at, summary = excluded.summary, flushed_id = excluded.flushed_id
   RETURNING id`,
);
const insertTag = prepared('INSERT OR IGNORE INTO chain_tags (tag, start_ts, chain_id) VALUES (?, ?, ?)');
const deleteTag = prepared('DELETE FROM chain_tags WHERE tag = ? AND start_ts = ? AND chain_id = ?');
const insertTrace = prepared('INSERT OR IGNORE INTO chain_traces (trace_id, chain_id) VALUES (?, ?)');

const OPS: { [K in WriterOp[0]]: (...args: any[]) => void } = {
  chain: (
    id: string,
    status: string,
    startTs: number,
    endTs: number,
    hopCount: number,
    updatedAt: number,
    settled: number,
    checkedAt: number,
    summary: string,
    flushedId: number,
    added: string,
    oldStartTs: number,
    removed: string,
    traces: string,
  ) => {
    const { id: chainId } = upsertChain.get(id, status, startTs, endTs, hopCount, updatedAt, settled, checkedAt, summary, flushedId) as { id: number };
    if (removed !== '') for (const key of removed.split(TAG_SEP)) deleteTag.run(key, oldStartTs, chainId);
    if (added !== '') for (const key of added.split(TAG_SEP)) insertTag.run(key, startTs, chainId);
    for (let i = 0; i + 32 <= traces.length; i += 32) insertTrace.run(Buffer.from(traces.slice(i, i + 32), 'hex'), chainId);
  },
  checked: (...a: unknown[]) => prepared('UPDATE chains SET checked_at = ?, settled = ?, flushed_id = ? WHERE correlation_id = ?').run(...(a as never[])),
  'tag+': (...a: unknown[]) =>
    prepared('INSERT OR IGNORE INTO chain_tags (tag, start_ts, chain_id) SELECT ?, ?, id FROM chains WHERE correlation_id = ?').run(...(a as never[])),
  'tag-': (...a: unknown[]) =>
    prepared('DELETE FROM chain_tags WHERE tag = ? AND start_ts = ? AND chain_id = (SELECT id FROM chains WHERE correlation_id = ?)').run(...(a as never[])),
  'trace+': (...a: unknown[]) =>
    prepared('INSERT OR IGNORE INTO chain_traces (trace_id, chain_id) SELECT ?, id FROM chains WHERE correlation_id = ?').run(...(a as never[])),
  'trace-': (...a: unknown[]) =>
    prepared('DELETE FROM chain_traces WHERE trace_id = ? AND chain_id = (SELECT id FROM chains WHERE correlation_id = ?)').run(...(a as never[])),
  'dirty+': (...a: unknown[]) => prepared('INSERT OR IGNORE INTO dirty_chains (correlation_id, updated_at) VALUES (?, ?)').run(...(a as never[])),
  'dirty-': (id: string) => prepared('DELETE FROM dirty_chains WHERE correlation_id = ?').run(id),
  meta: (key: string, value: number) =>
    prepared('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(key, value),
  bucket: (bucket: number, from: string, to: string, count: number, errors: number, waits: string | null) => {
    const row = prepared('SELECT count, errors, waits FROM topology_buckets WHERE bucket = ? AND from_node = ? AND to_node = ?').get(bucket, from, to) as
      | { count: number; errors: number; waits: string | null }
      | undefined;
    const total = (row?.count ?? 0) + count;
    if (total <= 0) {
      prepared('DELETE FROM topology_buckets WHERE bucket = ? AND from_node = ? AND to_node = ?').run(bucket, from, to);
      return;
    }
    const histogram = new Map<number, [number, number]>();
    addEncodedWaits(histogram, waits);
    addEncodedWaits(histogram, row?.waits ?? null);
    prepared(
      `INSERT INTO topology_buckets (bucket, from_node, to_node, count, errors, waits) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (bucket, from_node, to_node) DO UPDATE SET count = excluded.count, errors = excluded.errors, waits = excluded.waits`,
    ).run(bucket, from, to, total, (row?.errors ?? 0) + errors, encodeWaits(histogram));
  },
  failure: (fingerprint: string, bucket: number, count: number, unresolved: number) => {
    const row = prepared('SELECT count, unresolved FROM failure_buckets WHERE fingerprint = ? AND bucket = ?').get(fingerprint, bucket) as
      | { count: number; unresolved: number }
      | undefined;
    const total = (row?.count ?? 0) + count;
    if (total <= 0) {
      prepared('DELETE FROM failure_buckets WHERE fingerprint = ? AND bucket = ?').run(fingerprint, bucket);
      return;
    }
    prepared(
      `INSERT INTO failure_buckets (fingerprint, bucket, count, unresolved) VALUES (?, ?, ?, ?)
       ON CONFLICT (fingerprint, bucket) DO UPDATE SET count = excluded.count, unresolved = excluded.unresolved`,
    ).run(fingerprint, bucket, total, Math.max(0, (row?.unresolved ?? 0) + unresolved));
  },
  group: (...a: unknown[]) =>
    prepared(
      `INSERT OR IGNORE INTO failure_groups (fingerprint, status, service, queue, exchange, routing_key, error_type, pattern, example, dead_letter_queue)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(...(a as never[])),
  // After its tags and trace ids ('tag-', 'trace-'), which find the chain by its row.
  'chain-': (correlationId: string, packed: string | Uint8Array) => {
    prepared('DELETE FROM records WHERE correlation_id = ?').run(packed);
    prepared('DELETE FROM chains WHERE correlation_id = ?').run(correlationId);
    prepared('DELETE FROM dirty_chains WHERE correlation_id = ?').run(correlationId);
  },
};

function errorOf(err: unknown): { message: string; statusCode?: number } {
  const e = writeError(err) as Error & { statusCode?: number };
  return { message: e.message, statusCode: e.statusCode };
}

/** One group commit: the new names, then each write in a savepoint of its own, one fsync. */
function insert(req: Extract<WriterRequest, { type: 'insert' }>): WriterReply {
  d.exec('BEGIN IMMEDIATE');
  const outcomes: ({ rowIds: Float64Array } | { error: { message: string } })[] = [];
  try {
    for (const [id, text] of req.strings) insertString.run(id, text);
    for (const w of req.writes) {
      d.exec('SAVEPOINT hoptrace_write');
      try {
        const rowIds = new Float64Array(w.rows);
        let k = 0;
        for (const row of unpackRows(w.bytes)) {
          const r = insertRecord.run(row.messageId, row.correlationId, row.dkey, row.kind, row.ts, w.receivedAt, row.body);
          rowIds[k++] = r.changes === 0 ? 0 : Number(r.lastInsertRowid);
        }
        d.exec('RELEASE hoptrace_write');
        outcomes.push({ rowIds });
      } catch (err) {
        // SQLite rolled the whole transaction back (I/O error, disk full): nothing of the group is written.
        if (!d.isTransaction) throw err;
        d.exec('ROLLBACK TO hoptrace_write');
        d.exec('RELEASE hoptrace_write');
        outcomes.push({ error: errorOf(err) });
      }
    }
    d.exec('COMMIT');
  } catch (err) {
    try {
      d.exec('ROLLBACK');
    } catch {
      // already rolled back
    }
    return { seq: req.seq, ok: false, error: errorOf(err) };
  }
  return { seq: req.seq, ok: true, outcomes };
}

function apply(req: Extract<WriterRequest, { type: 'apply' }>): WriterReply {
  try {
    db.transaction(() => {
      for (const [name, ...args] of req.ops) (OPS[name] as (...a: unknown[]) => void)(...args);
    });
    return { seq: req.seq, ok: true };
  } catch (err) {
    return { seq: req.seq, ok: false, error: errorOf(err) };
  }
}

port.on('message', (req: WriterRequest) => {
  let reply: WriterReply;
  if (req.type === 'insert') reply = insert(req);
  else if (req.type === 'apply') reply = apply(req);
  else {
    db.close();
    port.postMessage({ seq: req.seq, ok: true });
    return;
  }
  const transfer = reply.ok && reply.outcomes ? reply.outcomes.flatMap((o) => ('rowIds' in o ? [o.rowIds.buffer as ArrayBuffer] : [])) : [];
  port.postMessage(reply, transfer);
});
port.postMessage({ seq: 0, ok: true });
