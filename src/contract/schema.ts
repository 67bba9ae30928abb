/**
 * hoptrace's one validation vocabulary: small checks, composed once into a
 * schema and run many times. The hop records the collector ingests, the
 * query strings of its routes, the collector's, the wrappers' and the
 * transport's options are all checked with these.
 *
 * A {@link Check} returns `undefined` when the value is valid as it is, a
 * {@link Value} when it is valid once replaced (unknown fields left out, a
 * default filled in, a query string parsed), or a {@link Failure} saying
 * which field must be what. Paths are built only on failure, from the bottom
 * up, so a valid value costs no string building: the hop schema runs on the
 * collector's ingest path. Each check carries the type of what it accepts
 * ({@link Infer}), so a schema and the type it stands for can be held in
 * step by the compiler (test/hop-schema-types.test.ts).
 *
 * Messages are written to follow "must": `traceId must be 32 lowercase hex
 * characters`. Each caller turns a failure into its own error (a
 * `ValidationError` with an index and field, a `ConfigError` naming the
 * option).
 */

/** A failed check: the field path below the checked value, what it must be, and the value found. */
export class Failure {
  readonly field: string;
  readonly must: string;
  /** True when the field is not one the schema knows (an exact object refuses those). */
  readonly unknown: boolean;
  readonly got: unknown;
  constructor(field: string, must: string, got?: unknown, unknown = false) {
    this.field = field;
    this.must = must;
    this.got = got;
    this.unknown = unknown;
  }
  /** The same failure seen from the parent: `name` joined in front of the path. */
  under(name: string): Failure {
    const sep = this.field === '' || this.field.startsWith('[') ? '' : '.';
    return new Failure(name + sep + this.field, this.must, this.got, this.unknown);
  }
}

/** A passed check whose value must be replaced by this one. */
export class Value {
  readonly value: unknown;
  constructor(value: unknown) {
    this.value = value;
  }
}

/** What a check says: valid as it is (`undefined`), valid as {@link Value}, or a {@link Failure}. */
export type Outcome = Failure | Value | undefined;

declare const ACCEPTS: unique symbol;

/** One compiled check of values of type `T` (the type exists for the compiler only). */
export type Check<T> = ((value: unknown) => Outcome) & { readonly [ACCEPTS]?: T };

/** The type of what a check accepts. */
export type Infer<C> = C extends Check<infer T> ? T : never;

/** A failure at the checked value itself. */
export const fail = (must: string, got?: unknown): Failure => new Failure('', must, got);

/**
 * Run a check and hand back the value to use, or throw what `toError` makes
 * of the failure.
 */
export function parse<T>(check: Check<T>, value: unknown, toError: (failure: Failure) => Error): T {
  const r = check(value);
  if (r === undefined) return value as T;
  if (r instanceof Failure) throw toError(r);
  return r.value as T;
}

// --- values --------------------------------------------------------------

/** A string of at most `max` UTF-16 code units, non-empty or matching a pattern when asked. */
export function string(max: number, opts: { nonEmpty?: boolean; pattern?: RegExp; patternText?: string } = {}): Check<string> {
  const what = opts.patternText ?? (opts.nonEmpty ? `a non-empty string of at most ${max} characters` : `a string of at most ${max} characters`);
  return (v) => {
    if (typeof v !== 'string') return fail(opts.patternText ?? `be a string`, v);
    if (opts.pattern && !opts.pattern.test(v)) return fail(what, v);
    if (opts.nonEmpty && v.length === 0) return fail(`be ${what}`, v);
    if (v.length > max) return fail(`be at most ${max} characters long`, v);
    return undefined;
  };
}

/**
 * A finite number in [min, max] (an integer when asked). `text` replaces the
 * separate messages with one (`be a number of milliseconds between 1 and …`).
 */
export function finite(opts: { min: number; max: number; integer?: boolean; text?: string }): Check<number> {
  const { min, max, integer, text } = opts;
  return (v) => {
    if (typeof v !== 'number' || !Number.isFinite(v)) return fail(text ?? 'be a finite number', v);
    if (integer && !Number.isInteger(v)) return fail(text ?? 'be an integer', v);
    if (v < min) return fail(text ?? `be at least ${min}`, v);
    if (v > max) return fail(text ?? `be at most ${max}`, v);
    return undefined;
  };
}

export const boolean: Check<boolean> = (v) => (typeof v === 'boolean' ? undefined : fail('be true or false', v));

/** A function (an option's hook or callback). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const func: Check<(...args: any[]) => any> = (v) => (typeof v === 'function' ? undefined : fail('be a function', v));

/** One of a fixed set of values. */
export function oneOf<const V extends readonly (string | number)[]>(values: V, text?: string): Check<V[number]> {
  const set = new Set<unknown>(values);
  const must = text ?? `be one of ${values.map((x) => JSON.stringify(x)).join(', ')}`;
  return (v) => (set.has(v) ? undefined : fail(must, v));
}

/** A value the type guard `test` accepts (an option's logger, tracer provider, …). */
export function guard<T>(test: (value: unknown) => value is T, must: string): Check<T> {
  return (v) => (test(v) ? undefined : fail(must, v));
}

/** Anything (for a field an object must list but whose value is checked elsewhere). */
export const anything: Check<unknown> = () => undefined;

// --- structures ----------------------------------------------------------

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

