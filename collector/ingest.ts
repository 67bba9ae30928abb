/**
 * The one ingest path every source goes through (`POST /v1/hops`,
 * `POST /v1/traces`, `hoptrace import`): validate every record, write them in
 * one transaction, then count what was written. Live events follow from the
 * summary flush (`sweep.ts`).
 */
import type { IngestResult, LiveChainEvent } from './api-types.ts';
import { validateRecords } from './hop-schema.ts';
import type { LiveHub } from './live.ts';
import type { CollectorMetrics } from './metrics.ts';
import type { IngestRecord } from './record-identity.ts';
import type { ChainChange, Store } from './store.ts';

export type { EngineSettings } from './chain-summary.ts';

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

/** Write already-validated records; resolves after the commit. */
export async function ingestHops(targets: IngestTargets, records: readonly IngestRecord[]): Promise<IngestResult> {
  if (records.length === 0) return { accepted: 0, duplicates: 0 };
  const result = await targets.store.insertHops(records, Date.now());
  targets.metrics?.hopsIngested.inc({}, result.accepted);
  targets.metrics?.duplicates.inc({}, result.duplicates);
  return { accepted: result.accepted, duplicates: result.duplicates };
}

/**
 * Validate (all or nothing) and write parsed request records: bare hop
 * records (version 1 or 2) or pino log lines carrying one under `hop`.
 * @throws ValidationError `HOPTRACE_ERR_INVALID_HOP` naming the first bad record and field; nothing is written
 */
export async function ingestRecords(targets: IngestTargets, values: readonly unknown[]): Promise<IngestResult> {
  return ingestHops(targets, validateRecords(values));
}
