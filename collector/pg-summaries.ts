/**
 * Chain summaries in PostgreSQL, kept by several collectors at once.
 *
 * Work: every write adds a dirty mark per chain it gave a new record,
 * `(correlation_id, xid)` with the writing transaction's id, in the same
 * statement as the records. A flush claims marks `FOR UPDATE SKIP LOCKED`
 * (two flushes never claim the same mark), takes a transaction-scoped
 * advisory lock per chain (`pg_try_advisory_xact_lock`; a chain another
 * flush holds is left for the next round), brings each chain up to date and
 * deletes the marks it handled — all in one transaction. A collector that
 * dies mid-flush rolls back: its marks are there for the next flush,
 * anyone's.
 *
 * What a summary holds is exactly the chain's records whose mark is gone: a
 * claimed mark's records are the new ones (`fresh`), records with no mark are
 * the ones summarized before. Each collector keeps recently flushed chains'
 * summary hops in memory, tagged with the chain row's `version` (from a
 * sequence at every change); a chain flushed elsewhere since, or deleted and
 * begun anew, has another version and is loaded from its records instead.
 *
 * Changes are announced with `NOTIFY hoptrace_chains` in the flush's
 * transaction, so every collector's live stream hears them once committed.
 */
import type pg from 'pg';
import type { ChainChange } from './store.ts';
import type { ChainSummary, StoredHop } from './api-types.ts';
import { hopsOfMessages, stepChain, type ChainStep } from './chain-refresh.ts';
import { summaryHop, type EngineSettings } from './chain-summary.ts';
import { LOCK, lockArgs, lockCall, type PgDb } from './pg-db.ts';
import { fromPgId, pgId } from './pg-ids.ts';
import type { PgPartitions } from './pg-partitions.ts';
import { PG_RECORD_COLUMNS, type PgRecordRow, type PgRecords } from './pg-records.ts';
import { PartTally } from './pg-topology.ts';
import { FailureDeltas, newGroups, type FailureGroupInfo } from './failure-buckets.ts';
import { addFailureChanges, describeFailureGroups } from './pg-failures.ts';
import { distinctHops } from './record-identity.ts';

/** Dirty marks one flush transaction claims at most. */
const CLAIM = 1_000;
/** Summary hops kept in memory at most; least recently used chains are dropped first (they reload from records). */
const MAX_CACHED_HOPS = 100_000;
/** Changes kept for the next `flush()` from flushes that reads did; beyond this, live events are dropped. */
const MAX_PENDING_CHANGES = 10_000;
/** The channel of `NOTIFY`; payloads stay under PostgreSQL's 8,000-byte limit. */
export const NOTIFY_CHANNEL = 'hoptrace_chains';
const NOTIFY_MAX_BYTES = 7_000;
/** How long a read waits for summary work another session holds before it answers with what is there. */
const READ_WAIT_MS = 5_000;
const LOCK_TIMEOUT = '55P03';

/** A notification: which store sent it, in which schema (one channel serves every schema), chains new (`n`) and changed (`c`). */
export interface ChainNotice {
  s: string;
  d: string;
  n: string[];
  c: string[];
}

interface ChainRow {
  correlation_id: string;
  id: number;
  summary: string;
  version: number;
  updated_at: number;
  received_from: number;
}

interface Cached {
  hops: StoredHop[];
  version: number;
}

/** One chain to bring up to date in a transaction. */
interface Plan {
  id: string;
  row: ChainRow | undefined;
  before: StoredHop[];
  hops: StoredHop[];
  updatedAt: number;
  receivedFrom: number;
  /** Messages whose topology contributions may have changed. */
  touched: Set<string>;
  /** What the summary holds changed (new records, or retention took some): a new version. */
  grew: boolean;
  /** Retention: rewrite the chain's trace ids instead of adding to them. */
  rewriteTraces: boolean;
}

const maxReceived = (hops: readonly StoredHop[]): number => hops.reduce((m, h) => (h.receivedAt > m ? h.receivedAt : m), 0);

export class PgSummaries {
  readonly #db: PgDb;
  readonly #records: PgRecords;
  readonly #partitions: PgPartitions;
  readonly #settings: EngineSettings;
  /** This store's id in notifications (its own are not announced twice). */
  readonly storeId: string;
  readonly #cache = new Map<string, Cached>();
  #cachedHops = 0;
  /** Changes from flushes done by reads, handed out by the next `flush()`. */
  readonly #pendingChanges = new Map<string, ChainChange>();
  /** Failure groups known to be described in failure_groups (rows are never deleted). */
  readonly #knownGroups = new Set<string>();

