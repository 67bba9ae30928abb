/**
 * Identifiers hoptrace generates itself: W3C trace and span ids (used when no
 * OpenTelemetry SDK is registered) and time-ordered UUIDv7 message ids.
 */
import { randomFillSync } from 'node:crypto';
import { ZERO_SPAN_ID, ZERO_TRACE_ID } from '../contract/ids.ts';

// One pooled buffer of random bytes, refilled when used up: a syscall per
// 4 KiB instead of one per id on the publish/consume hot path.
const POOL_SIZE = 4096;
const pool = Buffer.allocUnsafe(POOL_SIZE);
let poolOffset = POOL_SIZE;

function takeRandom(n: number): number {
  if (poolOffset + n > POOL_SIZE) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const at = poolOffset;
  poolOffset += n;
  return at;
}

function randomHex(n: number): string {
  const at = takeRandom(n);
  return pool.toString('hex', at, at + n);
}

/** A W3C trace id: 32 lowercase hex chars, never all zero. */
export function newTraceId(): string {
  let id = randomHex(16);
  while (id === ZERO_TRACE_ID) id = randomHex(16);
  return id;
}

/** A W3C span id: 16 lowercase hex chars, never all zero. */
export function newSpanId(): string {
  let id = randomHex(8);
  while (id === ZERO_SPAN_ID) id = randomHex(8);
  return id;
}

/** Lowercase hex digits as char codes. */
const HEX_DIGITS = Buffer.from('0123456789abcdef', 'latin1');

/** Write `n` bytes of `src` from `srcAt` as lowercase hex into `dst` at `dstAt`. */
function writeHex(dst: Buffer, dstAt: number, src: Buffer, srcAt: number, n: number): void {
  for (let i = 0; i < n; i++) {
    const b = src[srcAt + i]!;
    dst[dstAt + 2 * i] = HEX_DIGITS[b >>> 4]!;
    dst[dstAt + 2 * i + 1] = HEX_DIGITS[b & 15]!;
  }
}

// UUIDv7 (RFC 9562): 48-bit unix ms, version 7, a 12-bit counter in rand_a
// (method 1, "fixed-length dedicated counter") so ids minted within the same
// millisecond still sort in creation order, then variant 10 and 62 random bits.
let lastMs = 0;
let counter = 0;
const uuidBytes = Buffer.allocUnsafe(16);
// The text is written into a buffer and read out once: one string per id, no pieces.
const uuidText = Buffer.from('00000000-0000-0000-0000-000000000000', 'latin1');

/** A time-ordered UUIDv7 string, monotonic within this process. */
export function uuidv7(): string {
  let ms = Date.now();
  if (ms > lastMs) {
    lastMs = ms;
    const at = takeRandom(2);
    counter = ((pool[at]! << 8) | pool[at + 1]!) & 0x3ff; // start low: room to count up
  } else {
    ms = lastMs;
    counter++;
    if (counter > 0xfff) {
      // Counter exhausted within one millisecond: borrow the next one.
      lastMs = ++ms;
      counter = 0;
    }
  }
  uuidBytes.writeUIntBE(ms, 0, 6);
  uuidBytes[6] = 0x70 | (counter >>> 8);
  uuidBytes[7] = counter & 0xff;
  const at = takeRandom(8);
  pool.copy(uuidBytes, 8, at, at + 8);
  uuidBytes[8] = (uuidBytes[8]! & 0x3f) | 0x80;
  writeHex(uuidText, 0, uuidBytes, 0, 4);
  writeHex(uuidText, 9, uuidBytes, 4, 2);
  writeHex(uuidText, 14, uuidBytes, 6, 2);
  writeHex(uuidText, 19, uuidBytes, 8, 2);
  writeHex(uuidText, 24, uuidBytes, 10, 6);
  return uuidText.toString('latin1', 0, 36);
}

const tpText = Buffer.from('00-00000000000000000000000000000000-0000000000000000-01', 'latin1');

