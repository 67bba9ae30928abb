/**
 * Topology in PostgreSQL: per-minute edge aggregates as in SQLite
 * (`topology-buckets.ts`), with two differences that let several collectors
 * add to them and retention drop them by partition:
 *
 * - a message's contributions are counted in the partition (`part`) of its
 *   newest record, so every row of a dropped partition belongs to messages
 *   whose records went with it;
 * - counts and wait histograms are rows that add up (`count + excluded.count`,
 *   one `topology_waits` row per bin), so concurrent flushes never
 *   read-modify-write a shared value; rows are written in key order, so two
 *   flushes never deadlock on them.
 */
import type pg from 'pg';
import type { StoredHop, Topology } from './api-types.ts';
import { topologyHop } from './chain-refresh.ts';
import type { PgDb } from './pg-db.ts';
import type { PgRecords } from './pg-records.ts';
import { fromPgId } from './pg-ids.ts';
import { EdgeTally, messageContributions, TOPOLOGY_BUCKET_MS } from './topology-buckets.ts';

/** Contribution changes by partition. */
export class PartTally {
  readonly #parts = new Map<number, EdgeTally>();

  /** Add (1) or take away (-1) the contributions of one message's hops, in `part`. */
  add(part: number, hops: readonly StoredHop[], sign: 1 | -1): void {
    if (hops.length === 0) return;
    let tally = this.#parts.get(part);
    if (!tally) this.#parts.set(part, (tally = new EdgeTally()));
    tally.addContributions(messageContributions(hops.map(topologyHop)), sign, true);
  }

  get empty(): boolean {
    return this.#parts.size === 0;
  }

  /** Write the changes (skipping parts in `skip`), inside the caller's transaction. */
  async apply(c: pg.ClientBase, skip: ReadonlySet<number> = new Set()): Promise<void> {
    const b: { part: number; bucket: number; from: string; to: string; count: number; errors: number }[] = [];
    const w: { part: number; bucket: number; from: string; to: string; bin: number; n: number; sum: number }[] = [];
    for (const [part, tally] of this.#parts) {
      if (skip.has(part)) continue;
      for (const e of tally.changed()) {
        if (e.count !== 0 || e.errors !== 0) b.push({ part, bucket: e.bucket, from: e.from, to: e.to, count: e.count, errors: e.errors });
        for (const [bin, [n, sum]] of e.waits) w.push({ part, bucket: e.bucket, from: e.from, to: e.to, bin, n, sum });
      }
    }
    const order = (x: { part: number; bucket: number; from: string; to: string }, y: typeof x) =>
      x.part - y.part || x.bucket - y.bucket || (x.from < y.from ? -1 : x.from > y.from ? 1 : 0) || (x.to < y.to ? -1 : x.to > y.to ? 1 : 0);
    b.sort(order);
    w.sort((x, y) => order(x, y) || x.bin - y.bin);
    if (b.length > 0) {
      await c.query(
        `INSERT INTO topology_buckets (part, bucket, from_node, to_node, count, errors)
         SELECT p, b, f, t, n, e FROM unnest($1::int[], $2::int8[], $3::text[], $4::text[], $5::int[], $6::int[]) WITH ORDINALITY AS u (p, b, f, t, n, e, o) ORDER BY o
         ON CONFLICT (part, bucket, from_node, to_node)
         DO UPDATE SET count = topology_buckets.count + excluded.count, errors = topology_buckets.errors + excluded.errors`,
        [b.map((r) => r.part), b.map((r) => r.bucket), b.map((r) => r.from), b.map((r) => r.to), b.map((r) => r.count), b.map((r) => r.errors)],
      );
    }
    if (w.length > 0) {
      await c.query(
        `INSERT INTO topology_waits (part, bucket, from_node, to_node, bin, n, sum_us)
         SELECT p, b, f, t, bin, n, s FROM unnest($1::int[], $2::int8[], $3::text[], $4::text[], $5::int2[], $6::int[], $7::int8[]) WITH ORDINALITY AS u (p, b, f, t, bin, n, s, o) ORDER BY o
         ON CONFLICT (part, bucket, from_node, to_node, bin)
         DO UPDATE SET n = topology_waits.n + excluded.n, sum_us = topology_waits.sum_us + excluded.sum_us`,
        [w.map((r) => r.part), w.map((r) => r.bucket), w.map((r) => r.from), w.map((r) => r.to), w.map((r) => r.bin), w.map((r) => r.n), w.map((r) => r.sum)],
      );
    }
  }
}

