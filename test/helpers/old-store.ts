/**
 * A database file as an earlier hoptrace left it: hops stored the way schema
 * version 1 stored them (one JSON row per hop, chain summaries beside), then
 * brought to `version` by the released migrations themselves, exactly as a
 * collector of that version would have done when it opened the file.
 */
import { createHash } from 'node:crypto';
import { DatabaseSync } from 'node:sqlite';
import type { StoredHop } from '../../collector/api-types.ts';
import { DEFAULT_ENGINE_OPTIONS } from '../../collector/chain-engine.ts';
import { summarizeChainHops } from '../../collector/chain-summary.ts';
import { LIST_SEP, MIGRATIONS } from '../../collector/migrations.ts';
import type { HopRecord } from '../../src/contract/hop.ts';

/** Write `hops` into a new file at schema `version` (1 to the one before the newest). */
export function writeOldStore(path: string, version: number, hops: readonly HopRecord[], receivedAt = Date.now()): void {
  if (version < 1 || version >= MIGRATIONS.length) throw new Error(`no old schema version ${version}`);
  const db = new DatabaseSync(path);
  try {
    db.exec(MIGRATIONS[0] as string);
    db.exec('PRAGMA user_version = 1');
    const insert = db.prepare(
      `INSERT INTO hops (id, dedupe_key, correlation_id, message_id, trace_id, service, kind, ts, received_at, exchange, routing_key, queue, json)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    const byChain = new Map<string, StoredHop[]>();
    hops.forEach((h, i) => {
      const json = JSON.stringify(h);
      insert.run(
        i + 1,
        createHash('sha256').update(json).digest().subarray(0, 16),
        h.correlationId,
        h.messageId,
        h.traceId,
        h.service,
        h.kind,
        h.ts,
        receivedAt,
        h.exchange ?? null,
        h.routingKey ?? null,
        h.queue ?? null,
        json,
      );
      const list = byChain.get(h.correlationId) ?? [];
      list.push({ ...h, id: i + 1, receivedAt });
      byChain.set(h.correlationId, list);
    });
    const chain = db.prepare(
      `INSERT INTO chains (correlation_id, status, statuses, services, start_ts, end_ts, hop_count, updated_at, settled, checked_at, summary)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    const wrap = (items: readonly string[]) => LIST_SEP + items.join(LIST_SEP) + LIST_SEP;
    for (const [id, chainHops] of byChain) {
      const { summary: current, settled } = summarizeChainHops(id, chainHops, { now: receivedAt, updatedAt: receivedAt }, DEFAULT_ENGINE_OPTIONS);
      // What schema versions before 7 did not know.
      const { failureTally: _tally, replayed: _replayed, ...summary } = current;
      chain.run(
        id,
        summary.status,
        wrap([summary.status, ...summary.problems]),
        wrap(summary.services),
        summary.startTs,
        summary.endTs,
        summary.hopCount,
        receivedAt,
        settled ? 1 : 0,
        receivedAt,
        JSON.stringify(summary),
      );
    }
    for (let v = 1; v < version; v++) {
      const m = MIGRATIONS[v];
      db.exec('BEGIN');
      if (typeof m === 'string') db.exec(m);
      else m(db);
      db.exec(`PRAGMA user_version = ${v + 1}; COMMIT`);
    }
  } finally {
    db.close();
  }
}
