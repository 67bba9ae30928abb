/**
 * Record rows as they cross from the collector's main thread, which parses
 * and encodes them, to the writer thread, which only inserts them: many rows
 * packed into one transferable buffer, so crossing costs one copy-free
 * message per write instead of a structured clone per row.
 *
 * One row: flags (u8: bit 0 message id is 16 UUID bytes, bit 1 correlation
 * id is, bit 2 correlation id equals message id), the message id (16 bytes,
 * or u32 length + UTF-8), the correlation id unless bit 2 (same form), the
 * dedupe key (f64), kind (u8), ts (f64), body length (u32) and body
 * (`record-codec.ts`).
 */
import { encodeRecordInto, putUuid, type ByteWriter, type StringTable } from './record-codec.ts';
import { dedupeKey, KIND_CODE, type IngestRecord } from './record-identity.ts';

const UUID_BYTES = 1;
const CORRELATION_UUID_BYTES = 2;
const CORRELATION_IS_MESSAGE = 4;

/** Packs rows for one write; `take()` hands the bytes over and starts again. */
export class RowPacker implements ByteWriter {
  buf = Buffer.allocUnsafe(64 * 1024);
  n = 0;
  rows = 0;

  ensure(more: number): void {
    if (this.n + more <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.n + more));
    this.buf.copy(next, 0, 0, this.n);
    this.buf = next;
  }

  #id(id: string, flagBit: number): number {
    if (putUuid(this, id)) return flagBit;
    const len = Buffer.byteLength(id);
    this.ensure(4 + len);
    this.buf.writeUInt32LE(len, this.n);
    this.buf.write(id, this.n + 4, 'utf8');
    this.n += 4 + len;
    return 0;
  }

  /** Append one validated record; on a throw (a record that is not one) nothing of it stays. */
  add(r: IngestRecord, strings: StringTable): void {
    const start = this.n;
    try {
      this.#add(r, strings);
    } catch (err) {
      this.n = start;
      throw err;
    }
  }

  #add(r: IngestRecord, strings: StringTable): void {
    const flagsAt = this.n;
    this.ensure(1);
    this.n++;
    let flags = this.#id(r.messageId, UUID_BYTES);
    const correlationId = r.correlationId ?? r.messageId;
    if (correlationId === r.messageId) flags |= CORRELATION_IS_MESSAGE;
    else if (this.#id(correlationId, CORRELATION_UUID_BYTES)) flags |= CORRELATION_UUID_BYTES;
    this.buf[flagsAt] = flags;
    this.ensure(21);
    this.buf.writeDoubleLE(dedupeKey(r), this.n);
    this.buf[this.n + 8] = KIND_CODE[r.kind];
    this.buf.writeDoubleLE(r.ts, this.n + 9);
    const lenAt = this.n + 17;
    this.n += 21;
    const start = this.n;
    encodeRecordInto(this, r as unknown as Record<string, unknown>, strings);
    this.buf.writeUInt32LE(this.n - start, lenAt);
    this.rows++;
  }

  /** The packed rows (a fresh ArrayBuffer, to transfer) and their count; the packer is empty again. */
  take(): { bytes: ArrayBuffer; rows: number } {
    const bytes = new ArrayBuffer(this.n);
    new Uint8Array(bytes).set(this.buf.subarray(0, this.n));
    const rows = this.rows;
    this.n = 0;
    this.rows = 0;
    return { bytes, rows };
  }
}

/** One unpacked row, ready to bind: ids as UUID bytes or text, the body a view into the packed bytes. */
export interface UnpackedRow {
  messageId: string | Uint8Array;
  correlationId: string | Uint8Array;
  dkey: number;
  kind: number;
  ts: number;
  body: Uint8Array;
}

/** Walk packed rows in order, reusing one row object (bind it before the next). */
export function* unpackRows(bytes: ArrayBuffer): Generator<UnpackedRow> {
  const buf = Buffer.from(bytes);
  const row: UnpackedRow = { messageId: '', correlationId: '', dkey: 0, kind: 0, ts: 0, body: buf.subarray(0, 0) };
  let i = 0;
  const id = (uuid: boolean): string | Uint8Array => {
    if (uuid) {
      i += 16;
      return buf.subarray(i - 16, i);
    }
    const len = buf.readUInt32LE(i);
    i += 4 + len;
    return buf.toString('utf8', i - len, i);
  };
  while (i < buf.length) {
    const flags = buf[i++];
    row.messageId = id((flags & UUID_BYTES) !== 0);
    row.correlationId = flags & CORRELATION_IS_MESSAGE ? row.messageId : id((flags & CORRELATION_UUID_BYTES) !== 0);
    row.dkey = buf.readDoubleLE(i);
    row.kind = buf[i + 8];
    row.ts = buf.readDoubleLE(i + 9);
    const len = buf.readUInt32LE(i + 17);
    i += 21;
    row.body = buf.subarray(i, i + len);
    i += len;
    yield row;
  }
}
