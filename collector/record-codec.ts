/**
 * The compact form a record takes in the store: the fields that are not
 * columns of their own, as tagged binary values instead of JSON text.
 *
 * - Names that repeat across millions of hops (service, instance, exchange,
 *   routing key, queue, consumer tag, content and message type) are numbers
 *   into a string table ({@link StringTable}); past its size limit a new name
 *   is written inline instead.
 * - Trace and span ids are their bytes (16 and 8), UUID-shaped ids 16 bytes.
 * - Non-negative integers are varints; other numbers float64.
 * - Headers and properties are key/value lists, the keys interned too.
 * - Other structured values (error, death) and any field this codec does not
 *   know are JSON.
 *
 * `decodeRecord(encodeRecord(r))` gives back every field of `r` with the
 * same value (a round-trip test keeps it so); only key order may differ.
 * The layout is stored data: a tag's meaning never changes, new fields get
 * new tags.
 */
import { UUID_PATTERN } from '../src/contract/ids.ts';

/** Interned names: the store keeps the table, the codec only asks it. */
export interface StringTable {
  /** The name's number, or undefined to write it inline. */
  idOf(text: string): number | undefined;
  /** The name behind a number (throws on an unknown one: a corrupt record). */
  textOf(id: number): string;
}

/** Value types of a field. */
const T = { IStr: 1, Str: 2, Hex: 3, Id: 4, Num: 5, Bool: 6, Json: 7, Obj: 8 } as const;
type FieldType = (typeof T)[keyof typeof T];

interface FieldSpec {
  name: string;
  tag: number;
  type: FieldType;
  /** Hex: the exact number of hex characters. */
  hexChars?: number;
}

// Tags are stored data: append, never renumber.
const FIELDS: readonly FieldSpec[] = [
  { name: 'service', tag: 1, type: T.IStr },
  { name: 'instance', tag: 2, type: T.IStr },
  { name: 'traceId', tag: 3, type: T.Hex, hexChars: 32 },
  { name: 'spanId', tag: 4, type: T.Hex, hexChars: 16 },
  { name: 'parentSpanId', tag: 5, type: T.Hex, hexChars: 16 },
  { name: 'causationId', tag: 6, type: T.Id },
  { name: 'exchange', tag: 7, type: T.IStr },
  { name: 'routingKey', tag: 8, type: T.IStr },
  { name: 'queue', tag: 9, type: T.IStr },
  { name: 'consumerTag', tag: 10, type: T.IStr },
  { name: 'deliveryTag', tag: 11, type: T.Num },
  { name: 'redelivered', tag: 12, type: T.Bool },
  { name: 'deathCount', tag: 13, type: T.Num },
  { name: 'death', tag: 14, type: T.Json },
  { name: 'outcome', tag: 15, type: T.IStr },
  { name: 'requeue', tag: 16, type: T.Bool },
  { name: 'multiple', tag: 17, type: T.Bool },
  { name: 'replyCode', tag: 18, type: T.Num },
  { name: 'replyText', tag: 19, type: T.Str },
  { name: 'durationMs', tag: 20, type: T.Num },
  { name: 'error', tag: 21, type: T.Json },
  { name: 'messageType', tag: 22, type: T.IStr },
  { name: 'contentType', tag: 23, type: T.IStr },
  { name: 'bodySize', tag: 24, type: T.Num },
  { name: 'headers', tag: 25, type: T.Obj },
  { name: 'properties', tag: 26, type: T.Obj },
  { name: 'payload', tag: 27, type: T.Str },
  { name: 'payloadTruncated', tag: 28, type: T.Bool },
  // version 2
  { name: 'open', tag: 29, type: T.Bool },
  { name: 'confirmMs', tag: 30, type: T.Num },
  { name: 'confirm', tag: 31, type: T.IStr },
  { name: 'processMs', tag: 32, type: T.Num },
  { name: 'settle', tag: 33, type: T.IStr },
  { name: 'settleMs', tag: 34, type: T.Num },
  { name: 'settleSpanId', tag: 35, type: T.Hex, hexChars: 16 },
  // set only when it differs from the record's message id (version 2 leaves it out then)
  { name: 'correlationId', tag: 36, type: T.Id },
  { name: 'truncated', tag: 37, type: T.Bool },
  // replay hops (written by the collector)
  { name: 'requestedBy', tag: 38, type: T.IStr },
];
/** Fields of no tag: JSON under this one. */
const EXTRA_TAG = 127;

const BY_NAME = new Map(FIELDS.map((f) => [f.name, f]));
const BY_TAG: (FieldSpec | undefined)[] = [];
for (const f of FIELDS) BY_TAG[f.tag] = f;