  constructor(db: PgDb, records: PgRecords, partitions: PgPartitions, settings: EngineSettings, storeId: string) {
    this.#db = db;
    this.#records = records;
    this.#partitions = partitions;
    this.#settings = settings;
    this.storeId = storeId;
  }

  /** Forget chains' cached state (retention changed or deleted them). */
  forget(ids: Iterable<string>): void {
    for (const id of ids) {
      const st = this.#cache.get(id);
      if (st === undefined) continue;
      this.#cachedHops -= st.hops.length;
      this.#cache.delete(id);
    }
  }

  #remember(id: string, state: Cached): void {
    this.forget([id]);
    this.#cache.set(id, state);
    this.#cachedHops += state.hops.length;
    for (const [key, st] of this.#cache) {
      if (this.#cachedHops <= MAX_CACHED_HOPS) break;
      this.#cache.delete(key);
      this.#cachedHops -= st.hops.length;
    }
  }

  /**
   * One flush transaction: claim marks, bring their chains up to date.
   * `wait`: wait for retention and for marks other flushes hold (a read
   * must see every committed record); otherwise skip them.
   * @returns the changes, and whether marks may remain
   */
  async #round(now: number, wait: boolean): Promise<{ changes: ChainChange[]; more: boolean; blocked: boolean }> {
    const after: (() => void)[] = [];
    const result = await this.#db.transaction(async (c) => {
      if (wait) {
        // A read waits for retention and for other flushes, but not for a session that hangs on to its locks.
        await c.query(`SET LOCAL lock_timeout = '${READ_WAIT_MS}ms'`);
        await c.query(`SELECT ${lockCall('pg_advisory_xact_lock_shared', 1)}`, lockArgs(LOCK.flush, this.#db.schema));
      }
      else {
        const { rows } = await c.query<{ ok: boolean }>(`SELECT ${lockCall('pg_try_advisory_xact_lock_shared', 1)} AS ok`, lockArgs(LOCK.flush, this.#db.schema));
        if (!rows[0].ok) return { changes: [], more: false, blocked: true };
      }
      const claimed = (
        await c.query<{ correlation_id: Buffer; xid: string }>(
          'SELECT correlation_id, xid::text AS xid FROM dirty_chains LIMIT $1 FOR UPDATE SKIP LOCKED',
          [CLAIM],
        )
      ).rows;
      if (claimed.length === 0) {
        if (!wait) return { changes: [], more: false, blocked: false };
        // Marks other flushes hold: wait for their transactions (their rows are then gone or free).
        const held = await c.query('SELECT 1 FROM dirty_chains LIMIT 1');
        if (held.rowCount === 0) return { changes: [], more: false, blocked: false };
        await c.query('SELECT 1 FROM dirty_chains LIMIT 1 FOR UPDATE');
        return { changes: [], more: true, blocked: false };
      }
      const marks = new Map<string, { packed: Buffer; xids: string[] }>();
      for (const m of claimed) {
        const id = fromPgId(m.correlation_id);
        const entry = marks.get(id);
        if (entry) entry.xids.push(m.xid);
        else marks.set(id, { packed: m.correlation_id, xids: [m.xid] });
      }
      const won = await this.#lockChains(c, [...marks.keys()]);
      if (won.length === 0 && wait) {
        // Every chain is being flushed elsewhere: a read waits for one of those flushes, then looks again.
        await c.query(`SELECT pg_advisory_xact_lock(hashtextextended($2 || '/' || $1, 0))`, [marks.keys().next().value, this.#db.schema]);
        return { changes: [], more: true, blocked: false };
      }
      const fresh = new Map<string, string[]>();
      for (const id of won) fresh.set(id, marks.get(id)!.xids);
      const changes = await this.#refresh(c, won, fresh, now, after);
      // The handled marks go in this commit; marks of chains another flush holds stay for the next round.
      const handled = won.flatMap((id) => marks.get(id)!.xids.map((x) => [marks.get(id)!.packed, x] as const));
      await c.query(
        `DELETE FROM dirty_chains d USING unnest($1::bytea[], $2::xid8[]) AS f (cid, x) WHERE d.correlation_id = f.cid AND d.xid = f.x`,
        [handled.map((h) => h[0]), handled.map((h) => h[1])],
      );
      await this.#notify(c, changes);
      // More to do when the claim was full, or when some chains were taken and others left to their holders
      // (when none was taken, every chain is being flushed elsewhere: stop rather than spin).
      return { changes, more: claimed.length === CLAIM || (won.length > 0 && won.length < marks.size), blocked: false };
    }, 'summary flush');
    for (const fn of after) fn();
    return result;
  }

  /** Of `ids`, the chains whose transaction lock this flush got (no other flush computes them now). */
  async #lockChains(c: pg.ClientBase, ids: readonly string[]): Promise<string[]> {
    if (ids.length === 0) return [];
    const sorted = [...ids].sort();
    const { rows } = await c.query<{ id: string }>(
      `SELECT id FROM unnest($1::text[]) WITH ORDINALITY AS u (id, o) WHERE pg_try_advisory_xact_lock(hashtextextended($2 || '/' || id, 0)) ORDER BY o`,
      [sorted, this.#db.schema],
    );
    return rows.map((r) => r.id);
  }

  /**
   * Bring chains up to date: their stored rows, what they held (cache or
   * records), their fresh records (`fresh`: chain → claimed xids); write what
   * changed. `after` gets the cache updates to make once committed.
   */
  async #refresh(c: pg.ClientBase, ids: readonly string[], fresh: ReadonlyMap<string, string[]>, now: number, after: (() => void)[]): Promise<ChainChange[]> {
    if (ids.length === 0) return [];
    const rows = await this.#chainRows(c, ids);
    const stale: string[] = [];
    const before = new Map<string, StoredHop[]>();
    for (const id of ids) {
      const row = rows.get(id);
      const cached = this.#cache.get(id);
      if (row !== undefined && cached !== undefined && cached.version === row.version) before.set(id, cached.hops);
      else if (row === undefined) before.set(id, []);
      else stale.push(id);
    }
    if (stale.length > 0) for (const [id, hops] of await this.#summarizedHops(c, stale)) before.set(id, hops);
    const freshHops = await this.#freshHops(c, fresh);
    const plans: Plan[] = [];
    for (const id of ids) {
      const row = rows.get(id);
      const was = before.get(id) ?? [];
      const added = freshHops.get(id) ?? [];
      if (row === undefined && was.length === 0 && added.length === 0) continue; // marks of records retention took
      const hops = added.length === 0 ? was : distinctHops([...was, ...added]);
      let updatedAt = row?.updated_at ?? 0;
      let receivedFrom = row?.received_from ?? Infinity;
      for (const h of added) {
        if (h.receivedAt > updatedAt) updatedAt = h.receivedAt;
        if (h.receivedAt < receivedFrom) receivedFrom = h.receivedAt;
      }
      if (receivedFrom === Infinity) receivedFrom = updatedAt;
      plans.push({
        id,
        row,
        before: was,
        hops,
        updatedAt,
        receivedFrom,
        touched: new Set(added.map((h) => h.messageId)),
        grew: added.length > 0,
        rewriteTraces: false,
      });
    }
    return this.write(c, plans, now, after);
  }

  async #chainRows(c: pg.ClientBase, ids: readonly string[]): Promise<Map<string, ChainRow>> {
    const { rows } = await c.query<ChainRow>(
      'SELECT correlation_id, id, summary, version, updated_at, received_from FROM chains WHERE correlation_id = ANY($1::text[])',
      [ids],
    );
    return new Map(rows.map((r) => [r.correlation_id, r]));
  }

  /** Summary hops of rows, by chain (repeats kept). */
  async #hopsByChain(rows: readonly PgRecordRow[]): Promise<Map<string, StoredHop[]>> {
    const out = new Map<string, StoredHop[]>();
    const all = await this.#records.allHops(rows);
    for (const h of all) {
      const s = summaryHop(h, h.id, h.receivedAt);
      const list = out.get(h.correlationId);
      if (list) list.push(s);
      else out.set(h.correlationId, [s]);
    }
    return out;
  }

  /** The hops each chain's summary holds: its records with no dirty mark, each hop once. */
  async #summarizedHops(c: pg.ClientBase, ids: readonly string[]): Promise<Map<string, StoredHop[]>> {
    const { rows } = await c.query<PgRecordRow>(
      `SELECT ${PG_RECORD_COLUMNS} FROM records r WHERE r.correlation_id = ANY($1::bytea[])
       AND NOT EXISTS (SELECT 1 FROM dirty_chains d WHERE d.correlation_id = r.correlation_id AND d.xid = r.xid)
       ORDER BY r.id`,
      [ids.map(pgId)],
    );
    const out = await this.#hopsByChain(rows);
    for (const [id, hops] of out) out.set(id, distinctHops(hops));
    return out;
  }

