/**
 * The one ingest path every source goes through (`POST /v1/hops`,
 * `POST /v1/traces`, `hoptrace import`): validate every record, write them in
 * one transaction, then count and announce what changed.
 */
import type { HopRecord } from '../src/hop.ts';
import type { IngestResult, LiveChainEvent } from './api-types.ts';
import { buildChain, summarizeChain, type ChainEngineOptions } from './chain-engine.ts';
import { validateHops } from './hop-schema.ts';
import type { LiveHub } from './live.ts';
import type { CollectorMetrics } from './metrics.ts';
import type { ChainChange, ChainSummarizer, Store } from './store.ts';

/** Engine options without `now` (the store supplies it per rebuild). */
export type EngineSettings = Omit<ChainEngineOptions, 'now'>;

/** The chain engine bound to the collector's settings, as the store calls it. */
export function createSummarizer(settings: EngineSettings): ChainSummarizer {
  return (correlationId, hops, { now, updatedAt }) => {
    const detail = buildChain(correlationId, hops, { ...settings, now });
    // Only a message still in flight can change status without a new hop (→ lost / stuck).
    const settled =
      detail.status !== 'in-flight' &&
      !detail.problems.includes('in-flight') &&
      !detail.messages.some((m) => m.status === 'in-flight');
    return { summary: summarizeChain(detail, updatedAt), settled };
  };
}

export interface IngestTargets {
  store: Store;
  live?: LiveHub;
  metrics?: CollectorMetrics;
}

/** Publish store changes as live events. */
export function announce(live: LiveHub | undefined, changes: readonly ChainChange[]): void {
  if (!live || changes.length === 0) return;
  live.publish(changes.map((c): LiveChainEvent => ({ type: c.type, chain: c.chain })));
}

/** Write already-validated hops; resolves after the commit. */
export async function ingestHops(targets: IngestTargets, hops: readonly HopRecord[]): Promise<IngestResult> {
  if (hops.length === 0) return { accepted: 0, duplicates: 0 };
  const result = await targets.store.insertHops(hops, Date.now());
  targets.metrics?.hopsIngested.inc({}, result.accepted);
  targets.metrics?.duplicates.inc({}, result.duplicates);
  announce(targets.live, result.changes);
  return { accepted: result.accepted, duplicates: result.duplicates };
}

/**
 * Validate (all or nothing) and write parsed request records: bare hop
 * records or pino log lines carrying one under `hop`.
 * @throws ValidationError `HOPTRACE_ERR_INVALID_HOP` naming the first bad record and field; nothing is written
 */
export async function ingestRecords(targets: IngestTargets, values: readonly unknown[]): Promise<IngestResult> {
  return ingestHops(targets, validateHops(values));
}
