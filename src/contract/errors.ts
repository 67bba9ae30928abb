/**
 * The root of every error hoptrace raises, library and collector alike: a
 * stable `code` (`HOPTRACE_ERR_…`) a program can switch on, and a `cause`.
 * Each part adds the errors it throws: the library in `src/errors.ts`, the
 * collector (with HTTP statuses) in `collector/errors.ts`.
 */

/** The code of {@link ConfigError}. Never renamed once released. */
export const INVALID_OPTION = 'HOPTRACE_ERR_INVALID_OPTION';

/** Base class of every hoptrace error. */
export class HoptraceError<C extends string = string> extends Error {
  override name = 'HoptraceError';
  readonly code: C;

  constructor(code: C, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
  }
}

/** Bad configuration: fix the option named in the message. */
export class ConfigError extends HoptraceError<typeof INVALID_OPTION> {
  override name = 'ConfigError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(INVALID_OPTION, message, options);
  }
}
