/**
 * Query-string schemas for the GET routes: one per route, compiled once into
 * a parser that returns typed values or throws a 400
 * (`HOPTRACE_ERR_INVALID_QUERY`) naming the parameter. Unknown parameters are
 * rejected too, so a typo is an error rather than a silently ignored filter.
 */
import { ErrorCodes, ValidationError } from './errors.ts';

type Raw = string | string[] | undefined;

interface Param<T> {
  parse(raw: Raw, name: string): T;
}

function invalid(name: string, must: string): ValidationError {
  return new ValidationError(ErrorCodes.INVALID_QUERY, `query parameter "${name}" must ${must}`, { field: name });
}

function single(raw: Raw, name: string): string | undefined {
  if (Array.isArray(raw)) {
    if (raw.length > 1) throw invalid(name, 'be given once');
    return raw[0];
  }
  return raw;
}

/** A non-empty string of at most `max` characters. */
export function text(max = 1024, options: { allowEmpty?: boolean } = {}): Param<string | undefined> {
  const min = options.allowEmpty ? 0 : 1;
  return {
    parse(raw, name) {
      const v = single(raw, name);
      if (v === undefined) return undefined;
      if (v.length < min || v.length > max) throw invalid(name, `be ${min} to ${max} characters long`);
      return v;
    },
  };
}

/** An integer in [min, max], with a default. */
export function integer(min: number, max: number, fallback: number): Param<number> {
  return {
    parse(raw, name) {
      const v = single(raw, name);
      if (v === undefined || v === '') return fallback;
      const n = Number(v);
      if (!Number.isInteger(n) || n < min || n > max) throw invalid(name, `be an integer from ${min} to ${max}`);
      return n;
    },
  };
}

/** Epoch milliseconds (a non-negative number). */
export function epochMs(): Param<number | undefined> {
  return {
    parse(raw, name) {
      const v = single(raw, name);
      if (v === undefined || v === '') return undefined;
      const n = Number(v);
      if (!Number.isFinite(n) || n < 0) throw invalid(name, 'be a time in epoch milliseconds');
      return n;
    },
  };
}

/** `true` or `false`; undefined when absent. */
export function flag(): Param<boolean | undefined> {
  return {
    parse(raw, name) {
      const v = single(raw, name);
      if (v === undefined || v === '') return undefined;
      if (v !== 'true' && v !== 'false') throw invalid(name, 'be true or false');
      return v === 'true';
    },
  };
}

/** One of a fixed set of values, with a default. */
export function choice<const V extends string>(values: readonly V[], fallback: V): Param<V> {
  return {
    parse(raw, name) {
      const v = single(raw, name);
      if (v === undefined || v === '') return fallback;
      if (!(values as readonly string[]).includes(v)) throw invalid(name, `be one of ${values.join(', ')}`);
      return v as V;
    },
  };
}

/** Zero or more of a fixed set, repeated (`?status=a&status=b`) or comma-separated (`?status=a,b`). */
export function choices<const V extends string>(values: readonly V[]): Param<V[] | undefined> {
  return {
    parse(raw, name) {
      if (raw === undefined) return undefined;
      const parts = (Array.isArray(raw) ? raw : [raw]).flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean);
      for (const p of parts) {
        if (!(values as readonly string[]).includes(p)) throw invalid(name, `be one or more of ${values.join(', ')} (got "${p}")`);
      }
      return parts.length > 0 ? (parts as V[]) : undefined;
    },
  };
}

type Spec = Record<string, Param<unknown>>;
type Parsed<S extends Spec> = { [K in keyof S]: S[K] extends Param<infer T> ? T : never };

/** Compile a schema into a parser of `req.query`. */
export function compileQuery<S extends Spec>(spec: S): (query: unknown) => Parsed<S> {
  const names = Object.keys(spec);
  const known = new Set(names);
  return (query) => {
    const q = (query ?? {}) as Record<string, unknown>;
    for (const key of Object.keys(q)) {
      if (!known.has(key)) {
        throw new ValidationError(
          ErrorCodes.INVALID_QUERY,
          `unknown query parameter "${key}"${names.length ? `; this route takes ${names.join(', ')}` : ''}`,
          { field: key },
        );
      }
      const value = q[key];
      if (typeof value !== 'string' && !(Array.isArray(value) && value.every((v) => typeof v === 'string'))) {
        throw invalid(key, 'be a plain value');
      }
    }
    const out: Record<string, unknown> = {};
    for (const name of names) out[name] = spec[name].parse(q[name] as Raw, name);
    return out as Parsed<S>;
  };
}
