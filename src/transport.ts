/**
 * `hoptrace/transport`: a pino transport that ships the `hop` lines of a
 * service's logs to the hoptrace collector (`POST /v1/hops`, NDJSON, in
 * batches). It runs in pino's worker thread and never blocks or crashes the
 * service: a bounded buffer that drops its oldest records when full (and
 * says how many), retries with exponential backoff while the collector is
 * down, and a bounded flush on close. Lines without a `hop` pass it by.
 *
 * @example
 * import pino from 'pino';
 * const logger = pino(pino.transport({
 *   targets: [
 *     { target: 'pino/file', options: { destination: 1 } },          // keep logging to stdout
 *     { target: 'hoptrace/transport', options: { url: 'http://collector:4400' } },
 *   ],
 * }));
 */
import { writeSync } from 'node:fs';
import build from 'pino-abstract-transport';
import { ConfigError } from './errors.ts';
import { Defaults, Env } from './internal/semconv.ts';
import { HopShipper } from './internal/transport-shipper.ts';
import { HOP_LOG_KEY } from './hop.ts';

/** Options of the hoptrace pino transport (all optional; passed as `options` of the pino target). */
export interface TransportOptions {
  /**
   * Collector base URL (`/v1/hops` is appended).
   * @default process.env.HOPTRACE_URL ?? 'http://localhost:4400'
   */
  url?: string;
  /** Bearer token the collector requires. @default process.env.HOPTRACE_TOKEN */
  token?: string;
  /** Records per request; a full batch is sent at once. @default 1000 */
  batchSize?: number;
  /**
   * Requests in flight at once. The collector commits concurrent requests together (one fsync),
   * so a few in flight multiply what one transport can ship. While the collector fails, a
   * single request retries with backoff, whatever this says.
   * @default 4
   */
  maxInFlight?: number;
  /** A partial batch is sent after at most this long. @default 1000 */
  flushIntervalMs?: number;
  /** Records held while the collector is slow or down; beyond it the oldest are dropped. @default 10_000 */
  maxBufferRecords?: number;
  /** Ceiling of the exponential retry backoff (starts at 100 ms). @default 30_000 */
  maxRetryDelayMs?: number;
  /** One request's time limit. @default 10_000 */
  requestTimeoutMs?: number;
  /**
   * On close, how long to keep trying to deliver what is buffered. pino's `transport.end()`
   * blocks the calling thread until the transport has closed (at most 10 s), so keep it short.
   * @default 3_000
   */
  closeTimeoutMs?: number;
  /** Drop warnings on stderr come at most this often. @default 10_000 */
  dropReportIntervalMs?: number;
}

function count(name: string, value: number | undefined, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new ConfigError(`hoptrace transport option "${name}" must be an integer of at least ${min}, got ${String(value)}`);
  }
  return value;
}

/** The transport factory pino calls in its worker thread. */
export default async function hoptraceTransport(options: TransportOptions = {}) {
  const url = (options.url ?? process.env[Env.HOPTRACE_URL] ?? Defaults.COLLECTOR_URL).replace(/\/+$/, '');
  try {
    new URL(url);
  } catch (cause) {
    throw new ConfigError(`hoptrace transport option "url" is not a URL: ${url}`, { cause });
  }
  const shipper = new HopShipper({
    url,
    token: (options.token ?? process.env[Env.HOPTRACE_TOKEN]) || undefined,
    batchSize: count('batchSize', options.batchSize, 1000, 1),
    maxInFlight: count('maxInFlight', options.maxInFlight, 4, 1),
    flushIntervalMs: count('flushIntervalMs', options.flushIntervalMs, 1000, 1),
    maxBufferRecords: count('maxBufferRecords', options.maxBufferRecords, 10_000, 1),
    maxRetryDelayMs: count('maxRetryDelayMs', options.maxRetryDelayMs, 30_000, 1),
    requestTimeoutMs: count('requestTimeoutMs', options.requestTimeoutMs, 10_000, 1),
    closeTimeoutMs: count('closeTimeoutMs', options.closeTimeoutMs, 3_000, 0),
    dropReportIntervalMs: count('dropReportIntervalMs', options.dropReportIntervalMs, 10_000, 0),
    // Straight to fd 2: a worker's process.stderr is relayed through the main thread, which may
    // already be exiting (or blocked in pino's synchronous end()) when the final count is written.
    report: (line) => {
      try {
        writeSync(2, `hoptrace transport: ${line}\n`);
      } catch {
        // stderr closed: nowhere left to report
      }
    },
  });
  // A cheap text test first: most log lines carry no hop and are never parsed.
  const marker = `"${HOP_LOG_KEY}":`;
  return build(
    (source) => {
      source.on('data', (line: string) => {
        if (!line.includes(marker)) return;
        let value: unknown;
        try {
          value = JSON.parse(line);
        } catch {
          return;
        }
        const hop = (value as Record<string, unknown> | null)?.[HOP_LOG_KEY];
        if (typeof hop === 'object' && hop !== null && !Array.isArray(hop)) shipper.add(JSON.stringify(hop));
      });
    },
    { parse: 'lines', close: () => shipper.close() },
  );
}

export { hoptraceTransport };
