/**
 * Both stores behind one factory, so a store test suite runs the same
 * assertions against SQLite and PostgreSQL:
 *
 * @example
 * for (const kind of storeKinds()) {
 *   describe(`${kind.name} store`, () => {
 *     beforeAll(() => kind.setup());
 *     afterAll(() => kind.teardown());
 *     it('…', async () => {
 *       const t = await kind.create();
 *       try { await t.store.insertHops(…) } finally { await t.store.close() }
 *     });
 *   });
 * }
 *
 * Each `create()` is an empty store of its own: a new SQLite file, or a new
 * schema in the test run's PostgreSQL database (created by `setup()` and
 * dropped by `teardown()`).
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import type { EngineSettings } from '../../collector/chain-summary.ts';
import { PgStore } from '../../collector/pg-store.ts';
import { pgId } from '../../collector/pg-ids.ts';
import { packId } from '../../collector/record-codec.ts';
import { SqliteStore } from '../../collector/sqlite-store.ts';
import type { Store } from '../../collector/store.ts';
import { freshDatabase, type TestDatabase } from './postgres.ts';

export interface TestStore {
  store: Store;
  /** Where it lives: a file path or a PostgreSQL URL (for `--store`). */
  location: string;
  /** Close the store (if open) and open it again on the same data. */
  reopen(options?: { engine?: EngineSettings }): Promise<Store>;
  /** Records of a chain as another connection sees them (committed ones). */
  committedRecords(correlationId: string): Promise<number>;
  /**
   * Topology aggregates as comparable rows `[bucket, from, to, count, errors, waits]`,
   * summed over whatever the database splits them by, rows that net to nothing left out.
   */
  topologyRows(): Promise<unknown[]>;
  /**
   * Failure-group aggregates: per-minute counts `{fingerprint, bucket, count, unresolved}` in
   * (fingerprint, bucket) order, rows that net to nothing left out; the described groups'
   * fingerprints; and how many `g:` tags the chains hold.
   */
  failureRows(): Promise<FailureRows>;
}

export interface FailureRows {
  buckets: { fingerprint: string; bucket: number; count: number; unresolved: number }[];
  described: string[];
  tags: number;
}

export interface StoreKind {
  name: 'SQLite' | 'PostgreSQL';
  setup(): Promise<void>;
  teardown(): Promise<void>;
  /**
   * A new empty store; `poison`: any insert of a record of that chain fails (a real trigger), as a full
   * disk would; `partitionMs`: PostgreSQL's partition width (retention drops whole partitions; SQLite ignores it).
   */
  create(options?: { engine?: EngineSettings; poison?: string; partitionMs?: number }): Promise<TestStore>;
}

function sqliteKind(): StoreKind {
  let dir = '';
  return {
    name: 'SQLite',
    async setup() {
      dir = mkdtempSync(join(tmpdir(), 'hoptrace-store-'));
    },
    async teardown() {
      rmSync(dir, { recursive: true, force: true });
    },
    async create(options = {}) {
      const path = join(dir, `${randomUUID()}.db`);
      if (options.poison !== undefined) {
        await new SqliteStore({ path }).close();
        const db = new DatabaseSync(path);
        db.exec(`CREATE TRIGGER poison BEFORE INSERT ON records WHEN NEW.correlation_id = '${options.poison}' BEGIN SELECT RAISE(ABORT, 'poisoned'); END`);
        db.close();
      }
      const t: TestStore = {
        store: new SqliteStore({ path, engine: options.engine }),
        location: path,
        async reopen(again = {}) {
          await t.store.close();
          t.store = new SqliteStore({ path, engine: again.engine ?? options.engine });
          return t.store;
        },
        async committedRecords(correlationId) {
          const db = new DatabaseSync(path, { readOnly: true });
          try {
            return (db.prepare('SELECT count(*) AS n FROM records WHERE correlation_id = ?').get(packId(correlationId)) as { n: number }).n;
          } finally {
            db.close();
          }
        },
        async topologyRows() {
          const db = new DatabaseSync(path, { readOnly: true });
          try {
            return db.prepare('SELECT bucket, from_node, to_node, count, errors, waits FROM topology_buckets ORDER BY 1, 2, 3').all().map((r) => Object.values(r));
          } finally {
            db.close();
          }
        },
        async failureRows() {
          const db = new DatabaseSync(path, { readOnly: true });
          try {
            return {
              buckets: db
                .prepare('SELECT fingerprint, bucket, count, unresolved FROM failure_buckets WHERE count <> 0 OR unresolved <> 0 ORDER BY 1, 2')
                .all()
                .map((r) => ({ ...r }) as FailureRows['buckets'][number]),
              described: (db.prepare('SELECT fingerprint FROM failure_groups').all() as { fingerprint: string }[]).map((r) => r.fingerprint),
              tags: (db.prepare("SELECT count(*) AS n FROM chain_tags WHERE tag LIKE 'g:%'").get() as { n: number }).n,
            };
          } finally {
            db.close();
          }
        },
      };
      return t;
    },
  };
}

