/**
 * The store's SQLite connection: opened once with the store's pragmas and
 * schema, statements prepared once per distinct text, write transactions,
 * and the closed state every job of the store checks.
 */
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { StoreError, ValidationError } from './errors.ts';
import { migrate } from './migrations.ts';

export interface SqliteDbOptions {
  /** Database file, created when missing (its directory must exist); `:memory:` for a throwaway store. */
  path: string;
  /** `full`: a commit survives a power cut; `normal`: a process crash. */
  durability: 'full' | 'normal';
  /** How long a write waits for another connection holding the lock. */
  busyTimeoutMs: number;
  /** SQLite page cache of this connection, MiB. @default 32 */
  cacheMiB?: number;
}

/** Wrap an error thrown in a write as the store's error (validation and store errors pass as they are). */
export function writeError(err: unknown): Error {
  if (err instanceof StoreError || err instanceof ValidationError) return err;
  return new StoreError(`store write failed: ${(err as Error).message}`, { cause: err });
}

export class SqliteDb {
  readonly path: string;
  readonly db: DatabaseSync;
  readonly #statements = new Map<string, StatementSync>();
  #closed = false;

  constructor(options: SqliteDbOptions) {
    this.path = options.path === ':memory:' ? options.path : resolve(options.path);
    if (this.path !== ':memory:' && !existsSync(dirname(this.path))) {
      // The caller decides which directories may be created (db-path.ts); here a missing one is an error.
      throw new StoreError(`cannot open the hoptrace database at ${this.path}: the directory ${dirname(this.path)} does not exist`);
    }
    try {
      this.db = new DatabaseSync(this.path, { timeout: options.busyTimeoutMs });
      this.db.exec('PRAGMA journal_mode = WAL');
      this.db.exec(`PRAGMA synchronous = ${options.durability === 'normal' ? 'NORMAL' : 'FULL'}`);
      this.db.exec('PRAGMA temp_store = MEMORY');
      this.db.exec(`PRAGMA cache_size = -${(options.cacheMiB ?? 32) * 1024}`);
      // Checkpoint every ~40 MB of WAL rather than 4: an index page written by many commits in a row
      // is copied into the database once per checkpoint, not once per few commits.
      this.db.exec('PRAGMA wal_autocheckpoint = 10000');
      migrate(this.db);
    } catch (cause) {
      throw new StoreError(`cannot open the hoptrace database at ${this.path}: ${(cause as Error).message}`, { cause });
    }
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The connection, or a 503 StoreError once the store is closed. */
  open(): DatabaseSync {
    if (this.#closed) throw new StoreError('the store is closed', { statusCode: 503 });
    return this.db;
  }

  /** A statement, prepared once per distinct SQL text. */
  prepared(sql: string): StatementSync {
    let stmt = this.#statements.get(sql);
    if (!stmt) {
      stmt = this.db.prepare(sql);
      this.#statements.set(sql, stmt);
    }
    return stmt;
  }

  /** Run `fn` in one write transaction; roll back and wrap the error when it throws. */
  transaction<T>(fn: () => T): T {
    const db = this.open();
    db.exec('BEGIN IMMEDIATE');
    try {
      const result = fn();
      db.exec('COMMIT');
      return result;
    } catch (err) {
      try {
        db.exec('ROLLBACK');
      } catch {
        // the failed statement may already have rolled back
      }
      throw writeError(err);
    }
  }

  /** Bytes the data occupies: used pages × page size (the WAL excluded). */
  usedBytes(): number {
    const db = this.open();
    const pages = (db.prepare('PRAGMA page_count').get() as { page_count: number }).page_count;
    const free = (db.prepare('PRAGMA freelist_count').get() as { freelist_count: number }).freelist_count;
    const size = (db.prepare('PRAGMA page_size').get() as { page_size: number }).page_size;
    return (pages - free) * size;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.db.exec('PRAGMA optimize');
    } catch {
      // best effort
    }
    this.db.close();
  }
}
