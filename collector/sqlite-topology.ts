/**
 * The topology query in SQLite, over per-minute edge aggregates
 * (`topology_buckets`, see `topology-buckets.ts`) that the summaries job
 * adds each touched message's contribution changes to (the writer thread's
 * `bucket` op applies them).
 */
import type { Topology } from './api-types.ts';
import { unpackId } from './record-codec.ts';
import type { SqliteDb } from './sqlite-db.ts';
import type { SqliteRecords } from './sqlite-records.ts';
import { EdgeTally, messageContributions, TOPOLOGY_BUCKET_MS, type TopologyHop } from './topology-buckets.ts';

export class SqliteTopology {
  readonly #db: SqliteDb;
  readonly #records: SqliteRecords;

  constructor(db: SqliteDb, records: SqliteRecords) {
    this.#db = db;
    this.#records = records;
  }

  /**
   * Sums the buckets the window covers whole; the partial buckets at its two
   * ends are computed from the records, counting the contributions (see
   * topology-buckets.ts) whose time falls inside the window, so any window
   * gets the same counts as summing per message would.
   */
  topology(from: number, to: number): Topology {
    this.#db.open();
    const tally = new EdgeTally();
    // Whole buckets: [lo, hi). Edges: [from, lo) and [hi, to].
    const lo = Math.ceil(from / TOPOLOGY_BUCKET_MS) * TOPOLOGY_BUCKET_MS;
    const hi = Math.floor(to / TOPOLOGY_BUCKET_MS) * TOPOLOGY_BUCKET_MS;
    if (lo < hi) {
      // Summed in SQLite; an edge's histograms come back as one JSON array of them, parsed once.
      const rows = this.#db
        .prepared(
          `SELECT from_node, to_node, sum(count) AS count, sum(errors) AS errors, '[' || group_concat(waits) || ']' AS waits,
             min(bucket) AS first, max(bucket) AS last
           FROM topology_buckets WHERE bucket >= ? AND bucket < ? GROUP BY from_node, to_node`,
        )
        .all(lo, hi) as { from_node: string; to_node: string; count: number; errors: number; waits: string | null; first: number; last: number }[];
      for (const r of rows) tally.addRow(r.from_node, r.to_node, r.count, r.errors, r.waits, { first: r.first, last: r.last });
      this.#tallyFromRecords(tally, from, lo, false);
      this.#tallyFromRecords(tally, hi, to, true);
    } else {
      this.#tallyFromRecords(tally, from, to, true);
    }
    return tally.toTopology(from, to);
  }

  /** Add the contributions timed in [start, end) (or [start, end]) from the messages sent or received then. */
  #tallyFromRecords(tally: EdgeTally, start: number, end: number, endInclusive: boolean): void {
    if (end < start || (end === start && !endInclusive)) return;
    const ids = this.#db
      .prepared(`SELECT DISTINCT message_id FROM records WHERE ts >= ? AND ts ${endInclusive ? '<=' : '<'} ? AND kind IN (0, 3, 6, 7)`)
      .all(start, end) as { message_id: string | Uint8Array }[];
    const inWindow = (t: number) => t >= start && (endInclusive ? t <= end : t < end);
    for (const { message_id } of ids) {
      const hops: TopologyHop[] = this.#records.messageHops(unpackId(message_id)).map((h) => ({
        kind: h.kind,
        service: h.service,
        exchange: h.exchange ?? null,
        queue: h.queue ?? null,
        ts: h.ts,
        outcome: h.outcome ?? null,
        deathCount: h.deathCount ?? null,
      }));
      tally.addContributions(messageContributions(hops).filter((c) => inWindow(c.ts)), 1, false);
    }
  }
}