type Fields = Record<string, Check<unknown>>;
type Flatten<T> = { [K in keyof T]: T[K] } & {};
/** The type an {@link object} schema accepts: required fields, the rest optional. */
export type ObjectOf<F extends Fields, R extends keyof F> = Flatten<
  { -readonly [K in R]: Infer<F[K]> } & { -readonly [K in Exclude<keyof F, R>]?: Infer<F[K]> }
>;

/**
 * A record: an object whose listed fields are checked (the `required` ones
 * must be present; `undefined` counts as absent). Fields not listed are left
 * out of the value passed on, at every level, so what is kept has the
 * schema's fixed depth and bounded size whatever arrived.
 */
export function object<const F extends Fields, const R extends keyof F & string = never>(
  fields: F,
  required: readonly R[] = [],
): Check<ObjectOf<F, R>> {
  const known = new Map<string, Check<unknown>>(Object.entries(fields));
  return (v) => {
    if (!isPlainObject(v)) return fail('be an object', v);
    for (const name of required) {
      if (v[name] === undefined) return new Failure(name, 'be present');
    }
    let unknown = false;
    let replaced: Map<string, unknown> | undefined;
    for (const name in v) {
      const check = known.get(name);
      if (check === undefined) {
        unknown = true;
        continue;
      }
      const value = v[name];
      if (value === undefined) continue;
      const r = check(value);
      if (r === undefined) continue;
      if (r instanceof Failure) return r.under(name);
      (replaced ??= new Map()).set(name, r.value);
    }
    if (!unknown && replaced === undefined) return undefined;
    const copy: Record<string, unknown> = {};
    for (const name in v) {
      if (!known.has(name) || v[name] === undefined) continue;
      copy[name] = replaced?.has(name) ? replaced.get(name) : v[name];
    }
    return new Value(copy);
  };
}

/** The type an {@link exactObject} schema gives back. */
export type ExactOf<F extends Fields> = Flatten<{ -readonly [K in keyof F]: Infer<F[K]> }>;

/**
 * Options or a query: an object whose every listed field is
 * checked, present or not (a field's check says what absent means: see
 * {@link optional}, {@link withDefault}), and whose unknown fields are
 * refused, so a typo is an error rather than a setting silently ignored.
 * The value passed on is a new object holding exactly the listed fields.
 */
export function exactObject<const F extends Fields>(fields: F): Check<ExactOf<F>> {
  const names = Object.keys(fields);
  const known = new Set(names);
  return (v) => {
    if (!isPlainObject(v)) return fail('be an object', v);
    for (const name of Object.keys(v)) {
      if (!known.has(name)) return new Failure(name, `be one of ${names.join(', ')}`, v[name], true);
    }
    const out: Record<string, unknown> = {};
    for (const name of names) {
      const value = v[name];
      const r = fields[name](value);
      if (r instanceof Failure) return r.under(name);
      out[name] = r === undefined ? value : r.value;
    }
    return new Value(out);
  };
}

/** `check`, or absent (`undefined`). */
export function optional<T>(check: Check<T>): Check<T | undefined> {
  return (v) => (v === undefined ? undefined : check(v));
}

/** `check`, or `fallback` when absent (`undefined`). */
export function withDefault<T>(check: Check<T>, fallback: T): Check<T> {
  const value = new Value(fallback);
  return (v) => (v === undefined ? value : check(v));
}

/** An array of at most `max` entries, each checked (its path `[i]`). */
export function arrayOf<T>(item: Check<T>, max: number): Check<T[]> {
  return (v) => {
    if (!Array.isArray(v)) return fail('be an array', v);
    if (v.length > max) return fail(`have at most ${max} entries`, v);
    let copy: unknown[] | undefined;
    for (let i = 0; i < v.length; i++) {
      const r = item(v[i]);
      if (r === undefined) continue;
      if (r instanceof Failure) return r.under(`[${i}]`);
      (copy ??= v.slice())[i] = r.value;
    }
    return copy === undefined ? undefined : new Value(copy);
  };
}

/** An object of at most `maxEntries` string values (depth one by construction): message headers. */
export function stringMap(maxEntries: number, maxKey: number, maxValue: number): Check<Record<string, string>> {
  return (v) => {
    if (!isPlainObject(v)) return fail('be an object of strings', v);
    let n = 0;
    for (const key in v) {
      if (++n > maxEntries) return fail(`have at most ${maxEntries} entries`);
      if (key.length > maxKey) return fail(`have keys of at most ${maxKey} characters`);
      const value = v[key];
      if (typeof value !== 'string') return new Failure(key, 'be a string', value);
      if (value.length > maxValue) return new Failure(key, `be at most ${maxValue} characters long`);
    }
    return undefined;
  };
}

/** A record of any keys whose values are each checked (a queue → dead-letter queue map). */
export function recordOf<T>(item: Check<T>, key: Check<string> = anything as Check<string>): Check<Record<string, T>> {
  return (v) => {
    if (!isPlainObject(v)) return fail('be an object', v);
    let copy: Record<string, unknown> | undefined;
    for (const name of Object.keys(v)) {
      const k = key(name);
      if (k instanceof Failure) return new Failure(name, `be a key that is ${k.must.replace(/^be /, '')}`, name);
      const r = item(v[name]);
      if (r === undefined) continue;
      if (r instanceof Failure) return r.under(name);
      (copy ??= { ...v })[name] = r.value;
    }
    return copy === undefined ? undefined : new Value(copy);
  };
}
