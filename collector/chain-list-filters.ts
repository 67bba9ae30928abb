/**
 * The chain list's filters as every store keeps them, whatever the database:
 * a chain's tags (`chainTags`) stored as text keys, the filters of a
 * `ChainQuery` as sets of those keys (any key of a set matches, every set
 * must match). Each store's page cursor names its own row ids, so it stays with the store.
 */
import type { ChainTag } from './chain-summary.ts';
import { REDELIVERED_FILTER, REPLAYED_FILTER, type ChainQuery } from './store.ts';

/** Tag filters with more entries than this are equally bad drivers: counting stops there. */
export const DRIVER_COUNT_CAP = 5_000;
/** Chains a `q` prefix can match through message and trace ids, at most (a prefix that short matches noise). */
export const Q_MATCH_CAP = 1_000;

const TAG_PREFIX = { service: 's:', status: 't:', exchange: 'x:', routingKey: 'r:', queue: 'q:', failure: 'g:' } as const;
export const REDELIVERED_KEY = 'f:redelivered';
export const REPLAYED_KEY = 'f:replayed';

/** How a tag is stored (SQLite migration 3's encoding, 'g:' failure groups and 'f:replayed' from migration 7; PostgreSQL's too). */
export function tagKey(tag: ChainTag): string {
  if (tag.kind === 'redelivered') return REDELIVERED_KEY;
  if (tag.kind === 'replayed') return REPLAYED_KEY;
  return TAG_PREFIX[tag.kind] + tag.value;
}

/** The query's tag filters: each a set of keys any of which matches; a chain must match every set. */
export function tagFilters(query: ChainQuery): string[][] {
  const filters: string[][] = [];
  const status = (s: string): string =>
    s === REDELIVERED_FILTER ? REDELIVERED_KEY : s === REPLAYED_FILTER ? REPLAYED_KEY : tagKey({ kind: 'status', value: s });
  if (query.status && query.status.length > 0) filters.push([...new Set(query.status)].map(status));
  if (query.redelivered === true) filters.push([REDELIVERED_KEY]);
  if (query.failure !== undefined) filters.push([tagKey({ kind: 'failure', value: query.failure })]);
  if (query.service !== undefined) filters.push([tagKey({ kind: 'service', value: query.service })]);
  if (query.exchange !== undefined) filters.push([tagKey({ kind: 'exchange', value: query.exchange })]);
  if (query.routingKey !== undefined) filters.push([tagKey({ kind: 'routingKey', value: query.routingKey })]);
  if (query.queue !== undefined) filters.push([tagKey({ kind: 'queue', value: query.queue })]);
  return filters;
}

/** Whether `q` could be (the start of) a trace id: lowercase hex, at most 32 digits. */
export const isTracePrefix = (q: string): boolean => /^[0-9a-f]{1,32}$/.test(q);
