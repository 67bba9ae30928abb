/**
 * The store interface: everything the collector's HTTP API, background jobs
 * and `hoptrace import` ask of storage, and the only seam between them and
 * a database. `sqlite-store.ts` implements it on `node:sqlite` (one collector,
 * one file), `pg-store.ts` on PostgreSQL (several collectors, one database);
 * `store-open.ts` picks one from a store URL.
 *
 * Every method is async so an implementation may do real I/O; the SQLite one
 * runs synchronously inside them.
 */
import type { ChainList, ChainStatus, ChainSummary, StoredHop, Topology } from './api-types.ts';
import type { FailureGroupInfo } from './failure-buckets.ts';
import type { IngestRecord } from './record-identity.ts';

/** A chain whose summary a write or the sweep changed. */
export interface ChainChange {
  /** `new` when the chain did not exist before this write. */
  type: 'new' | 'changed';
  chain: ChainSummary;
}

/** Result of {@link Store.insertHops}. */
export interface InsertResult {
  /** Records in the request, all committed. */
  accepted: number;
  /** Of those, records already stored (same dedupe key, see `record-identity.ts`): not written again. */
  duplicates: number;
}

/** In {@link ChainQuery.status}: chains where any delivery was a redelivery (not a status: a flag of the summary). */
export const REDELIVERED_FILTER = 'redelivered';
/** In {@link ChainQuery.status}: chains with a replayed dead-lettered message (a flag of the summary, tag `f:replayed`). */
export const REPLAYED_FILTER = 'replayed';

/** Filters of `GET /api/chains`, already validated. */
export interface ChainQuery {
  /** Chain status or any of its problems is one of these, or (`redelivered`, `replayed`) the chain has that flag. */
  status?: (ChainStatus | typeof REDELIVERED_FILTER | typeof REPLAYED_FILTER)[];
  /** Chains with a problem delivery in this failure group (tag `g:<fingerprint>`, from the summary's `failureTally`). */
  failure?: string;
  /** true: only chains where any delivery was a redelivery; false: only chains without one. */
  redelivered?: boolean;
  service?: string;
  exchange?: string;
  routingKey?: string;
  /** A hop of the chain was received from (or settled on) this queue. */
  queue?: string;
  /** Correlation, message or trace id: exact or prefix. */
  q?: string;
  /** Chain start ≥ from (epoch ms). */
  from?: number;
  /** Chain start ≤ to (epoch ms). */
  to?: number;
  limit: number;
  /** Opaque cursor from a previous page's `nextCursor`. */
  cursor?: string;
}

/** Retention policy; an undefined limit is not applied. */
export interface RetentionPolicy {
  /** Delete chains not updated (no hop ingested) for this long. */
  maxAgeMs?: number;
  /** Delete the least recently updated chains while the store holds more than this. */
  maxBytes?: number;
}

export interface RetentionResult {
  deletedChains: number;
  deletedHops: number;
}

export interface StoreStats {
  /** Records stored: a version-1 hop or a version-2 record (several hops) each. */
  hops: number;
  chains: number;
  /** Bytes the store's data occupies (SQLite: used pages × page size, WAL excluded). */
  bytes: number;
}

/** What {@link Store.failureCounts} adds up. */
export interface FailureCountQuery {
  /** Minute buckets with `from ≤ bucket ≤ to` (a bucket is its minute's start, epoch ms). */
  from: number;
  to: number;
  /** Bins of the answer: a bucket falls into bin `floor((bucket − binStart) / binMs)`. */
  binStart: number;
  binMs: number;
  /** Only this failure group. */
  fingerprint?: string;
}

/** One failure group's counts in one bin (see {@link FailureCountQuery}). */
export interface FailureBin {
  fingerprint: string;
  bin: number;
  /** Problem deliveries, and of those the ones not replayed since. */
  count: number;
  unresolved: number;
  /** The first and last minute bucket of the bin that had any. */
  first: number;
  last: number;
}

export interface Store {
  /**
   * Write records in one transaction (all or nothing) and skip ones already
   * stored. Resolves only after the transaction is committed; concurrent
   * calls may share one commit. Summaries follow off the write path
   * (`flushSummaries`), and every read of summaries sees every committed record.
   */
  insertHops(records: readonly IngestRecord[], receivedAt: number): Promise<InsertResult>;
  /**
   * Bring the summaries of the chains writes touched up to date, and return
   * every summary change since the last call that was not already returned
   * by `refreshUnsettled`: what the live events announce.
   */
  flushSummaries(now: number): Promise<ChainChange[]>;
  /** Every hop of a chain, by timestamp; empty when the chain is unknown. */
  chainHops(correlationId: string): Promise<StoredHop[]>;
  /** The stored summary of a chain. */
  chainSummary(correlationId: string): Promise<ChainSummary | undefined>;
  /** A page of chain summaries, newest chain start first. @throws ValidationError on a bad cursor */
  listChains(query: ChainQuery): Promise<ChainList>;
  /** Correlation ids of the chains holding hops of this message (normally one). */
  messageChains(messageId: string): Promise<string[]>;
  /**
   * Observed service → exchange → queue → service edges with `from ≤ ts ≤ to`:
   * a publish counts at its message's first send from that service to that
   * exchange, a delivery at its first receive by that service from that queue
   * (see `topology-buckets.ts`).
   */
  topology(from: number, to: number): Promise<Topology>;
  /**
   * Re-summarize up to `limit` chains that are not settled (in flight, so
   * their status depends on time), least recently checked first.
   * @returns the chains whose summary changed
   */
  refreshUnsettled(now: number, limit: number): Promise<ChainChange[]>;
  /**
   * Failure groups' counts per group and bin: the sum over every stored chain
   * summary's `failureTally` entries in the window (a store keeps these sums
   * per minute as summaries change, see `failure-buckets.ts`). Groups and bins
   * without any are left out.
   */
  failureCounts(query: FailureCountQuery): Promise<FailureBin[]>;
  /** The descriptions of these failure groups (as first seen); unknown fingerprints are left out. */
  failureGroups(fingerprints: readonly string[]): Promise<FailureGroupInfo[]>;
  /** Apply a retention policy now. */
  applyRetention(policy: RetentionPolicy, now: number): Promise<RetentionResult>;
  stats(): Promise<StoreStats>;
  /** Finish pending work and release the store; later calls fail with `StoreError` (503). */
  close(): Promise<void>;
}