/** Fields that are columns of the store's row, never in the body. */
const COLUMN_FIELDS = new Set(['v', 'kind', 'ts', 'messageId']);

const HEX_RE = /^[0-9a-f]*$/;

/**
 * An id as the store keeps it: a lowercase UUID as its 16 bytes, anything
 * else as the string. Both sort and compare exactly; a UUID-shaped id and its
 * text never both occur, so lookups convert with the same function.
 */
export function packId(id: string): string | Uint8Array {
  if (id.length === 36 && UUID_PATTERN.test(id)) return Buffer.from(id.replace(/-/g, ''), 'hex');
  return id;
}

/** The id {@link packId} packed. */
export function unpackId(value: string | Uint8Array): string {
  if (typeof value === 'string') return value;
  const h = Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * The byte range of keys whose hex form starts with `hex` (lowercase hex
 * digits): `[lo, hi)`, `hi` undefined when the range runs to the end.
 */
export function hexPrefixRange(hex: string): { lo: Uint8Array; hi: Uint8Array | undefined } {
  const whole = hex.length >> 1;
  const lo = Buffer.alloc(whole + (hex.length & 1));
  Buffer.from(hex.slice(0, whole * 2), 'hex').copy(lo);
  if (hex.length & 1) lo[whole] = parseInt(hex[hex.length - 1], 16) << 4;
  // hi: the smallest key greater than every key starting with the prefix.
  const hi = Buffer.from(lo);
  let i = hex.length & 1 ? whole : whole - 1;
  let inc = hex.length & 1 ? 16 : 1;
  for (;;) {
    if (i < 0) return { lo, hi: undefined };
    const v = hi[i] + inc;
    if (v <= 255) {
      hi[i] = v;
      return { lo, hi: hi.subarray(0, i + 1) };
    }
    hi[i] = 0;
    i--;
    inc = 1;
  }
}

const UUID_SHAPE = '00000000-0000-0000-0000-000000000000';

/**
 * The packed ranges of ids starting with `prefix`, for index range scans:
 * `[lo, hi)` over text ids, and over UUID ids when the prefix is a prefix of
 * a lowercase UUID.
 */
export function packedPrefixRanges(prefix: string): { lo: string | Uint8Array; hi: string | Uint8Array | undefined }[] {
  const ranges: { lo: string | Uint8Array; hi: string | Uint8Array | undefined }[] = [{ lo: prefix, hi: prefix + '\uffff' }];
  const fits = prefix.length > 0 && prefix.length <= 36 && [...prefix].every((c, i) => (UUID_SHAPE[i] === '-' ? c === '-' : HEX_RE.test(c)));
  const hex = prefix.replace(/-/g, '');
  if (fits && hex.length > 0) ranges.push(hexPrefixRange(hex));
  return ranges;
}

/** Where an encoded body is written: a growable buffer and its fill level. */
export interface ByteWriter {
  buf: Buffer;
  n: number;
  /** Make room for `more` bytes past `n` (may replace `buf`). */
  ensure(more: number): void;
}

/** A growable byte buffer, reused between records. */
class Writer implements ByteWriter {
  buf = Buffer.allocUnsafe(4096);
  n = 0;

  ensure(more: number): void {
    if (this.n + more <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.n + more));
    this.buf.copy(next, 0, 0, this.n);
    this.buf = next;
  }
}

function putByte(w: ByteWriter, b: number): void {
  w.ensure(1);
  w.buf[w.n++] = b;
}

function putVarint(w: ByteWriter, v: number): void {
  w.ensure(10);
  while (v >= 0x80) {
    w.buf[w.n++] = (v % 0x80) | 0x80;
    v = Math.floor(v / 0x80);
  }
  w.buf[w.n++] = v;
}

function putUtf8(w: ByteWriter, s: string): void {
  // Room for the bytes after a 5-byte gap and for the varint itself, so nothing reallocates in between.
  w.ensure(s.length * 3 + 10);
  const start = w.n + 5;
  const len = w.buf.write(s, start, 'utf8');
  const lenBytes = len < 0x80 ? 1 : len < 0x4000 ? 2 : len < 0x200000 ? 3 : len < 0x10000000 ? 4 : 5;
  putVarint(w, len);
  if (lenBytes !== 5) w.buf.copy(w.buf, w.n, start, start + len);
  w.n += len;
}

/** Hex digit value of a char code, or -1. */
function nibble(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  return -1;
}

