/**
 * The store interface: everything the collector's HTTP API, background jobs
 * and `hoptrace import` ask of storage. `sqlite-store.ts` implements it on
 * `node:sqlite`; a server database can implement the same methods later.
 *
 * Every method is async so an implementation may do real I/O; the SQLite one
 * runs synchronously inside them.
 */
import type { HopRecord } from '../src/hop.ts';
import type { ChainList, ChainStatus, ChainSummary, StoredHop, Topology } from './api-types.ts';

/**
 * Rebuilds one chain's summary from all its stored hops. The store calls it
 * for every chain a write touched: inside the same transaction, or (deferred)
 * once for many writes before the next read of summaries and on a timer, so
 * the summaries a read returns never disagree with the committed hops.
 */
export type ChainSummarizer = (
  correlationId: string,
  hops: readonly StoredHop[],
  times: {
    /** "Now" on the collector's clock: lost/stuck are judged against it. */
    now: number;
    /** Last time a hop of this chain was ingested (collector clock). */
    updatedAt: number;
  },
) => {
  summary: ChainSummary;
  /** False while the chain's status can still change with time alone (a message in flight). */
  settled: boolean;
};

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
  /** Of those, records already stored (same dedupe key): not written again. */
  duplicates: number;
  /** Chains that got at least one new hop, once each; empty when summaries are deferred (see `flushSummaries`). */
  changes: ChainChange[];
}

/** In {@link ChainQuery.status}: chains where any delivery was a redelivery (not a status: a flag of the summary). */
export const REDELIVERED_FILTER = 'redelivered';

/** Filters of `GET /api/chains`, already validated. */
export interface ChainQuery {
  /** Chain status or any of its problems is one of these, or (`redelivered`) the chain had a redelivery. */
  status?: (ChainStatus | typeof REDELIVERED_FILTER)[];
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
  hops: number;
  chains: number;
  /** Bytes the store's data occupies (SQLite: used pages × page size, WAL excluded). */
  bytes: number;
}

export interface Store {
  /**
   * Write hops in one transaction (all or nothing), skip ones already stored,
   * and refresh the summary of every chain that got a new hop (or mark it for
   * `flushSummaries`). Resolves only after the transaction is committed;
   * concurrent calls may share one commit.
   */
  insertHops(hops: readonly HopRecord[], receivedAt: number): Promise<InsertResult>;
  /**
   * Rebuild the summaries that writes left to be rebuilt, and return every
   * summary change since the last call that was not already returned by
   * `insertHops` or `refreshUnsettled`: what the live events announce.
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
  /** Apply a retention policy now. */
  applyRetention(policy: RetentionPolicy, now: number): Promise<RetentionResult>;
  stats(): Promise<StoreStats>;
  /** Finish pending work and release the store; later calls fail with `StoreError` (503). */
  close(): Promise<void>;
}