export class PgTopology {
  readonly #db: PgDb;
  readonly #records: PgRecords;

  constructor(db: PgDb, records: PgRecords) {
    this.#db = db;
    this.#records = records;
  }

  /**
   * Sums the buckets the window covers whole; the partial buckets at its two
   * ends are computed from the records, as in `sqlite-topology.ts`.
   */
  async topology(from: number, to: number): Promise<Topology> {
    const tally = new EdgeTally();
    const lo = Math.ceil(from / TOPOLOGY_BUCKET_MS) * TOPOLOGY_BUCKET_MS;
    const hi = Math.floor(to / TOPOLOGY_BUCKET_MS) * TOPOLOGY_BUCKET_MS;
    if (lo < hi) {
      const [edges, waits] = await Promise.all([
        this.#db.query<{ from_node: string; to_node: string; count: number; errors: number; first: number; last: number }>(
          `SELECT from_node, to_node, sum(count)::int8 AS count, sum(errors)::int8 AS errors, min(bucket) AS first, max(bucket) AS last
           FROM topology_buckets WHERE bucket >= $1 AND bucket < $2 AND count <> 0 GROUP BY 1, 2`,
          [lo, hi],
        ),
        this.#db.query<{ from_node: string; to_node: string; bin: number; n: number; s: number }>(
          `SELECT from_node, to_node, bin, sum(n)::int8 AS n, sum(sum_us)::int8 AS s
           FROM topology_waits WHERE bucket >= $1 AND bucket < $2 GROUP BY 1, 2, 3`,
          [lo, hi],
        ),
      ]);
      // An edge's histogram in the stored form EdgeTally reads: [bin, count, sumUs, …] in a JSON array.
      const hist = new Map<string, number[]>();
      for (const r of waits) {
        const key = `${r.from_node}\u0000${r.to_node}`;
        const flat = hist.get(key) ?? [];
        flat.push(r.bin, r.n, r.s);
        hist.set(key, flat);
      }
      for (const r of edges) {
        const key = `${r.from_node}\u0000${r.to_node}`;
        const flat = hist.get(key);
        hist.delete(key);
        tally.addRow(r.from_node, r.to_node, r.count, r.errors, flat ? JSON.stringify([flat]) : null, { first: r.first, last: r.last });
      }
      for (const [key, flat] of hist) {
        const [f, t] = key.split('\u0000');
        tally.addRow(f, t, 0, 0, JSON.stringify([flat]));
      }
      await this.#fromRecords(tally, from, lo, false);
      await this.#fromRecords(tally, hi, to, true);
    } else {
      await this.#fromRecords(tally, from, to, true);
    }
    return tally.toTopology(from, to);
  }

  /** Add the contributions timed in [start, end) (or [start, end]) from the messages sent or received then. */
  async #fromRecords(tally: EdgeTally, start: number, end: number, endInclusive: boolean): Promise<void> {
    if (end < start || (end === start && !endInclusive)) return;
    const ids = await this.#db.query<{ message_id: Buffer }>(
      `SELECT DISTINCT message_id FROM records WHERE ts >= $1 AND ts ${endInclusive ? '<=' : '<'} $2 AND kind IN (0, 3, 6, 7)`,
      [start, end],
    );
    const inWindow = (t: number) => t >= start && (endInclusive ? t <= end : t < end);
    const hops = await this.#records.messagesHops(ids.map((r) => fromPgId(r.message_id)));
    for (const list of hops.values()) {
      tally.addContributions(messageContributions(list.map(topologyHop)).filter((c) => inWindow(c.ts)), 1, false);
    }
  }
}
