/**
 * Reading records back from PostgreSQL: a chain's or a message's rows,
 * decoded (`record-codec.ts`) and expanded into the hops they stand for, each
 * hop once — as `sqlite-records.ts` does, with the names other collectors
 * interned read on first use.
 */
import type pg from 'pg';
import type { HopRecord, HopRecordV2 } from '../src/contract/hop.ts';
import type { StoredHop } from './api-types.ts';
import { expandRecordV2 } from './hop-v2.ts';
import type { PgDb } from './pg-db.ts';
import { fromPgId, pgId } from './pg-ids.ts';
import type { PgStrings } from './pg-strings.ts';
import { decodeRecord } from './record-codec.ts';
import { distinctHops, isV2Code, kindOfCode } from './record-identity.ts';

/** The columns a read selects. */
export const PG_RECORD_COLUMNS = 'id, message_id, correlation_id, kind, ts, received_at, body';

export interface PgRecordRow {
  id: number;
  message_id: Buffer;
  correlation_id: Buffer;
  kind: number;
  ts: number;
  received_at: number;
  body: Buffer;
  /** Present when the query selects it (`xid::text`). */
  xid?: string;
}

/** A stored hop's id: its record's id and its place among the hops the record stands for (as sqlite-commit.ts). */
export const pgHopId = (recordId: number, k: number): number => recordId * 8 + k;
/** The record id of a hop id. */
export const recordIdOf = (hopId: number): number => Math.floor(hopId / 8);

export class PgRecords {
  readonly #db: PgDb;
  readonly #strings: PgStrings;

  constructor(db: PgDb, strings: PgStrings) {
    this.#db = db;
    this.#strings = strings;
  }

  /** The record a row holds (version 1 hop or version 2 record, with its correlation id). */
  #record(row: PgRecordRow): Record<string, unknown> {
    const rec = decodeRecord(row.body, this.#strings, { v: isV2Code(row.kind) ? 2 : 1, kind: kindOfCode(row.kind), ts: row.ts, messageId: fromPgId(row.message_id) });
    rec.correlationId = fromPgId(row.correlation_id);
    return rec;
  }

  /** The hops one row stands for, as stored hops (ids from the record id). */
  rowHops(row: PgRecordRow): StoredHop[] {
    const rec = this.#record(row);
    const hops: HopRecord[] = rec.v === 2 ? expandRecordV2(rec as unknown as HopRecordV2, rec.instance as string) : [rec as unknown as HopRecord];
    return hops.map((h, k) => Object.assign(h, { id: pgHopId(row.id, k), receivedAt: row.received_at }));
  }

  /** Every hop of the rows, in row order, repeats kept; reads names other collectors added first. */
  async allHops(rows: readonly PgRecordRow[]): Promise<StoredHop[]> {
    return this.#strings.decodeAll(() => {
      const hops: StoredHop[] = [];
      for (const row of rows) for (const h of this.rowHops(row)) hops.push(h);
      return hops;
    });
  }

  /** The records of the rows (for `hoptrace migrate` and tests). */
  async records(rows: readonly PgRecordRow[]): Promise<Record<string, unknown>[]> {
    return this.#strings.decodeAll(() => rows.map((r) => this.#record(r)));
  }

  /** Rows in id order → their hops, each hop once. */
  async hopsOf(rows: readonly PgRecordRow[]): Promise<StoredHop[]> {
    return distinctHops(await this.allHops(rows));
  }

  /** Every hop of a chain, in record order. */
  async chainHops(correlationId: string, client?: pg.ClientBase): Promise<StoredHop[]> {
    const sql = `SELECT ${PG_RECORD_COLUMNS} FROM records WHERE correlation_id = $1 ORDER BY id`;
    const rows = client ? (await client.query<PgRecordRow>(sql, [pgId(correlationId)])).rows : await this.#db.query<PgRecordRow>(sql, [pgId(correlationId)]);
    return this.hopsOf(rows);
  }

  /** Every hop of each message (whatever its chain), each message's in record order. */
  async messagesHops(messageIds: readonly string[], client?: pg.ClientBase): Promise<Map<string, StoredHop[]>> {
    const out = new Map<string, StoredHop[]>();
    if (messageIds.length === 0) return out;
    const sql = `SELECT ${PG_RECORD_COLUMNS} FROM records WHERE message_id = ANY($1::bytea[]) ORDER BY id`;
    const values = [messageIds.map(pgId)];
    const rows = client ? (await client.query<PgRecordRow>(sql, values)).rows : await this.#db.query<PgRecordRow>(sql, values);
    const byMessage = new Map<string, PgRecordRow[]>();
    for (const r of rows) {
      const m = fromPgId(r.message_id);
      const list = byMessage.get(m);
      if (list) list.push(r);
      else byMessage.set(m, [r]);
    }
    for (const [m, list] of byMessage) out.set(m, await this.hopsOf(list));
    return out;
  }

  /** Correlation ids of the chains holding records of this message. */
  async messageChains(messageId: string): Promise<string[]> {
    const rows = await this.#db.query<{ correlation_id: Buffer }>('SELECT DISTINCT correlation_id FROM records WHERE message_id = $1', [pgId(messageId)]);
    return rows.map((r) => fromPgId(r.correlation_id));
  }
}
