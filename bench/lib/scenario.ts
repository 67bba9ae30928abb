/**
 * What every scenario module (`bench/*.bench.ts`) exports, and what run.ts
 * hands it.
 */
import type { Table } from './table.ts';

export interface BenchContext {
  /** `--quick`: tiny sizes, one round: a smoke run, not a result. */
  quick: boolean;
  /** `--rounds=N`: override the number of rounds where a scenario repeats. */
  rounds?: number;
  amqpUrl: string;
  /** Scratch directory for this run (databases, logs); removed at the end. */
  tmpDir: string;
  /** Directory for data worth keeping between runs (the big generated stores). */
  cacheDir: string;
  /**
   * Figures one scenario measured that another compares against in the same run
   * (`plainRoundTripRate`: plain amqplib's round trips per second, from `roundtrip`).
   */
  shared: Record<string, number>;
}

export interface ScenarioResult {
  tables: Table[];
  /** Raw measurements, written to bench/results/<name>.json. */
  raw: unknown;
}

export interface Scenario {
  name: string;
  /** One line: what it measures. */
  description: string;
  run(ctx: BenchContext): Promise<ScenarioResult>;
}
