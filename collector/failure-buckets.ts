/**
 * Failure groups as a store keeps them: per fingerprint and minute, the
 * count of problem deliveries (and of those not replayed since), added up
 * from the chains' summaries (`ChainSummary.failureTally`), plus each group
 * as first seen. A store applies each flushed chain's change (its new tally
 * minus its old one) in the transaction that writes the chain's summary, and
 * retention subtracts a deleted chain's tally, so the buckets always equal
 * the sum over the stored summaries (a test recounts them).
 */
import type { ChainFailure, FailureTally } from './api-types.ts';

/** One minute of one group, or a change to it. */
export interface FailureBucketChange {
  fingerprint: string;
  bucket: number;
  count: number;
  unresolved: number;
}

/** A failure group's fixed description, written when the group is first seen. */
export interface FailureGroupInfo {
  fingerprint: string;
  status: string;
  service: string;
  queue?: string;
  exchange?: string;
  routingKey?: string;
  errorType?: string;
  pattern: string;
  example?: string;
  deadLetterQueue?: string;
}

/** Bucket changes of many chains, added up. */
export class FailureDeltas {
  readonly #byKey = new Map<string, FailureBucketChange>();

  /** Add a chain's tally (`sign` 1) or take it away (`sign` -1). */
  add(tally: readonly FailureTally[] | undefined, sign: 1 | -1): void {
    for (const t of tally ?? []) {
      const key = `${t.fingerprint}\u0000${t.bucket}`;
      let c = this.#byKey.get(key);
      if (c === undefined) this.#byKey.set(key, (c = { fingerprint: t.fingerprint, bucket: t.bucket, count: 0, unresolved: 0 }));
      c.count += sign * t.count;
      c.unresolved += sign * t.unresolved;
    }
  }

  /** The changes that are not zero. */
  changed(): FailureBucketChange[] {
    return [...this.#byKey.values()].filter((c) => c.count !== 0 || c.unresolved !== 0);
  }
}

/** The description of each group among `failures` that is not in `known` (first of each, in order). */
export function newGroups(failures: readonly ChainFailure[] | undefined, known: (fingerprint: string) => boolean): FailureGroupInfo[] {
  const out: FailureGroupInfo[] = [];
  const seen = new Set<string>();
  for (const f of failures ?? []) {
    if (seen.has(f.fingerprint) || known(f.fingerprint)) continue;
    seen.add(f.fingerprint);
    const info: FailureGroupInfo = { fingerprint: f.fingerprint, status: f.status, service: f.service, pattern: f.pattern };
    if (f.queue !== undefined) info.queue = f.queue;
    if (f.exchange !== undefined) info.exchange = f.exchange;
    if (f.routingKey !== undefined) info.routingKey = f.routingKey;
    if (f.errorType !== undefined) info.errorType = f.errorType;
    if (f.message !== undefined) info.example = f.errorType ? `${f.errorType}: ${f.message}` : f.message;
    if (f.deadLetterQueue !== undefined) info.deadLetterQueue = f.deadLetterQueue;
    out.push(info);
  }
  return out;
}
