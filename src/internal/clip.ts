/**
 * Every value the library copies into a record, made to fit the limits the
 * collector checks (`HopLimits` in `src/contract/hop.ts`, the one shared definition):
 * strings cut to a length with a `…` marker, counts made non-negative
 * integers, times made finite, lists cut to a number of entries. A record
 * the library writes is therefore always one the collector accepts.
 *
 * Whoever cuts a value says so: a cut string ends with {@link ELLIPSIS}, and
 * the record (or the error) carries `truncated: true`.
 */
import { HopLimits } from '../contract/hop.ts';

/** Marks the end of a string that was cut. */
export const ELLIPSIS = '…';

/** Whether something was cut while building one record (or one error). */
export interface Cut {
  truncated: boolean;
}

/**
 * `s` when it has at most `max` UTF-16 code units, else its first
 * `max - 1` (never half a surrogate pair) and `…`, and `cut.truncated` set.
 */
export function clip(s: string, max: number, cut: Cut): string {
  if (s.length <= max) return s;
  cut.truncated = true;
  let n = max - 1;
  const c = s.charCodeAt(n - 1);
  if (c >= 0xd800 && c <= 0xdbff) n--; // do not leave a high surrogate without its pair
  return s.slice(0, n) + ELLIPSIS;
}

/** Any value as text, never throwing (a throwing `toString` gives a placeholder). */
export function text(v: unknown): string {
  if (typeof v === 'string') return v;
  if (Buffer.isBuffer(v)) return v.toString('utf8', 0, Math.min(v.length, HopLimits.LONG));
  try {
    return String(v);
  } catch {
    return '[unprintable value]';
  }
}

/** A count (x-death `count`): a non-negative safe integer; anything else becomes the nearest one (NaN: 0). */
export function count(v: unknown): number {
  const n = typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : Number.NaN;
  if (!(n > 0)) return 0; // negative, zero, NaN
  if (n >= Number.MAX_SAFE_INTEGER) return Number.MAX_SAFE_INTEGER;
  return Math.floor(n);
}

/** A sum of counts that stays a safe integer. */
export function addCount(a: number, b: number): number {
  const s = a + b;
  return s > Number.MAX_SAFE_INTEGER ? Number.MAX_SAFE_INTEGER : s;
}

/** An integer property (priority, deliveryMode) as AMQP encodes it, or undefined when it is not a finite number. */
export function integer(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? Math.trunc(v) : undefined;
}

/** A finite number, or undefined. */
export function finite(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}
