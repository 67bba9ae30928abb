/**
 * The errors the library raises, each with a stable `code` a program can
 * switch on. The collector's own errors (HTTP statuses, the error body) live
 * in `collector/errors.ts`: a package's errors are the ones it throws.
 */
import { ConfigError, HoptraceError, INVALID_OPTION } from './contract/errors.ts';

export { ConfigError, HoptraceError };

/** Stable codes of what the library raises or reports. Never renamed once released. */
export const ErrorCodes = {
  /** An option passed to `instrument`, `connect`, `startTracing` or the transport is invalid ({@link ConfigError}). */
  INVALID_OPTION,
  /** The RabbitMQ broker could not be reached (`connect`). */
  BROKER_UNREACHABLE: 'HOPTRACE_ERR_BROKER_UNREACHABLE',
  /** An incoming message header was malformed and ignored (a warning; the message is still delivered). */
  MALFORMED_HEADER: 'HOPTRACE_ERR_MALFORMED_HEADER',
  /** Our own telemetry (logger, hook, exporter) failed; contained, never thrown into user code. */
  TELEMETRY: 'HOPTRACE_ERR_TELEMETRY',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/** A logger, hook or exporter of ours failed. Reported, never thrown into user code. */
export class TelemetryError extends HoptraceError<typeof ErrorCodes.TELEMETRY> {
  override name = 'TelemetryError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCodes.TELEMETRY, message, options);
  }
}
