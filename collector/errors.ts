/**
 * The collector's errors: each has a stable `code` and the HTTP status the
 * collector answers it with, and every failure is answered with the same
 * {@link ErrorBody} (`toErrorBody` in server.ts). They extend the library's
 * {@link HoptraceError}, so one `instanceof` catches either part's errors.
 */
import { ConfigError, HoptraceError, INVALID_OPTION } from '../src/contract/errors.ts';

export { ConfigError, HoptraceError };

/** Stable codes of what the collector raises. Never renamed once released. */
export const ErrorCodes = {
  /** A collector option is invalid ({@link ConfigError}). */
  INVALID_OPTION,
  /** A request body could not be parsed at all (bad JSON, bad gzip, bad protobuf). */
  INVALID_BODY: 'HOPTRACE_ERR_INVALID_BODY',
  /** A hop record failed validation; the message names the record index and field. */
  INVALID_HOP: 'HOPTRACE_ERR_INVALID_HOP',
  /** A query string parameter is invalid. */
  INVALID_QUERY: 'HOPTRACE_ERR_INVALID_QUERY',
  /** The request body's content type is not one the route accepts. */
  UNSUPPORTED_MEDIA_TYPE: 'HOPTRACE_ERR_UNSUPPORTED_MEDIA_TYPE',
  /** The request body is larger than the configured limit. */
  PAYLOAD_TOO_LARGE: 'HOPTRACE_ERR_PAYLOAD_TOO_LARGE',
  /** A bearer token is required and was missing or wrong. */
  UNAUTHORIZED: 'HOPTRACE_ERR_UNAUTHORIZED',
  /** The chain, message or route does not exist. */
  NOT_FOUND: 'HOPTRACE_ERR_NOT_FOUND',
  /** The store failed to read or write. */
  STORE: 'HOPTRACE_ERR_STORE',
  /** A file given to `hoptrace import` could not be read. */
  IMPORT_FILE: 'HOPTRACE_ERR_IMPORT_FILE',
  /** The collector does not replay dead-lettered messages (no `--amqp-url`, or no token to guard it). */
  REPLAY_DISABLED: 'HOPTRACE_ERR_REPLAY_DISABLED',
  /** A dead-lettered message was not in its dead-letter queue when the collector came to replay it. */
  REPLAY_NOT_FOUND: 'HOPTRACE_ERR_REPLAY_NOT_FOUND',
  /** The broker failed a replay (connection or channel error, nack, return). */
  REPLAY_FAILED: 'HOPTRACE_ERR_REPLAY_FAILED',
  /** Anything else: a bug in hoptrace. */
  INTERNAL: 'HOPTRACE_ERR_INTERNAL',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/** An error the collector answers with a given HTTP status. */
export class CollectorError extends HoptraceError<ErrorCode> {
  override name = 'CollectorError';
  /** HTTP status the collector answers this error with. */
  readonly statusCode: number;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; statusCode?: number }) {
    super(code, message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.statusCode = options?.statusCode ?? 500;
  }
}

/** The HTTP status of any hoptrace error: its own for a collector error, else 500. */
export function statusOf(err: HoptraceError): number {
  return err instanceof CollectorError ? err.statusCode : 500;
}

/** Input that arrived from outside was rejected (HTTP 400 family). */
export class ValidationError extends CollectorError {
  override name = 'ValidationError';
  /** Index of the offending record in the request, when there is one. */
  readonly index: number | undefined;
  /** Dotted path of the offending field, when there is one. */
  readonly field: string | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    options?: { cause?: unknown; statusCode?: number; index?: number; field?: string },
  ) {
    super(code, message, { cause: options?.cause, statusCode: options?.statusCode ?? 400 });
    this.index = options?.index;
    this.field = options?.field;
  }
}

/** Missing or wrong bearer token (HTTP 401). */
export class AuthError extends CollectorError {
  override name = 'AuthError';
  constructor(message: string) {
    super(ErrorCodes.UNAUTHORIZED, message, { statusCode: 401 });
  }
}

/** Nothing under that id (HTTP 404). */
export class NotFoundError extends CollectorError {
  override name = 'NotFoundError';
  constructor(message: string) {
    super(ErrorCodes.NOT_FOUND, message, { statusCode: 404 });
  }
}

/** The store could not read or write (HTTP 500, or 503 when it is closed). */
export class StoreError extends CollectorError {
  override name = 'StoreError';
  constructor(message: string, options?: { cause?: unknown; statusCode?: number }) {
    super(ErrorCodes.STORE, message, { cause: options?.cause, statusCode: options?.statusCode ?? 500 });
  }
}

/** The one error body shape every collector 4xx/5xx answers with. */
export interface ErrorBody {
  statusCode: number;
  code: string;
  /** HTTP reason phrase for `statusCode` (`Bad Request`, ...). */
  error: string;
  /** What went wrong and, where it can, what to do about it. */
  message: string;
}
