/**
 * What the collector's routes and background jobs share: the store, the live
 * hub, metrics and the resolved settings. Built once by `startCollector`.
 */
import type { Logger } from 'pino';
import type { CollectorAuth } from './auth.ts';
import type { EngineSettings } from './ingest.ts';
import type { LiveHub } from './live.ts';
import type { ReplayService } from './replay.ts';
import type { CollectorMetrics } from './metrics.ts';
import type { Store } from './store.ts';

export interface CollectorContext {
  store: Store;
  live: LiveHub;
  metrics: CollectorMetrics;
  logger: Logger;
  /** Chain engine settings (lost/stuck limits, redelivery-loop threshold). */
  engine: EngineSettings;
  maxBodyBytes: number;
  /** The token's guards for ingest and reads, and the UI's sessions. */
  auth: CollectorAuth;
  jaegerUrl: string | undefined;
  version: string;
  /** Collector start, epoch ms. */
  startedAt: number;
  /** Dead-letter replay (off without `--amqp-url`). */
  replay: ReplayService;
}