/** Lowercase hex of even length as bytes; false (nothing written) when it is not. */
function putHex(w: ByteWriter, s: string): boolean {
  w.ensure(s.length >> 1);
  const at = w.n;
  for (let i = 0, o = at; i < s.length; i += 2, o++) {
    const hi = nibble(s.charCodeAt(i));
    const lo = nibble(s.charCodeAt(i + 1));
    if (hi < 0 || lo < 0) return false;
    w.buf[o] = (hi << 4) | lo;
  }
  w.n = at + (s.length >> 1);
  return true;
}

/** A lowercase UUID's 16 bytes; false (nothing written) when `s` is not one. */
export function putUuid(w: ByteWriter, s: string): boolean {
  if (s.length !== 36 || s.charCodeAt(8) !== 45 || s.charCodeAt(13) !== 45 || s.charCodeAt(18) !== 45 || s.charCodeAt(23) !== 45) return false;
  w.ensure(16);
  const at = w.n;
  let o = at;
  for (let i = 0; i < 36; i++) {
    if (i === 8 || i === 13 || i === 18 || i === 23) continue;
    const hi = nibble(s.charCodeAt(i));
    const lo = nibble(s.charCodeAt(++i));
    if (hi < 0 || lo < 0) return false;
    w.buf[o++] = (hi << 4) | lo;
  }
  w.n = at + 16;
  return true;
}

function putFloat(w: ByteWriter, v: number): void {
  w.ensure(8);
  w.buf.writeDoubleLE(v, w.n);
  w.n += 8;
}

const writer = new Writer();

function writeField(w: ByteWriter, f: FieldSpec, value: unknown, strings: StringTable): boolean {
  switch (f.type) {
    case T.IStr:
    case T.Str: {
      if (typeof value !== 'string') return false;
      const id = f.type === T.IStr ? strings.idOf(value) : undefined;
      putByte(w, f.tag);
      if (id !== undefined) {
        putVarint(w, id * 2);
      } else {
        putByte(w, 1);
        putUtf8(w, value);
      }
      return true;
    }
    case T.Hex: {
      if (typeof value !== 'string' || value.length !== f.hexChars) return false;
      const at = w.n;
      putByte(w, f.tag);
      if (putHex(w, value)) return true;
      w.n = at;
      return false;
    }
    case T.Id: {
      if (typeof value !== 'string') return false;
      putByte(w, f.tag);
      const at = w.n;
      putByte(w, 0);
      if (!putUuid(w, value)) {
        w.n = at;
        putByte(w, 1);
        putUtf8(w, value);
      }
      return true;
    }
    case T.Num: {
      if (typeof value !== 'number') return false;
      putByte(w, f.tag);
      if (Number.isInteger(value) && value >= 0 && value < 2 ** 52) {
        putVarint(w, value * 2);
      } else {
        putByte(w, 1);
        putFloat(w, value);
      }
      return true;
    }
    case T.Bool: {
      if (typeof value !== 'boolean') return false;
      putByte(w, f.tag);
      putByte(w, value ? 1 : 0);
      return true;
    }
    case T.Json: {
      putByte(w, f.tag);
      putUtf8(w, JSON.stringify(value));
      return true;
    }
    case T.Obj: {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
      putByte(w, f.tag);
      putObject(w, value as Record<string, unknown>, strings);
      return true;
    }
  }
}

/** Value types inside an {@link T.Obj} field. */
const V = { Str: 0, Uint: 1, Float: 2, True: 3, False: 4, Null: 5, Json: 6 } as const;

/** A flat object: entry count, then each key (interned or inline) and its typed value. */
function putObject(w: ByteWriter, obj: Record<string, unknown>, strings: StringTable): void {
  let count = 0;
  for (const key in obj) if (obj[key] !== undefined) count++;
  putVarint(w, count);
  for (const key in obj) {
    const value = obj[key];
    if (value === undefined) continue;
    const id = strings.idOf(key);
    if (id !== undefined) putVarint(w, id * 2);
    else {
      putByte(w, 1);
      putUtf8(w, key);
    }
    if (typeof value === 'string') {
      putByte(w, V.Str);
      putUtf8(w, value);
    } else if (typeof value === 'number' && Number.isInteger(value) && value >= 0 && value < 2 ** 52) {
      putByte(w, V.Uint);
      putVarint(w, value);
    } else if (typeof value === 'number') {
      putByte(w, V.Float);
      putFloat(w, value);
    } else if (value === true || value === false) {
      putByte(w, value ? V.True : V.False);
    } else if (value === null) {
      putByte(w, V.Null);
    } else {
      putByte(w, V.Json);
      putUtf8(w, JSON.stringify(value));
    }
  }
}

/**
 * Append the body of a record to `w`: every field but the row's columns
 * (`v`, `kind`, `ts`, `messageId`). `correlationId` is left out when it
 * equals the message id.
 */
