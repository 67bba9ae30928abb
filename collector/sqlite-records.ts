/**
 * Reading records back: a chain's or a message's rows, decoded
 * (`record-codec.ts`) and expanded into the hops they stand for, each hop
 * once.
 */
import type { StatementSync } from 'node:sqlite';
import type { HopRecord, HopRecordV2 } from '../src/contract/hop.ts';
import type { StoredHop } from './api-types.ts';
import { expandRecordV2 } from './hop-v2.ts';
import { decodeRecord, packId, unpackId } from './record-codec.ts';
import { distinctHops, isV2Code, kindOfCode } from './record-identity.ts';
import { hopId } from './sqlite-commit.ts';
import type { SqliteDb } from './sqlite-db.ts';
import type { SqliteStrings } from './sqlite-strings.ts';

/** The columns a read selects, in this order. */
export const RECORD_COLUMNS = 'id, message_id, correlation_id, kind, ts, received_at, body';

export interface RecordRow {
  id: number;
  message_id: string | Uint8Array;
  correlation_id: string | Uint8Array;
  kind: number;
  ts: number;
  received_at: number;
  body: Uint8Array;
}

export class SqliteRecords {
  readonly #db: SqliteDb;
  readonly #strings: SqliteStrings;
  readonly #byChain: StatementSync;
  readonly #byMessage: StatementSync;
  readonly #chainsOfMessage: StatementSync;

  constructor(db: SqliteDb, strings: SqliteStrings) {
    this.#db = db;
    this.#strings = strings;
    this.#byChain = db.db.prepare(`SELECT ${RECORD_COLUMNS} FROM records WHERE correlation_id = ? ORDER BY id`);
    this.#byMessage = db.db.prepare(`SELECT ${RECORD_COLUMNS} FROM records WHERE message_id = ? ORDER BY id`);
    this.#chainsOfMessage = db.db.prepare('SELECT DISTINCT correlation_id FROM records WHERE message_id = ?');
  }

  /**
   * The hops one row stands for, as stored hops (ids from the row id). A row
   * that does not decode or expand (a record stored through the store's own
   * API without validation, or a damaged page) stands for none: one bad row
   * never makes a read fail.
   */
  rowHops(row: RecordRow, correlationId?: string): StoredHop[] {
    const out: StoredHop[] = [];
    this.#pushRowHops(row, correlationId, out);
    return out;
  }

  /** Append a row's hops to `out`; nothing for a row that does not decode or expand. */
  #pushRowHops(row: RecordRow, correlationId: string | undefined, out: StoredHop[]): void {
    let hops: HopRecord[];
    let v2: boolean;
    try {
      v2 = isV2Code(row.kind);
      const rec = decodeRecord(row.body, this.#strings, { v: v2 ? 2 : 1, kind: kindOfCode(row.kind), ts: row.ts, messageId: unpackId(row.message_id) });
      rec.correlationId = correlationId ?? unpackId(row.correlation_id);
      hops = v2 ? expandRecordV2(rec as unknown as HopRecordV2, rec.instance as string) : [rec as unknown as HopRecord];
    } catch {
      return;
    }
    for (let k = 0; k < hops.length; k++) {
      const h = hops[k] as StoredHop;
      h.id = hopId(row.id, k, v2);
      h.receivedAt = row.received_at;
      out.push(h);
    }
  }

  /** Rows in id order → their hops, each hop once. @param correlationId the rows' chain, when they are one chain's */
  hopsOf(rows: readonly RecordRow[], correlationId?: string): StoredHop[] {
    const hops: StoredHop[] = [];
    let v2 = false;
    for (const row of rows) {
      if (isV2Code(row.kind)) v2 = true;
      this.#pushRowHops(row, correlationId, hops);
    }
    // Only a version-2 record's hops can have a twin (from the open record of the same delivery).
    return v2 ? distinctHops(hops) : hops;
  }

  /** Every hop of a chain, in record order. */
  chainHops(correlationId: string): StoredHop[] {
    this.#db.open();
    return this.hopsOf(this.#byChain.all(packId(correlationId)) as unknown as RecordRow[], correlationId);
  }

  /** Every stored row of a chain, in id order. */
  chainRows(correlationId: string): RecordRow[] {
    return this.#byChain.all(packId(correlationId)) as unknown as RecordRow[];
  }

  /** Every hop of a message (whatever its chain), in record order. */
  messageHops(messageId: string): StoredHop[] {
    return this.hopsOf(this.#byMessage.all(packId(messageId)) as unknown as RecordRow[]);
  }

  /** Correlation ids of the chains holding records of this message. */
  messageChains(messageId: string): string[] {
    this.#db.open();
    const rows = this.#chainsOfMessage.all(packId(messageId)) as { correlation_id: string | Uint8Array }[];
    return rows.map((r) => unpackId(r.correlation_id));
  }
}
