/**
 * The guard around hoptrace's own telemetry: logger, hooks, spans and our
 * bookkeeping. A failure there is contained, counted and reported once per
 * configuration; it never reaches the user's publish or handler.
 */
import { ErrorCodes } from '../errors.ts';
import type { AnyHopRecord } from '../contract/hop.ts';
import type { Config } from './config.ts';
import type { HopLevel } from './hop-writer.ts';

/** Counters of what hoptrace recorded and what went wrong doing so (process-wide). */
export interface TelemetryStats {
  /** Records written: one line each (version-2 publish and consume records, version-1 returns). */
  records: number;
  /** Hops those records stand for (a round trip on a ConfirmChannel: send, confirm, receive, process, settle). */
  hops: number;
  /** Records the logger or its stream failed to take (a failed batch counts every record in it). */
  loggerErrors: number;
  /** Hook calls that threw or rejected. */
  hookErrors: number;
  /** Span operations (start, end, inject, extract) that threw. */
  spanErrors: number;
  /** `redact` calls that threw (the payload was left out). */
  redactErrors: number;
  /** Incoming headers ignored because they were malformed. */
  malformedHeaders: number;
  /** Failures inside hoptrace's own bookkeeping (bugs), contained. */
  internalErrors: number;
}

const stats: TelemetryStats = {
  records: 0,
  hops: 0,
  loggerErrors: 0,
  hookErrors: 0,
  spanErrors: 0,
  redactErrors: 0,
  malformedHeaders: 0,
  internalErrors: 0,
};

/** A snapshot of the process-wide telemetry counters. */
export function telemetryStats(): TelemetryStats {
  return { ...stats };
}

export type Failure = 'logger' | 'hook' | 'span' | 'redact' | 'internal';

const COUNTER: Record<Failure, keyof TelemetryStats> = {
  logger: 'loggerErrors',
  hook: 'hookErrors',
  span: 'spanErrors',
  redact: 'redactErrors',
  internal: 'internalErrors',
};

/**
 * Count a telemetry failure and report the first of its kind for this
 * configuration: through the logger, or through `process.emitWarning` when
 * the logger is what fails (or fails while reporting).
 */
export function telemetryFailed(cfg: Config, what: Failure, err: unknown, times = 1): void {
  stats[COUNTER[what]] += times;
  if (cfg.reported.has(what)) return;
  cfg.reported.add(what);
  const text =
    `hoptrace: ${what === 'internal' ? 'an internal error' : `the ${what}`} threw (${describe(err)}); ` +
    'message flow is unaffected, further failures of this kind are only counted (see telemetryStats())';
  if (what !== 'logger') {
    try {
      cfg.logger.warn({ err, code: ErrorCodes.TELEMETRY }, text);
      return;
    } catch {
      stats.loggerErrors++;
    }
  }
  try {
    process.emitWarning(text, { code: ErrorCodes.TELEMETRY, detail: 'hoptrace telemetry failure' });
  } catch {
    // Nothing left to report through.
  }
}

/** Log an incoming header hoptrace ignored: counted always, warned once per kind. */
export function headerIgnored(cfg: Config, kind: string, header: string, why: string): void {
  stats.malformedHeaders++;
  if (cfg.reported.has(`header:${kind}`)) return;
  cfg.reported.add(`header:${kind}`);
  try {
    cfg.logger.warn(
      { code: ErrorCodes.MALFORMED_HEADER, header, problem: kind },
      `hoptrace: ignored incoming header "${header}" (${why}); the message is still delivered. ` +
        `Further "${kind}" problems are only counted (telemetryStats().malformedHeaders)`,
    );
  } catch (err) {
    telemetryFailed(cfg, 'logger', err);
  }
}

/**
 * Write one record (a line through the configuration's writer), then the
 * hook (which always gets the record's `instance`, even when the line leaves
 * it to the pino line's hostname and pid). `hops`: how many hops it stands
 * for. Never throws.
 */
export function emitRecord(cfg: Config, level: HopLevel, record: AnyHopRecord, hops: number): void {
  stats.records++;
  stats.hops += hops;
  try {
    cfg.writer.write(level, record);
  } catch (err) {
    telemetryFailed(cfg, 'logger', err);
  }
  if (cfg.hooked) cfg.onHop(record.instance === undefined ? { ...record, instance: cfg.instance } : record);
}

/** A line that is not a hop (settle timeout, ...). Never throws. */
export function note(cfg: Config, level: 'info' | 'warn' | 'error', obj: object, text: string): void {
  try {
    cfg.logger[level](obj, text);
  } catch (err) {
    telemetryFailed(cfg, 'logger', err);
  }
}

export function describe(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  try {
    return String(err);
  } catch {
    return 'unprintable value';
  }
}
