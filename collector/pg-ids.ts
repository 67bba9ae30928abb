/**
 * Message and correlation ids as the PostgreSQL store keeps them: one
 * `bytea` column for both shapes `packId` knows. A lowercase UUID is its 16
 * bytes; any other id is 0xff followed by its UTF-8 (a byte UTF-8 never
 * holds), with one more 0xff when that would make exactly 16 bytes. So a
 * 16-byte value is always a UUID, and both shapes sort and compare exactly.
 */
import { hexPrefixRange, packId, unpackId } from './record-codec.ts';

const MARK = 0xff;

/** An id as a `bytea` value. */
export function pgId(id: string): Buffer {
  const packed = packId(id);
  if (typeof packed !== 'string') return packed as Buffer;
  const utf8 = Buffer.from(packed, 'utf8');
  const out = Buffer.allocUnsafe(utf8.length + (utf8.length === 15 ? 2 : 1));
  out[0] = MARK;
  utf8.copy(out, 1);
  if (utf8.length === 15) out[16] = MARK;
  return out;
}

/** The id {@link pgId} packed. */
export function fromPgId(value: Uint8Array): string {
  if (value.length === 16) return unpackId(value);
  const end = value.length === 17 && value[16] === MARK ? 16 : value.length;
  return Buffer.from(value.buffer, value.byteOffset + 1, end - 1).toString('utf8');
}

/** A byte range `[lo, hi)` over the id column, and which shape of id it covers. */
export interface PgIdRange {
  lo: Buffer;
  hi: Buffer | undefined;
  /** UUID ranges hold 16-byte values only, text ranges every other length. */
  uuid: boolean;
}

/**
 * The ranges of ids starting with `prefix`: over text ids, and over UUIDs
 * when the prefix is the start of a lowercase UUID.
 */
export function pgIdPrefixRanges(prefix: string): PgIdRange[] {
  const utf8 = Buffer.from(prefix, 'utf8');
  const lo = Buffer.concat([Buffer.from([MARK]), utf8]);
  // Every text id starting with the prefix: its bytes, then bytes below 0xff, or the one 0xff of padding.
  const ranges: PgIdRange[] = [{ lo, hi: Buffer.concat([lo, Buffer.from([MARK, MARK])]), uuid: false }];
  if (isUuidPrefix(prefix)) {
    const r = hexPrefixRange(prefix.replace(/-/g, ''));
    ranges.push({ lo: Buffer.from(r.lo), hi: r.hi === undefined ? undefined : Buffer.from(r.hi), uuid: true });
  }
  return ranges;
}

const UUID_SHAPE = '00000000-0000-0000-0000-000000000000';

function isUuidPrefix(prefix: string): boolean {
  if (prefix.length === 0 || prefix.length > 36) return false;
  for (let i = 0; i < prefix.length; i++) {
    const c = prefix[i];
    if (UUID_SHAPE[i] === '-' ? c !== '-' : !/[0-9a-f]/.test(c)) return false;
  }
  return true;
}
