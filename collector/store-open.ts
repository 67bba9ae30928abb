/**
 * Which store a collector, `hoptrace import` or `hoptrace migrate` opens:
 * a SQLite file (the default) or a PostgreSQL database shared by several
 * collectors, named by one string.
 *
 * - `postgres://user@host:5432/db` (or `postgresql://`), optionally `?schema=name`;
 * - `sqlite:./hoptrace.db`, `sqlite:/var/lib/hoptrace.db`, or a bare path.
 */
import { ConfigError } from './errors.ts';
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
  if (spec.kind === 'postgres') return PgStore.open({ ...options.pg, url: spec.url, engine: options.engine });
  return new SqliteStore({ path: spec.path, engine: options.engine, durability: options.durability });
}

/** How logs and messages name a store (a PostgreSQL password masked). */
export function describeStore(store: Store): string | undefined {
  if (store instanceof SqliteStore) return `sqlite:${store.path}`;
  if (store instanceof PgStore) return store.url;
  return undefined;
}