  /** The records of the claimed marks, as summary hops by chain. */
  async #freshHops(c: pg.ClientBase, fresh: ReadonlyMap<string, string[]>): Promise<Map<string, StoredHop[]>> {
    const cids: Buffer[] = [];
    const xids: string[] = [];
    for (const [id, list] of fresh) {
      const packed = pgId(id);
      for (const x of list) {
        cids.push(packed);
        xids.push(x);
      }
    }
    if (cids.length === 0) return new Map();
    const { rows } = await c.query<PgRecordRow>(
      `SELECT ${PG_RECORD_COLUMNS.split(', ').map((col) => `r.${col}`).join(', ')}
       FROM records r JOIN unnest($1::bytea[], $2::xid8[]) AS f (cid, x) ON r.correlation_id = f.cid AND r.xid = f.x
       ORDER BY r.id`,
      [cids, xids],
    );
    return this.#hopsByChain(rows);
  }

  /**
   * Write plans: each chain's summary, tags, trace ids, topology changes
   * (skipping partitions in `dropped`), the chain count. Inside the caller's
   * transaction; cache updates go to `after`.
   */
  async write(c: pg.ClientBase, plans: readonly Plan[], now: number, after: (() => void)[], dropped: ReadonlySet<number> = new Set()): Promise<ChainChange[]> {
    const changes: ChainChange[] = [];
    const upsert: { plan: Plan; step: ChainStep }[] = [];
    const checked: { id: string; settled: boolean }[] = [];
    // Tag and trace-id rows by chain id: known for stored chains, given by the upsert for new ones.
    const tagDel: [string, number, number][] = [];
    const tagAdd: [string, number, string][] = [];
    const traces: [Buffer, string][] = [];
    const traceRewrite: number[] = [];
    const tally = new PartTally();
    const failures = new FailureDeltas();
    const groups: FailureGroupInfo[] = [];
    const describing = new Set<string>();
    for (const plan of plans) {
      const stored = plan.row === undefined ? undefined : (JSON.parse(plan.row.summary) as ChainSummary);
      const step = stepChain({
        correlationId: plan.id,
        stored: { summary: stored, json: plan.row?.summary, updatedAt: plan.row?.updated_at ?? 0 },
        before: plan.before,
        hops: plan.hops,
        updatedAt: plan.updatedAt,
        now,
        settings: this.#settings,
      });
      if (plan.touched.size > 0) {
        const was = hopsOfMessages(plan.before, plan.touched);
        const is = hopsOfMessages(plan.hops, plan.touched);
        for (const m of plan.touched) {
          const w = was.get(m)!;
          const n = is.get(m)!;
          tally.add(this.#partitions.partOf(maxReceived(w)), w, -1);
          tally.add(this.#partitions.partOf(maxReceived(n)), n, 1);
        }
      }
      if (step.changed || plan.grew) upsert.push({ plan, step });
      else checked.push({ id: plan.id, settled: step.settled });
      if (step.changed) {
        // Failure groups: the chain's new tally minus the stored one; groups first seen described.
        failures.add(stored?.failureTally, -1);
        failures.add(step.summary.failureTally, 1);
        for (const g of newGroups(step.failures, (fp) => this.#knownGroups.has(fp) || describing.has(fp))) {
          describing.add(g.fingerprint);
          groups.push(g);
        }
        for (const key of step.tags.remove) tagDel.push([key, stored!.startTs, plan.row!.id]);
        for (const key of step.tags.add) tagAdd.push([key, step.summary.startTs, plan.id]);
        if (plan.rewriteTraces) {
          if (plan.row) traceRewrite.push(plan.row.id);
          for (const t of step.summary.traceIds) if (t.length === 32) traces.push([Buffer.from(t, 'hex'), plan.id]);
        } else for (const t of step.traces) traces.push([Buffer.from(t, 'hex'), plan.id]);
        changes.push({ type: stored === undefined ? 'new' : 'changed', chain: step.summary });
      }
    }
    const chainIds = new Map<string, number>();
    if (upsert.length > 0) {
      const col = <T>(f: (u: { plan: Plan; step: ChainStep }) => T) => upsert.map(f);
      const { rows } = await c.query<{ correlation_id: string; id: number; version: number; inserted: boolean }>(
        `INSERT INTO chains (correlation_id, status, start_ts, end_ts, hop_count, updated_at, received_from, settled, checked_at, version, summary)
         SELECT id, status, st, et, hc, ua, rf, s, $1::float8, nextval('chain_version_seq'), sm
         FROM unnest($2::text[], $3::text[], $4::float8[], $5::float8[], $6::int[], $7::float8[], $8::float8[], $9::bool[], $10::text[])
           AS u (id, status, st, et, hc, ua, rf, s, sm)
         ON CONFLICT (correlation_id) DO UPDATE SET status = excluded.status, start_ts = excluded.start_ts, end_ts = excluded.end_ts,
           hop_count = excluded.hop_count, updated_at = excluded.updated_at, received_from = excluded.received_from,
           settled = excluded.settled, checked_at = excluded.checked_at, version = excluded.version, summary = excluded.summary
         RETURNING correlation_id, id, version, (xmax = 0) AS inserted`,
        [
          now,
          col((u) => u.plan.id),
          col((u) => u.step.summary.status),
          col((u) => u.step.summary.startTs),
          col((u) => u.step.summary.endTs),
          col((u) => u.step.summary.hopCount),
          col((u) => u.step.updatedAt),
          col((u) => u.plan.receivedFrom),
          col((u) => u.step.settled),
          col((u) => u.step.json),
        ],
      );
      const versions = new Map(rows.map((r) => [r.correlation_id, r.version]));
      for (const r of rows) chainIds.set(r.correlation_id, r.id);
      const inserted = rows.filter((r) => r.inserted).length;
      if (inserted > 0) {
        await c.query(
          'INSERT INTO chain_counts (backend, n) VALUES (pg_backend_pid(), $1) ON CONFLICT (backend) DO UPDATE SET n = chain_counts.n + excluded.n',
          [inserted],
        );
      }
      for (const { plan, step } of upsert) {
        const version = versions.get(plan.id)!;
        after.push(() => this.#remember(plan.id, { hops: step.hops, version }));
      }
    }
    if (checked.length > 0) {
      await c.query(
        'UPDATE chains SET checked_at = $1, settled = u.s FROM unnest($2::text[], $3::bool[]) AS u (id, s) WHERE correlation_id = u.id',
        [now, checked.map((x) => x.id), checked.map((x) => x.settled)],
      );
    }
    if (tagDel.length > 0) {
      await c.query(
        `DELETE FROM chain_tags t USING unnest($1::text[], $2::float8[], $3::int8[]) AS u (tag, st, id)
         WHERE t.tag = u.tag AND t.start_ts = u.st AND t.chain_id = u.id`,
        [tagDel.map((t) => t[0]), tagDel.map((t) => t[1]), tagDel.map((t) => t[2])],
      );
    }
    if (tagAdd.length > 0) {
      await c.query('INSERT INTO chain_tags (tag, start_ts, chain_id) SELECT * FROM unnest($1::text[], $2::float8[], $3::int8[]) ON CONFLICT DO NOTHING', [
        tagAdd.map((t) => t[0]),
        tagAdd.map((t) => t[1]),
        tagAdd.map((t) => chainIds.get(t[2])!),
      ]);
    }
    if (traceRewrite.length > 0) await c.query('DELETE FROM chain_traces WHERE chain_id = ANY($1::int8[])', [traceRewrite]);
    if (traces.length > 0) {
      await c.query('INSERT INTO chain_traces (trace_id, chain_id) SELECT * FROM unnest($1::bytea[], $2::int8[]) ON CONFLICT DO NOTHING', [
        traces.map((t) => t[0]),
        traces.map((t) => chainIds.get(t[1])!),
      ]);
    }
    if (!tally.empty) await tally.apply(c, dropped);
    await describeFailureGroups(c, groups);
    await addFailureChanges(c, failures.changed());
    if (groups.length > 0) after.push(() => groups.forEach((g) => this.#knownGroups.add(g.fingerprint)));
    return changes;
  }

  /** Announce changes to every collector (delivered when the transaction commits). */
  async #notify(c: pg.ClientBase, changes: readonly ChainChange[]): Promise<void> {
    let notice: ChainNotice = { s: this.storeId, d: this.#db.schema, n: [], c: [] };
    let bytes = 120;
    const send = async () => {
      if (notice.n.length + notice.c.length === 0) return;
      await c.query('SELECT pg_notify($1, $2)', [NOTIFY_CHANNEL, JSON.stringify(notice)]);
      notice = { s: this.storeId, d: this.#db.schema, n: [], c: [] };
      bytes = 120;
    };
    for (const change of changes) {
      const id = change.chain.correlationId;
      const size = Buffer.byteLength(JSON.stringify(id)) + 1;
      if (bytes + size > NOTIFY_MAX_BYTES) await send();
      (change.type === 'new' ? notice.n : notice.c).push(id);
      bytes += size;
    }
    await send();
  }

  #keep(change: ChainChange): void {
    const id = change.chain.correlationId;
    const before = this.#pendingChanges.get(id);
    if (!before && this.#pendingChanges.size >= MAX_PENDING_CHANGES) return;
    this.#pendingChanges.set(id, before?.type === 'new' ? { type: 'new', chain: change.chain } : change);
  }

  /**
   * Before a read of summaries: flush every mark committed so far, waiting
   * for flushes elsewhere that hold some, so the read sees every committed
   * record. Changes are kept for the next `flush()`.
   */
  async fresh(): Promise<void> {
    this.#db.open();
    const [{ n }] = await this.#db.query<{ n: number }>('SELECT count(*)::int8 AS n FROM dirty_chains');
    if (n === 0) return;
    // The marks there now, not those ingest keeps adding while this runs.
    for (let rounds = Math.ceil(n / CLAIM) + 3; rounds > 0; rounds--) {
      let r;
      try {
        r = await this.#round(Date.now(), true);
      } catch (err) {
        if ((err as { cause?: { code?: string } }).cause?.code === LOCK_TIMEOUT) return;
        throw err;
      }
      for (const change of r.changes) this.#keep(change);
      if (!r.more) return;
    }
  }

  /**
   * The background flush: claim what no other collector is flushing, in
   * rounds, and return every change since the last call (also those reads
   * made). Marks other flushes hold, and everything while retention runs,
   * are left for later.
   */
  async flush(now: number): Promise<ChainChange[]> {
    this.#db.open();
    for (let rounds = 0; rounds < 1_000; rounds++) {
      const r = await this.#round(now, false);
      for (const change of r.changes) this.#keep(change);
      if (!r.more || r.blocked) break;
    }
    const out = [...this.#pendingChanges.values()];
    this.#pendingChanges.clear();
    return out;
  }

  /** Re-summarize up to `limit` unsettled chains, least recently checked first; the ones whose summary changed. */
  async refreshUnsettled(now: number, limit: number): Promise<ChainChange[]> {
    const after: (() => void)[] = [];
    const changes = await this.#db.transaction(async (c) => {
      const { rows: lock } = await c.query<{ ok: boolean }>(`SELECT ${lockCall('pg_try_advisory_xact_lock_shared', 1)} AS ok`, lockArgs(LOCK.flush, this.#db.schema));
      if (!lock[0].ok) return [];
      const { rows } = await c.query<{ correlation_id: string }>('SELECT correlation_id FROM chains WHERE NOT settled ORDER BY checked_at LIMIT $1', [limit]);
      const won = await this.#lockChains(c, rows.map((r) => r.correlation_id));
      const out = await this.#refresh(c, won, new Map(), now, after);
      await this.#notify(c, out);
      return out;
    }, 'status sweep');
    for (const fn of after) fn();
    return changes;
  }

  /**
   * Retention's rewrite of chains that keep some records: each summarized
   * from its records that `keep`s, topology contributions moved from all its
   * hops to the kept ones. Inside retention's transaction (which holds the
   * flush lock exclusively: no flush runs meanwhile).
   */
  async rewrite(c: pg.ClientBase, ids: readonly string[], keep: (h: StoredHop) => boolean, now: number, dropped: ReadonlySet<number>): Promise<void> {
    if (ids.length === 0) return;
    const rows = await this.#chainRows(c, ids);
    const held = await this.#summarizedHops(c, ids);
    const plans: Plan[] = [];
    for (const id of ids) {
      const before = held.get(id) ?? [];
      const hops = before.filter(keep);
      if (hops.length === 0) continue;
      plans.push({
        id,
        row: rows.get(id),
        before,
        hops,
        updatedAt: maxReceived(hops),
        receivedFrom: hops.reduce((m, h) => Math.min(m, h.receivedAt), Infinity),
        touched: new Set(before.map((h) => h.messageId)),
        grew: true,
        rewriteTraces: true,
      });
    }
    const after: (() => void)[] = [];
    await this.write(c, plans, now, after, dropped);
    this.forget(ids);
  }
}
