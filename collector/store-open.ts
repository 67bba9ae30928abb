/**
 * Which store a collector, `hoptrace import` or `hoptrace migrate` opens:
 * a SQLite file (the default) or a PostgreSQL database shared by several
 * collectors, named by one string.
 *
 * - `postgres://user@host:5432/db` (or `postgresql://`), optionally `?schema=name`;
 * - `sqlite:./hoptrace.db`, `sqlite:/var/lib/hoptrace.db`, or a bare path.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { ConfigError, StoreError } from './errors.ts';
import type { EngineSettings } from './chain-summary.ts';
import { PgStore, type PgStoreOptions } from './pg-store.ts';
import { Env } from './settings.ts';
import { SqliteStore } from './sqlite-store.ts';
import type { Store } from './store.ts';

/** The environment variable naming the store when no flag does. */
export const STORE_ENV = Env.HOPTRACE_STORE;

export type StoreSpec = { kind: 'sqlite'; path: string } | { kind: 'postgres'; url: string };

/** @throws ConfigError on a URL of another scheme */
export function parseStoreSpec(spec: string): StoreSpec {
  if (/^postgres(ql)?:\/\//i.test(spec)) return { kind: 'postgres', url: spec };
  if (spec.startsWith('sqlite:')) {
    const path = spec.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '');
    if (path.length === 0) throw new ConfigError(`store "${spec}" names no file: use sqlite:./hoptrace.db`);
    return { kind: 'sqlite', path };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(spec)) {
    throw new ConfigError(`store "${spec}": hoptrace stores in sqlite:PATH or postgres://…, not ${spec.slice(0, spec.indexOf(':'))}`);
  }
  return { kind: 'sqlite', path: spec };
}

export interface OpenStoreOptions {
  engine?: EngineSettings;
  /** SQLite only. */
  durability?: 'full' | 'normal';
  /** PostgreSQL only. */
  pg?: Omit<PgStoreOptions, 'url' | 'engine'>;
}

export async function openStore(spec: StoreSpec, options: OpenStoreOptions = {}): Promise<Store> {
  if (spec.kind === 'postgres') {
    try {
      return await PgStore.open({ ...options.pg, url: spec.url, engine: options.engine });
    } catch (err) {
      const advice = postgresAdvice(err);
      if (advice === undefined || !(err instanceof StoreError)) throw err;
      throw new StoreError(`${err.message}; ${advice}`, { cause: err.cause });
    }
  }
  return new SqliteStore({ path: spec.path, engine: options.engine, durability: options.durability });
}

/** What to do when PostgreSQL refuses a store, from the driver's error; undefined when there is nothing to add. */
export function postgresAdvice(err: unknown): string | undefined {
  const cause = (err as { cause?: unknown } | null)?.cause ?? err;
  const code = (cause as { code?: unknown } | null)?.code;
  if (code === 'ECONNREFUSED') return 'no PostgreSQL accepts connections there: start it, or correct the host and port of the postgres:// URL (--store or $HOPTRACE_STORE)';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'the host of the postgres:// URL does not resolve: correct it (--store or $HOPTRACE_STORE)';
  if (code === '28P01' || code === '28000') return 'PostgreSQL refused the login: check the user and password in the postgres:// URL, and pg_hba.conf';
  if (code === '3D000') return 'create the database first (createdb NAME, or CREATE DATABASE), or name an existing one in the postgres:// URL';
  return undefined;
}

/**
 * A store that is read from must already exist: opening a SQLite file creates
 * it, so a mistyped path would read as an empty store. @throws ConfigError
 */
export function requireExistingStore(spec: StoreSpec, flag: string): void {
  if (spec.kind === 'sqlite' && spec.path !== ':memory:' && !existsSync(spec.path)) {
    throw new ConfigError(`${flag} sqlite:${spec.path}: there is no store at ${resolve(spec.path)} (the file does not exist); check the path`);
  }
}

/** How logs and messages name a store (a PostgreSQL password masked). */
export function describeStore(store: Store): string | undefined {
  if (store instanceof SqliteStore) return `sqlite:${store.path}`;
  if (store instanceof PgStore) return store.url;
  return undefined;
}
