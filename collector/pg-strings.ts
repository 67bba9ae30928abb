/**
 * The string table of the record codec in PostgreSQL, shared by every
 * collector on the database. Unlike the SQLite one, a new name is written in
 * a statement of its own before the records that use it (a name stored for
 * a write that then fails costs a row, nothing else), so two collectors never
 * wait on each other's write transactions for a name. A name another
 * collector added is read when a record first needs it.
 */
import type { PgDb } from './pg-db.ts';
import { encodeRecord, type StringTable } from './record-codec.ts';
import type { IngestRecord } from './record-identity.ts';

/** Names kept at most; past it new names are written inline (as in sqlite-strings.ts). */
export const MAX_INTERNED_STRINGS = 200_000;
const MAX_INTERNED_LENGTH = 256;

/** A record refers to a name this collector has not read yet. */
export class UnknownStringError extends RangeError {
  readonly id: number;
  constructor(id: number) {
    super(`unknown string id ${id} in a stored record`);
    this.id = id;
  }
}

export class PgStrings implements StringTable {
  readonly #db: PgDb;
  readonly #ids = new Map<string, number>();
  readonly #texts = new Map<number, string>();
  #maxId = 0;
  /** While encoding a batch: names not known yet, interned before the batch is encoded for good. */
  #missing: Set<string> | undefined;

  constructor(db: PgDb) {
    this.#db = db;
  }

  async load(): Promise<void> {
    await this.#read(await this.#db.query<{ id: number; text: string }>('SELECT id, text FROM strings WHERE id > $1', [this.#maxId]));
  }

  #read(rows: readonly { id: number; text: string }[]): void {
    for (const r of rows) {
      this.#ids.set(r.text, r.id);
      this.#texts.set(r.id, r.text);
      if (r.id > this.#maxId) this.#maxId = r.id;
    }
  }

  idOf(text: string): number | undefined {
    const id = this.#ids.get(text);
    if (id !== undefined) return id;
    if (this.#missing !== undefined && this.#ids.size < MAX_INTERNED_STRINGS && text.length <= MAX_INTERNED_LENGTH) this.#missing.add(text);
    return undefined;
  }

  textOf(id: number): string {
    const text = this.#texts.get(id);
    if (text !== undefined) return text;
    if (this.#unknown === undefined) throw new UnknownStringError(id);
    this.#unknown.add(id);
    return '';
  }

  /** While decoding in {@link decodeAll}'s first pass: ids not known yet. */
  #unknown: Set<number> | undefined;

  /**
   * Decode with every name known: a first pass notes the ids other
   * collectors added (ids are not committed in order, so "newer than the
   * largest known" is not enough), one query reads them all, and only then
   * is the result kept.
   */
  async decodeAll<T>(decode: () => T): Promise<T> {
    const unknown = new Set<number>();
    this.#unknown = unknown;
    let result: T;
    try {
      result = decode();
    } finally {
      this.#unknown = undefined;
    }
    if (unknown.size === 0) return result;
    const rows = await this.#db.query<{ id: number; text: string }>('SELECT id, text FROM strings WHERE id > $1 OR id = ANY($2::int[])', [
      this.#maxId,
      [...unknown],
    ]);
    this.#read(rows);
    return decode();
  }

  /**
   * Encode records' bodies, interning their new names first. The bytes are
   * copies (the codec reuses its buffer).
   */
  async encodeAll(records: readonly IngestRecord[]): Promise<Buffer[]> {
    const encode = () => records.map((r) => Buffer.from(encodeRecord(r as unknown as Record<string, unknown>, this)));
    const missing = new Set<string>();
    this.#missing = missing;
    let bodies: Buffer[];
    try {
      bodies = encode();
    } finally {
      this.#missing = undefined;
    }
    if (missing.size === 0) return bodies;
    // New names: store them, then encode again so the records refer to them.
    await this.intern([...missing]);
    return encode();
  }

  /** Store names (whoever stores one first gives it its id) and learn their ids. */
  async intern(texts: readonly string[]): Promise<void> {
    if (texts.length === 0) return;
    // In one order everywhere: two collectors adding the same new names never deadlock on them.
    const sorted = [...texts].sort();
    await this.#db.query(
      'INSERT INTO strings (text) SELECT t FROM unnest($1::text[]) WITH ORDINALITY AS u (t, o) ORDER BY o ON CONFLICT (text) DO NOTHING',
      [sorted],
      'interning names',
    );
    const rows = await this.#db.query<{ id: number; text: string }>('SELECT id, text FROM strings WHERE text = ANY($1::text[])', [texts]);
    this.#read(rows);
  }

}