export function encodeRecordInto(w: ByteWriter, record: Readonly<Record<string, unknown>>, strings: StringTable): void {
  let extra: Record<string, unknown> | undefined;
  for (const name in record) {
    const value = record[name];
    if (value === undefined || COLUMN_FIELDS.has(name)) continue;
    if (name === 'correlationId' && value === record.messageId) continue;
    const f = BY_NAME.get(name);
    if (f === undefined || !writeField(w, f, value, strings)) (extra ??= {})[name] = value;
  }
  if (extra !== undefined) {
    putByte(w, EXTRA_TAG);
    putUtf8(w, JSON.stringify(extra));
  }
}

/**
 * The body of a record (see {@link encodeRecordInto}). The returned bytes are
 * valid until the next call: bind or copy them.
 */
export function encodeRecord(record: Readonly<Record<string, unknown>>, strings: StringTable): Uint8Array {
  writer.n = 0;
  encodeRecordInto(writer, record, strings);
  return writer.buf.subarray(0, writer.n);
}

/** Decoder state over one body. */
class Reader {
  buf: Buffer;
  i = 0;

  constructor(bytes: Uint8Array) {
    this.buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  byte(): number {
    if (this.i >= this.buf.length) throw new RangeError('record body ends early');
    return this.buf[this.i++];
  }

  varint(): number {
    let v = 0;
    let mul = 1;
    for (;;) {
      const b = this.byte();
      v += (b & 0x7f) * mul;
      if (b < 0x80) return v;
      mul *= 0x80;
    }
  }

  utf8(): string {
    const len = this.varint();
    const end = this.i + len;
    if (end > this.buf.length) throw new RangeError('record body ends early');
    const s = this.buf.toString('utf8', this.i, end);
    this.i = end;
    return s;
  }

  hex(bytes: number): string {
    const end = this.i + bytes;
    if (end > this.buf.length) throw new RangeError('record body ends early');
    const s = this.buf.toString('hex', this.i, end);
    this.i = end;
    return s;
  }
}

function uuidText(h: string): string {
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * The fields {@link encodeRecord} wrote, onto `into` (the caller sets the
 * column fields). Throws RangeError on a corrupt body.
 */
export function decodeRecord(bytes: Uint8Array, strings: StringTable, into: Record<string, unknown>): Record<string, unknown> {
  const r = new Reader(bytes);
  while (r.i < r.buf.length) {
    const tag = r.byte();
    if (tag === EXTRA_TAG) {
      Object.assign(into, JSON.parse(r.utf8()) as Record<string, unknown>);
      continue;
    }
    const f = BY_TAG[tag];
    if (f === undefined) throw new RangeError(`unknown field tag ${tag} in a stored record`);
    switch (f.type) {
      case T.IStr:
      case T.Str: {
        const v = r.varint();
        into[f.name] = v === 1 ? r.utf8() : strings.textOf(v / 2);
        break;
      }
      case T.Hex:
        into[f.name] = r.hex(f.hexChars! >> 1);
        break;
      case T.Id:
        into[f.name] = r.byte() === 0 ? uuidText(r.hex(16)) : r.utf8();
        break;
      case T.Num: {
        const v = r.varint();
        if (v === 1) {
          const at = r.i;
          r.i += 8;
          if (r.i > r.buf.length) throw new RangeError('record body ends early');
          into[f.name] = r.buf.readDoubleLE(at);
        } else into[f.name] = v / 2;
        break;
      }
      case T.Bool:
        into[f.name] = r.byte() === 1;
        break;
      case T.Json:
        into[f.name] = JSON.parse(r.utf8());
        break;
      case T.Obj:
        into[f.name] = readObject(r, strings);
        break;
    }
  }
  return into;
}

function readObject(r: Reader, strings: StringTable): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (let count = r.varint(); count > 0; count--) {
    const k = r.varint();
    const key = k === 1 ? r.utf8() : strings.textOf(k / 2);
    const type = r.byte();
    let value: unknown;
    if (type === V.Str) value = r.utf8();
    else if (type === V.Uint) value = r.varint();
    else if (type === V.Float) {
      const at = r.i;
      r.i += 8;
      if (r.i > r.buf.length) throw new RangeError('record body ends early');
      value = r.buf.readDoubleLE(at);
    } else if (type === V.True) value = true;
    else if (type === V.False) value = false;
    else if (type === V.Null) value = null;
    else if (type === V.Json) value = JSON.parse(r.utf8());
    else throw new RangeError(`unknown value type ${type} in a stored record`);
    // Object.defineProperty keeps a "__proto__" key a key, as JSON.parse did.
    Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
  }
  return out;
}
