/**
 * The string table behind the record codec (`record-codec.ts`): names that
 * repeat across hops stored once, each record holding a small number. The
 * whole table lives in memory (it holds names, not data); a new name is
 * written in the transaction of the first record that uses it, and forgotten
 * again if that transaction rolls back.
 */
import type { StatementSync } from 'node:sqlite';
import type { StringTable } from './record-codec.ts';
import type { SqliteDb } from './sqlite-db.ts';

/** Names kept at most; past it new names are written inline in the record (high-cardinality routing keys, say). */
export const MAX_INTERNED_STRINGS = 200_000;
/** Longer strings are never interned. */
const MAX_INTERNED_LENGTH = 256;

export class SqliteStrings implements StringTable {
  readonly #ids = new Map<string, number>();
  readonly #texts: string[] = [''];
  readonly #insert: StatementSync;
  /** Names added in the open write transaction: forgotten on rollback. */
  #uncommitted: string[] = [];

  constructor(db: SqliteDb) {
    for (const row of db.db.prepare('SELECT id, text FROM strings ORDER BY id').iterate() as Iterable<{ id: number; text: string }>) {
      this.#ids.set(row.text, row.id);
      this.#texts[row.id] = row.text;
    }
    this.#insert = db.db.prepare('INSERT INTO strings (id, text) VALUES (?, ?)');
  }

  get size(): number {
    return this.#ids.size;
  }

  /** A name's number, adding it (inside the caller's write transaction) while there is room. */
  idOf(text: string): number | undefined {
    const id = this.#ids.get(text);
    if (id !== undefined) return id;
    if (this.#ids.size >= MAX_INTERNED_STRINGS || text.length > MAX_INTERNED_LENGTH) return undefined;
    const next = this.#texts.length;
    this.#insert.run(next, text);
    this.#ids.set(text, next);
    this.#texts[next] = text;
    this.#uncommitted.push(text);
    return next;
  }

  textOf(id: number): string {
    const text = this.#texts[id];
    if (text === undefined) throw new RangeError(`unknown string id ${id} in a stored record`);
    return text;
  }

  /** The write transaction committed: its names stay. */
  committed(): void {
    this.#uncommitted = [];
  }

  /** Where the open transaction stands, for {@link rolledBackTo} after a savepoint's rollback. */
  mark(): number {
    return this.#uncommitted.length;
  }

  /** A savepoint rolled back: forget the names added since `mark`. */
  rolledBackTo(mark: number): void {
    for (let i = this.#uncommitted.length - 1; i >= mark; i--) {
      const text = this.#uncommitted[i];
      const id = this.#ids.get(text)!;
      this.#ids.delete(text);
      this.#texts.length = Math.min(this.#texts.length, id);
    }
    this.#uncommitted.length = mark;
  }

  /** The write transaction rolled back: its names were never stored. */
  rolledBack(): void {
    this.rolledBackTo(0);
  }
}