function postgresKind(): StoreKind {
  let db: TestDatabase | undefined;
  let n = 0;
  const database = () => {
    if (!db) throw new Error('the PostgreSQL store kind was not set up (call setup() in beforeAll)');
    return db;
  };
  return {
    name: 'PostgreSQL',
    async setup() {
      db = await freshDatabase('store');
    },
    async teardown() {
      await db?.drop();
    },
    async create(options = {}) {
      const schema = `s${++n}_${randomUUID().slice(0, 8)}`;
      const url = database().schemaUrl(schema) + (options.partitionMs === undefined ? '' : `&partition_ms=${options.partitionMs}`);
      let store = await PgStore.open({ url, engine: options.engine, poolSize: 4 });
      if (options.poison !== undefined) {
        await database().sql(`
          CREATE FUNCTION ${schema}.poison() RETURNS trigger LANGUAGE plpgsql AS $$
          BEGIN RAISE EXCEPTION 'poisoned'; END $$;
          CREATE TRIGGER poison BEFORE INSERT ON ${schema}.records FOR EACH ROW
            WHEN (NEW.correlation_id = '\\x${pgId(options.poison).toString('hex')}'::bytea) EXECUTE FUNCTION ${schema}.poison();
        `);
      }
      const t: TestStore = {
        store,
        location: url,
        async reopen(again = {}) {
          await t.store.close();
          store = await PgStore.open({ url, engine: again.engine ?? options.engine, poolSize: 4 });
          t.store = store;
          return store;
        },
        async committedRecords(correlationId) {
          const rows = await database().sql<{ n: number }>(`SELECT count(*)::int AS n FROM ${schema}.records WHERE correlation_id = $1`, [pgId(correlationId)]);
          return rows[0].n;
        },
        async topologyRows() {
          const edges = await database().sql<{ bucket: string; from_node: string; to_node: string; count: number; errors: number }>(
            `SELECT bucket, from_node, to_node, sum(count)::int AS count, sum(errors)::int AS errors FROM ${schema}.topology_buckets
             GROUP BY 1, 2, 3 HAVING sum(count) <> 0 OR sum(errors) <> 0 ORDER BY 1, 2, 3`,
          );
          const waits = await database().sql<{ bucket: string; from_node: string; to_node: string; bin: number; n: number; s: string }>(
            `SELECT bucket, from_node, to_node, bin, sum(n)::int AS n, sum(sum_us)::text AS s FROM ${schema}.topology_waits
             GROUP BY 1, 2, 3, 4 HAVING sum(n) <> 0 OR sum(sum_us) <> 0 ORDER BY 1, 2, 3, 4`,
          );
          return edges.map((e) => {
            const flat = waits
              .filter((w) => w.bucket === e.bucket && w.from_node === e.from_node && w.to_node === e.to_node)
              .flatMap((w) => [w.bin, w.n, Number(w.s)]);
            return [Number(e.bucket), e.from_node, e.to_node, e.count, e.errors, flat.length ? JSON.stringify(flat) : null];
          });
        },
        async failureRows() {
          const buckets = await database().sql<FailureRows['buckets'][number]>(
            `SELECT fingerprint, bucket::float8 AS bucket, count, unresolved FROM ${schema}.failure_buckets
             WHERE count <> 0 OR unresolved <> 0 ORDER BY fingerprint COLLATE "C", bucket`,
          );
          const described = await database().sql<{ fingerprint: string }>(`SELECT fingerprint FROM ${schema}.failure_groups`);
          const tags = await database().sql<{ n: number }>(`SELECT count(*)::int AS n FROM ${schema}.chain_tags WHERE tag LIKE 'g:%'`);
          return { buckets: buckets.map((b) => ({ ...b })), described: described.map((r) => r.fingerprint), tags: tags[0].n };
        },
      };
      return t;
    },
  };
}

/** SQLite and PostgreSQL, in that order. */
export function storeKinds(): StoreKind[] {
  return [sqliteKind(), postgresKind()];
}
