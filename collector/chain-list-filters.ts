/**
 * The chain list's filters as every store keeps them, whatever the database:
 * a chain's tags (`chainTags`) stored as text keys, the filters of a
 * `ChainQuery` as sets of those keys (any key of a set matches, every set
 * must match), and the page cursor.
 */
import { ErrorCodes, ValidationError } from '../src/errors.ts';
import type { ChainTag } from './chain-summary.ts';
import { REDELIVERED_FILTER, type ChainQuery } from './store.ts';

/** Tag filters with more entries than this are equally bad drivers: counting stops there. */
export const DRIVER_COUNT_CAP = 5_000;
/** Chains a `q` prefix can match through message and trace ids, at most (a prefix that short matches noise). */
export const Q_MATCH_CAP = 1_000;

const TAG_PREFIX = { service: 's:', status: 't:', exchange: 'x:', routingKey: 'r:' } as const;
export const REDELIVERED_KEY = 'f:redelivered';

/** How a tag is stored (SQLite migration 3's encoding, PostgreSQL's too). */
export function tagKey(tag: ChainTag): string {
  return tag.kind === 'redelivered' ? REDELIVERED_KEY : TAG_PREFIX[tag.kind] + tag.value;
}

/** The query's tag filters: each a set of keys any of which matches; a chain must match every set. */
export function tagFilters(query: ChainQuery): string[][] {
  const filters: string[][] = [];
  const status = (s: string): string => (s === REDELIVERED_FILTER ? REDELIVERED_KEY : tagKey({ kind: 'status', value: s }));
  if (query.status && query.status.length > 0) filters.push([...new Set(query.status)].map(status));
  if (query.redelivered === true) filters.push([REDELIVERED_KEY]);
  if (query.service !== undefined) filters.push([tagKey({ kind: 'service', value: query.service })]);
  if (query.exchange !== undefined) filters.push([tagKey({ kind: 'exchange', value: query.exchange })]);
  if (query.routingKey !== undefined) filters.push([tagKey({ kind: 'routingKey', value: query.routingKey })]);
  return filters;
}

export function encodeCursor(startTs: number, correlationId: string): string {
  return Buffer.from(JSON.stringify([startTs, correlationId])).toString('base64url');
}

/** @throws ValidationError when the cursor is not one a collector gave out */
export function decodeCursor(cursor: string): [number, string] {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(value) && value.length === 2 && typeof value[0] === 'number' && typeof value[1] === 'string') {
      return [value[0], value[1]];
    }
  } catch {
    // fall through
  }
  throw new ValidationError(ErrorCodes.INVALID_QUERY, 'query parameter "cursor" is not a cursor this collector gave out', {
    field: 'cursor',
  });
}

/** Whether `q` could be (the start of) a trace id: lowercase hex, at most 32 digits. */
export const isTracePrefix = (q: string): boolean => /^[0-9a-f]{1,32}$/.test(q);
