/**
 * The status sweep: a chain with a message in flight turns `lost` or `stuck`
 * with time alone, no new hop arriving. Every few seconds the sweep rebuilds
 * the chains that are not settled and announces the ones that changed.
 */
import type { CollectorContext } from './context.ts';
import { announce } from './ingest.ts';
import { every } from './retention.ts';

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
