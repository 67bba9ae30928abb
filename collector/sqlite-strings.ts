/**
 * The string table behind the record codec (`record-codec.ts`): names that
 * repeat across hops stored once, each record holding a small number. The
 * whole table lives in memory (it holds names, not data). The main thread
 * numbers a new name when it encodes the first record using it; the name
 * travels to the writer thread with the next group commit, ahead of that
 * group's records, and again with every later group until one commits.
 */
import type { StringTable } from './record-codec.ts';
import type { SqliteDb } from './sqlite-db.ts';

/** Names kept at most; past it new names are written inline in the record (high-cardinality routing keys, say). */
export const MAX_INTERNED_STRINGS = 200_000;
/** Longer strings are never interned. */
const MAX_INTERNED_LENGTH = 256;

export class SqliteStrings implements StringTable {
  readonly #ids = new Map<string, number>();
  readonly #texts: string[] = [''];
  /** Numbered but not yet known to be stored. */
  #unsent: [number, string][] = [];

  constructor(db: SqliteDb) {
    for (const row of db.db.prepare('SELECT id, text FROM strings ORDER BY id').iterate() as Iterable<{ id: number; text: string }>) {
      this.#ids.set(row.text, row.id);
      this.#texts[row.id] = row.text;
    }
  }

  get size(): number {
    return this.#ids.size;
  }

  /** A name's number, numbering it while there is room. */
  idOf(text: string): number | undefined {
    const id = this.#ids.get(text);
    if (id !== undefined) return id;
    if (this.#ids.size >= MAX_INTERNED_STRINGS || text.length > MAX_INTERNED_LENGTH) return undefined;
    const next = this.#texts.length;
    this.#ids.set(text, next);
    this.#texts[next] = text;
    this.#unsent.push([next, text]);
    return next;
  }

  textOf(id: number): string {
    const text = this.#texts[id];
    if (text === undefined) throw new RangeError(`unknown string id ${id} in a stored record`);
    return text;
  }

  /** The names a group commit must write first (every one not yet stored). */
  unsent(): [number, string][] {
    const out = this.#unsent;
    this.#unsent = [];
    return out;
  }

  /** The group carrying them failed: send them with the next one. */
  notSent(names: readonly [number, string][]): void {
    this.#unsent = [...names, ...this.#unsent];
  }
}
