/**
 * Query-string schemas for the GET routes: one per route, compiled once into
 * a parser that returns typed values or throws a 400
 * (`HOPTRACE_ERR_INVALID_QUERY`) naming the parameter. Unknown parameters are
 * rejected too, so a typo is an error rather than a silently ignored filter.
 *
 * Written with the contract's validation vocabulary (`src/contract/schema.ts`):
 * each parameter is a check of the raw value express hands over (a string,
 * several for a repeated parameter, or nothing) that passes on the parsed one.
 */
import { type Check, type ExactOf, exactObject, fail, type Failure, parse, Value } from '../src/contract/schema.ts';
import { ErrorCodes, ValidationError } from './errors.ts';

/** One parameter's check: raw query value in, parsed value out. */
type Param<T> = Check<T>;

/** The one value of a parameter (undefined when absent), or why there is not one. */
function single(raw: unknown): string | undefined | Failure {
  if (raw === undefined || typeof raw === 'string') return raw;
  if (!Array.isArray(raw) || !raw.every((v) => typeof v === 'string')) return fail('be a plain value', raw);
  if (raw.length > 1) return fail('be given once', raw);
  return raw[0] as string | undefined;
}

/** A non-empty string of at most `max` characters. */
export function text(max = 1024, options: { allowEmpty?: boolean } = {}): Param<string | undefined> {
  const min = options.allowEmpty ? 0 : 1;
  return (raw) => {
    const v = single(raw);
    if (v === undefined || typeof v !== 'string') return v;
    if (v.length < min || v.length > max) return fail(`be ${min} to ${max} characters long`, v);
    return new Value(v);
  };
}

/** An integer in [min, max], with a default. */
export function integer(min: number, max: number, fallback: number): Param<number> {
  return (raw) => {
    const v = single(raw);
    if (typeof v === 'object') return v;
    if (v === undefined || v === '') return new Value(fallback);
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) return fail(`be an integer from ${min} to ${max}`, v);
    return new Value(n);
  };
}

/** Epoch milliseconds (a non-negative number). */
export function epochMs(): Param<number | undefined> {
  return (raw) => {
    const v = single(raw);
    if (typeof v === 'object') return v;
    if (v === undefined || v === '') return new Value(undefined);
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) return fail('be a time in epoch milliseconds', v);
    return new Value(n);
  };
}

/** `true` or `false`; undefined when absent. */
export function flag(): Param<boolean | undefined> {
  return (raw) => {
    const v = single(raw);
    if (typeof v === 'object') return v;
    if (v === undefined || v === '') return new Value(undefined);
    if (v !== 'true' && v !== 'false') return fail('be true or false', v);
    return new Value(v === 'true');
  };
}

/** One of a fixed set of values, with a default. */
export function choice<const V extends string>(values: readonly V[], fallback: V): Param<V> {
  const known = new Set<string>(values);
  return (raw) => {
    const v = single(raw);
    if (typeof v === 'object') return v;
    if (v === undefined || v === '') return new Value(fallback);
    if (!known.has(v)) return fail(`be one of ${values.join(', ')}`, v);
    return new Value(v);
  };
}

/** Zero or more of a fixed set, repeated (`?status=a&status=b`) or comma-separated (`?status=a,b`). */
export function choices<const V extends string>(values: readonly V[]): Param<V[] | undefined> {
  const known = new Set<string>(values);
  return (raw) => {
    if (raw === undefined) return undefined;
    const list = Array.isArray(raw) ? raw : [raw];
    if (!list.every((s) => typeof s === 'string')) return fail('be a plain value', raw);
    const parts = (list as string[]).flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean);
    for (const p of parts) {
      if (!known.has(p)) return fail(`be one or more of ${values.join(', ')} (got "${p}")`, raw);
    }
    return new Value(parts.length > 0 ? parts : undefined);
  };
}

type Spec = Record<string, Param<unknown>>;

/** Compile a schema into a parser of `req.query`. */
export function compileQuery<const S extends Spec>(spec: S): (query: unknown) => ExactOf<S> {
  const names = Object.keys(spec);
  const check = exactObject(spec);
  const toError = (f: Failure): ValidationError =>
    f.unknown
      ? new ValidationError(
          ErrorCodes.INVALID_QUERY,
          `unknown query parameter "${f.field}"${names.length ? `; this route takes ${names.join(', ')}` : ''}`,
          { field: f.field },
        )
      : new ValidationError(ErrorCodes.INVALID_QUERY, `query parameter "${f.field}" must ${f.must}`, { field: f.field });
  return (query) => parse(check, query ?? {}, toError);
}
