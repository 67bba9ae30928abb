/**
 * The status sweep: a chain with a message in flight turns `lost` or `stuck`
 * with time alone, no new hop arriving. Every few seconds the sweep rebuilds
 * the chains that are not settled and announces the ones that changed.
 */
import type { CollectorContext } from './context.ts';
import { announce } from './ingest.ts';
import { every } from './retention.ts';

/** How often chain summaries left by ingest are rebuilt and announced (reads rebuild them first anyway). */
export const SUMMARY_FLUSH_INTERVAL_MS = 200;

/**
 * Summaries: ingest only marks the chains it touched; this rebuilds each of
 * them once per interval however many requests touched it, and announces the
 * changes as live events.
 */
export function startSummaryFlush(ctx: CollectorContext, intervalMs = SUMMARY_FLUSH_INTERVAL_MS): () => Promise<void> {
  return every(
    intervalMs,
    async () => {
      announce(ctx.live, await ctx.store.flushSummaries(Date.now()));
    },
    ctx.logger,
    'summary flush',
  );
}

/** Chains re-checked per sweep, least recently checked first; the rest wait for the next round. */
export const SWEEP_BATCH = 1000;

export function startSweep(ctx: CollectorContext, intervalMs: number): () => Promise<void> {
  return every(
    intervalMs,
    async () => {
      announce(ctx.live, await ctx.store.refreshUnsettled(Date.now(), SWEEP_BATCH));
    },
    ctx.logger,
    'status sweep',
  );
}
