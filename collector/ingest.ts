/**
 * The one ingest path every source goes through (`POST /v1/hops`,
 * `POST /v1/traces`, `hoptrace import`): validate every record, write the
 * valid ones in one transaction, then count what was written. Live events
 * follow from the summary flush (`sweep.ts`).
 */
import { ErrorCodes, ValidationError } from './errors.ts';
import type { IngestResult, LiveChainEvent, RejectedRecord } from './api-types.ts';
import { rejectionKind, validateRecords } from './hop-schema.ts';
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

/** Every record of an ingest request was invalid: a 400 that lists them, and nothing was stored. */
export class RejectedRecordsError extends ValidationError {
  readonly rejected: number;
  readonly rejections: RejectedRecord[];
  constructor(rejected: number, rejections: RejectedRecord[]) {
    const first = rejections[0];
    const more = rejected > 1 ? ` (and ${rejected - 1} more invalid record${rejected > 2 ? 's' : ''})` : '';
    super(ErrorCodes.INVALID_HOP, `record ${first.index}: field "${first.field}" ${first.reason}${more}; nothing was stored`, {
      index: first.index,
      field: first.field,
    });
    this.rejected = rejected;
    this.rejections = rejections;
  }
}

/**
 * Validate and write parsed request records: bare hop records (version 1
 * or 2) or pino log lines carrying one under `hop`. The valid records are
 * committed even when others are invalid; the answer lists the invalid ones
 * (partial acceptance).
 * @throws RejectedRecordsError (400 `HOPTRACE_ERR_INVALID_HOP`) when there were records and none was valid
 */
export async function ingestRecords(targets: IngestTargets, values: readonly unknown[]): Promise<IngestResult> {
  const checked = validateRecords(values);
  if (checked.rejected > 0) {
    for (const r of checked.rejections) targets.metrics?.recordsRejected.inc({ field: rejectionKind(r.field) });
    // Beyond the listed ones the field is unknown; they are counted all the same.
    const unlisted = checked.rejected - checked.rejections.length;
    if (unlisted > 0) targets.metrics?.recordsRejected.inc({ field: '(unlisted)' }, unlisted);
    if (checked.records.length === 0) throw new RejectedRecordsError(checked.rejected, checked.rejections);
  }
  const result = await ingestHops(targets, checked.records);
  if (checked.rejected === 0) return result;
  return { ...result, rejected: checked.rejected, rejections: checked.rejections };
}