/**
 * A version-00 `traceparent` for a new span: in the trace `traceId` (a new
 * one when undefined), with a new span id, sampled or not. One string: the
 * ids are slices of it (`traceparent.slice(3, 35)`, `.slice(36, 52)`).
 */
export function newTraceParent(traceId: string | undefined, sampled: boolean): string {
  for (;;) {
    if (traceId === undefined) {
      const at = takeRandom(16);
      writeHex(tpText, 3, pool, at, 16);
    } else {
      tpText.write(traceId, 3, 32, 'latin1');
    }
    const at = takeRandom(8);
    writeHex(tpText, 36, pool, at, 8);
    tpText[54] = sampled ? 49 /* 1 */ : 48; /* 0 */
    const tp = tpText.toString('latin1', 0, 55);
    // Never all-zero ids (vanishingly rare; try again).
    if (!tp.startsWith(ZERO_TRACE_ID, 3) && !tp.startsWith(ZERO_SPAN_ID, 36)) return tp;
  }
}

/** A parsed W3C `traceparent`. */
export interface TraceParent {
  traceId: string;
  spanId: string;
  /** Trace flags as a number (bit 0 = sampled). */
  traceFlags: number;
}

/** Value of each lowercase hex digit by char code, -1 for anything else below 128. */
const HEX_VALUE = new Int8Array(128).fill(-1);
for (let i = 0; i < 16; i++) HEX_VALUE['0123456789abcdef'.charCodeAt(i)] = i;

/** Value of a lowercase hex digit's char code, or -1. */
function hexValue(c: number): number {
  return c < 128 ? HEX_VALUE[c]! : -1;
}

function isLowerHex(s: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || HEX_VALUE[c]! < 0) return false;
  }
  return true;
}

/**
 * Parse a `traceparent` header; `undefined` when it is not valid W3C:
 * `vv-{32 hex}-{16 hex}-ff`, version `00` exactly, a later version possibly
 * followed by `-` and more (W3C §3.2.4), never version `ff` or all-zero ids.
 * A char loop: it runs on every delivery, and a regex match costs more.
 */
export function parseTraceParent(raw: string): TraceParent | undefined {
  // trim() only when there is something to trim (it would copy).
  const value = raw.length > 0 && (raw.charCodeAt(0) <= 32 || raw.charCodeAt(raw.length - 1) <= 32) ? raw.trim() : raw;
  const n = value.length;
  if (
    n < 55 ||
    value.charCodeAt(2) !== 45 /* - */ ||
    value.charCodeAt(35) !== 45 ||
    value.charCodeAt(52) !== 45 ||
    !isLowerHex(value, 0, 2) ||
    !isLowerHex(value, 3, 35) ||
    !isLowerHex(value, 36, 52) ||
    !isLowerHex(value, 53, 55)
  ) {
    return undefined;
  }
  const v0 = value.charCodeAt(0);
  const v1 = value.charCodeAt(1);
  if (v0 === 102 && v1 === 102) return undefined; // ff
  if (n > 55) {
    if (v0 === 48 && v1 === 48) return undefined; // 00 has nothing after the flags
    if (value.charCodeAt(55) !== 45) return undefined;
    for (let i = 56; i < n; i++) {
      const c = value.charCodeAt(i);
      if (c === 10 || c === 13 || c === 0x2028 || c === 0x2029) return undefined; // line breaks
    }
  }
  const traceId = value.slice(3, 35);
  const spanId = value.slice(36, 52);
  if (traceId === ZERO_TRACE_ID || spanId === ZERO_SPAN_ID) return undefined;
  return { traceId, spanId, traceFlags: hexValue(value.charCodeAt(53)) * 16 + hexValue(value.charCodeAt(54)) };
}

/** Format a version-00 `traceparent`. */
export function formatTraceParent(traceId: string, spanId: string, traceFlags: number): string {
  return `00-${traceId}-${spanId}-${traceFlags & 1 ? '01' : '00'}`;
}

/** Milliseconds elapsed since a `performance.now()` reading, to the microsecond (no float noise in logs). */
export function elapsedMs(since: number): number {
  return Math.round((performance.now() - since) * 1000) / 1000;
}
