/**
 * The real PostgreSQL for tests: a fresh database per test file, created
 * here and dropped at the end. A server that cannot be reached is a failure
 * that says what to do, never a skip.
 *
 * @example
 * const pg = await freshDatabase('store');   // in beforeAll
 * const url = pg.schemaUrl('s1');            // a store of its own in that database
 * await pg.drop();                           // in afterAll
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** The server's maintenance database, as the tests reach it. */
export const PG_ADMIN_URL = process.env.HOPTRACE_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface TestDatabase {
  name: string;
  /** URL of the database. */
  url: string;
  /** URL of a store in its own schema of this database. */
  schemaUrl(schema: string): string;
  /** Run SQL in the database (a connection of its own per call). */
  sql<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<R[]>;
  /** Drop the database, ending whatever is still connected to it. */
  drop(): Promise<void>;
}

async function admin(): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: PG_ADMIN_URL });
  try {
    await client.connect();
  } catch (cause) {
    throw new Error(
      `PostgreSQL is not reachable at ${PG_ADMIN_URL}: ${(cause as Error).message}. ` +
        'Start it with `pg_ctlcluster --skip-systemctl-redirect 15 main start` (or set HOPTRACE_TEST_PG) and run the tests again.',
      { cause },
    );
  }
  return client;
}

/** A new, empty database named after `label`. */
export async function freshDatabase(label: string): Promise<TestDatabase> {
  const name = `hoptrace_test_${label.replace(/[^a-z0-9]/g, '_')}_${randomBytes(4).toString('hex')}`;
  const client = await admin();
  try {
    await client.query(`CREATE DATABASE ${name}`);
  } finally {
    await client.end();
  }
  const base = new URL(PG_ADMIN_URL);
  base.pathname = `/${name}`;
  const url = base.toString();
  return {
    name,
    url,
    schemaUrl(schema) {
      const u = new URL(url);
      u.searchParams.set('schema', schema);
      return u.toString();
    },
    async sql(text, values) {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      try {
        return (await c.query(text, values)).rows;
      } finally {
        await c.end();
      }
    },
    async drop() {
      const c = await admin();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}
