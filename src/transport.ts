/**
 * `hoptrace/transport`: a pino transport that ships the `hop` lines of a
 * service's logs to the hoptrace collector (`POST /v1/hops`, NDJSON, in
 * batches). Hop lines are forwarded as they are, never parsed on the way in
 * the common case (the collector reads pino lines, and takes a version-2
 * record's instance from the line's hostname and pid). It runs in pino's
 * worker thread and never blocks or crashes the service: it always reads
 * what pino hands it (a transport that stopped reading would make pino hold
 * the lines in the service's own memory, then block its event loop), keeps
 * them in a buffer bounded in bytes that drops its oldest lines only when
 * that limit is reached (and says how many), retries with exponential
 * backoff while the collector is down, and flushes within a bound on close.
 * Lines without a `hop` pass it by.
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
import { type Check, finite, object, parse, string } from './contract/schema.ts';
import { ConfigError } from './errors.ts';
import { Defaults, Env } from './contract/semconv.ts';
import { HopShipper } from './internal/transport-shipper.ts';
import { HOP_LOG_KEY } from './contract/hop.ts';

/** Options of the hoptrace pino transport (all optional; passed as `options` of the pino target). */
export interface TransportOptions {
  /**
   * Collector base URL (`/v1/hops` is appended).
   * @default process.env.HOPTRACE_URL ?? 'http://localhost:4400'
   */
  url?: string;
  /** Bearer token the collector requires. @default process.env.HOPTRACE_TOKEN */
  token?: string;
  /** Lines that make a batch: a full one is sent at once (a partial one after `flushIntervalMs`). @default 1000 */
  batchSize?: number;
  /**
   * Most lines in one request while a backlog is caught up (lines piled up between the collector's
   * answers go in fewer, larger requests). A request also stays under 4 MiB, and under the body
   * limit the collector answers with (a 413 splits the batch, nothing is dropped).
   * @default 10_000 (never below `batchSize`)
   */
  maxBatchSize?: number;
  /**
   * Requests in flight at once. The collector commits concurrent requests together (one fsync),
   * so a few in flight multiply what one transport can ship. While the collector fails, a
   * single request retries with backoff, whatever this says.
   * @default 4
   */
  maxInFlight?: number;
  /** A partial batch is sent after at most this long. @default 1000 */
  flushIntervalMs?: number;
  /**
   * Bytes of hop lines held while the collector is slow or down (buffered, waiting for a retry
   * or in flight); beyond it the oldest are dropped and counted. At five 600-byte lines per
   * message, the default holds about 110,000 hops: a few seconds of a busy service.
   * @default 67_108_864 (64 MiB)
   */
  maxBufferBytes?: number;
  /** Also a limit in lines, when given. @default no limit (only `maxBufferBytes`) */
  maxBufferRecords?: number;
  /** Ceiling of the exponential retry backoff (starts at 100 ms). @default 30_000 */
  maxRetryDelayMs?: number;
  /** One request's time limit. @default 10_000 */
  requestTimeoutMs?: number;
  /**
   * On close, how long to keep trying to deliver what is buffered; what is left then is dropped
   * and counted, and one more request (at most 1 s) reports the final drop count. pino's
   * `transport.end()` blocks the calling thread until the transport has closed (at most 10 s),
   * so keep it short.
   * @default 3_000
   */
  closeTimeoutMs?: number;
  /** Drop warnings on stderr come at most this often. @default 10_000 */
  dropReportIntervalMs?: number;
}

const atLeast = (min: number) => finite({ min, max: Infinity, integer: true, text: `be an integer of at least ${min}` });

/** The transport's options, checked once when pino starts it (see `TransportOptions`). */
const optionsSchema = object({
  url: string(Infinity),
  token: string(Infinity),
  batchSize: atLeast(1),
  maxBatchSize: atLeast(1),
  maxInFlight: atLeast(1),
  flushIntervalMs: atLeast(1),
  maxBufferBytes: atLeast(1),
  maxBufferRecords: atLeast(1),
  maxRetryDelayMs: atLeast(1),
  requestTimeoutMs: atLeast(1),
  closeTimeoutMs: atLeast(0),
  dropReportIntervalMs: atLeast(0),
}) satisfies Check<TransportOptions>;

/** How a hop record starts on a line hoptrace wrote: the record's first field is its version. */
const HOP_START = `"${HOP_LOG_KEY}":{"v":`;
const HOP_KEY = `"${HOP_LOG_KEY}":`;
const V_KEY = '"v":';

/**
 * The line to ship for one log line, or undefined when it carries no hop.
 * Cheap text tests first: most lines carry no hop and are never parsed, and
 * a line hoptrace wrote (its first `"v":` opens the hop) goes as it is.
 * Anything else that mentions `"hop":` is parsed once and reduced to what
 * the collector reads: the record, with the line's hostname and pid.
 */
function asHopLine(line: string): string | undefined {
  const at = line.indexOf(HOP_START);
  if (at !== -1 && line.indexOf(V_KEY) === at + HOP_KEY.length + 1) return line;
  if (!line.includes(HOP_KEY)) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const { hop, hostname, pid } = value as Record<string, unknown>;
  if (typeof hop !== 'object' || hop === null || Array.isArray(hop)) return undefined;
  return JSON.stringify({ hostname, pid, [HOP_LOG_KEY]: hop });
}

/** The transport factory pino calls in its worker thread. */
export default async function hoptraceTransport(options: TransportOptions = {}) {
  parse(optionsSchema, options, (f) => new ConfigError(`hoptrace transport option "${f.field}" must ${f.must}, got ${String(f.got)}`));
  const url = (options.url ?? process.env[Env.HOPTRACE_URL] ?? Defaults.COLLECTOR_URL).replace(/\/+$/, '');
  try {
    new URL(url);
  } catch (cause) {
    throw new ConfigError(`hoptrace transport option "url" is not a URL: ${url}`, { cause });
  }
  const batchSize = options.batchSize ?? 1000;
  const shipper = new HopShipper({
    url,
    token: (options.token ?? process.env[Env.HOPTRACE_TOKEN]) || undefined,
    batchSize,
    maxBatchSize: Math.max(batchSize, options.maxBatchSize ?? 10_000),
    maxInFlight: options.maxInFlight ?? 4,
    flushIntervalMs: options.flushIntervalMs ?? 1000,
    maxBufferBytes: options.maxBufferBytes ?? 64 * 1024 * 1024,
    maxBufferRecords: options.maxBufferRecords ?? Infinity,
    maxRetryDelayMs: options.maxRetryDelayMs ?? 30_000,
    requestTimeoutMs: options.requestTimeoutMs ?? 10_000,
    closeTimeoutMs: options.closeTimeoutMs ?? 3_000,
    dropReportIntervalMs: options.dropReportIntervalMs ?? 10_000,
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
  return build(
    (source) => {
      source.on('data', (line: string) => {
        const hopLine = asHopLine(line);
        if (hopLine !== undefined) shipper.add(hopLine);
      });
    },
    { parse: 'lines', close: () => shipper.close() },
  );
}

export { hoptraceTransport };
