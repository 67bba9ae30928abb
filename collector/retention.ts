/**
 * Retention by age and by size, applied in the background on a timer.
 * Age is measured from the chain's last ingest (collector clock), not from
 * the hops' own timestamps, so freshly imported old logs are kept.
 */
import type { Logger } from 'pino';
import type { RetentionPolicy, Store } from './store.ts';

export interface RetentionOptions extends RetentionPolicy {
  /**
   * Delete chains with no hop ingested for this long. `0` switches age-based retention off.
   * @default 604_800_000 (7 days)
   */
  maxAgeMs?: number;
  /**
   * Delete the least recently updated chains while the store uses more than this many bytes.
   * `0` switches size-based retention off. The file itself does not shrink: SQLite reuses the freed pages.
   * @default 2_147_483_648 (2 GiB)
   */
  maxBytes?: number;
  /** How often retention runs. @default 60_000 */
  intervalMs?: number;
}

export const RETENTION_DEFAULTS = {
  maxAgeMs: 7 * 24 * 60 * 60 * 1000,
  maxBytes: 2 * 1024 * 1024 * 1024,
  intervalMs: 60_000,
} as const;

/** A periodic job that never overlaps itself and logs instead of throwing. */
export function every(intervalMs: number, job: () => Promise<void>, logger: Logger, name: string): () => Promise<void> {
  let running: Promise<void> | undefined;
  let stopped = false;
  const timer = setInterval(() => {
    if (running || stopped) return;
    running = job()
      .catch((err: unknown) => logger.error({ err }, `${name} failed`))
      .finally(() => {
        running = undefined;
      });
  }, intervalMs);
  timer.unref();
  return async () => {
    stopped = true;
    clearInterval(timer);
    await running;
  };
}

/** Start background retention; returns a function that stops it (waiting for a run in progress). */
export function startRetention(store: Store, options: RetentionOptions | false | undefined, logger: Logger): () => Promise<void> {
  if (options === false) return async () => {};
  const maxAgeMs = options?.maxAgeMs ?? RETENTION_DEFAULTS.maxAgeMs;
  const maxBytes = options?.maxBytes ?? RETENTION_DEFAULTS.maxBytes;
  const policy: RetentionPolicy = {
    ...(maxAgeMs > 0 ? { maxAgeMs } : {}),
    ...(maxBytes > 0 ? { maxBytes } : {}),
  };
  if (policy.maxAgeMs === undefined && policy.maxBytes === undefined) return async () => {};
  return every(
    options?.intervalMs ?? RETENTION_DEFAULTS.intervalMs,
    async () => {
      const r = await store.applyRetention(policy, Date.now());
      if (r.deletedChains > 0) logger.info(r, 'retention deleted old chains');
    },
    logger,
    'retention',
  );
}
