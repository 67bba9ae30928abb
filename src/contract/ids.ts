/**
 * The shapes of the ids a hop record carries, one definition for the library
 * that writes them, the collector that checks and packs them, and the UI that
 * searches by them. Generating ids is the library's job (`src/internal/ids.ts`).
 */

/** A W3C trace id: 32 lowercase hex characters (never all zero when hoptrace makes one). */
export const TRACE_ID_PATTERN = /^[0-9a-f]{32}$/;

/** A W3C span id: 16 lowercase hex characters (never all zero when hoptrace makes one). */
export const SPAN_ID_PATTERN = /^[0-9a-f]{16}$/;

/** The all-zero trace id, which W3C Trace Context calls invalid. */
export const ZERO_TRACE_ID = '00000000000000000000000000000000';

/** The all-zero span id, which W3C Trace Context calls invalid. */
export const ZERO_SPAN_ID = '0000000000000000';

/**
 * A lowercase UUID such as the library's UUIDv7 message ids (`messageId` is any
 * non-empty string; the collector stores ids of this shape in 16 bytes).
 */
export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** True for a W3C trace id. */
export function isTraceId(value: unknown): value is string {
  return typeof value === 'string' && TRACE_ID_PATTERN.test(value);
}

/** True for a W3C span id. */
export function isSpanId(value: unknown): value is string {
  return typeof value === 'string' && SPAN_ID_PATTERN.test(value);
}
