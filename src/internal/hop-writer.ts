/**
 * Where records go: hop lines in the user's pino logger stream, decided once
 * per logger when a channel is wrapped.
 *
 * - **Direct** (a plain pino logger: no mixin, no `formatters.log`, no
 *   hooks, no redaction, no `hop` serializer, no `nestedKey`, a stream that
 *   needs no per-line metadata): hoptrace builds each line itself, exactly
 *   as pino would (`{"level":30,"time":…<the logger's bindings>,"hop":{…}}`,
 *   using the logger's own level, time and bindings strings, so child
 *   loggers, custom level and time formats keep working) and respects the
 *   logger's level. Lines to one of pino's own destinations (pino.destination,
 *   a transport: streams with `flushSync`) are written in batches: one
 *   `write` at most {@link BATCH_MS} after the batch's first line (or at
 *   64 Ki characters), and on exit. One system call per batch instead of per
 *   event-loop turn: under a busy round trip a turn holds a message or two,
 *   and its write cost more than recording the message (measured: `npm run
 *   bench -- roundtrip`). Any other stream gets one line per `write`, at
 *   once, as pino does.
 * - **Through the logger** (anything else: pino with custom formatting,
 *   another logger): `logger.info({ hop })`, at `warn`/`error` likewise.
 *
 * What a crash can lose here: the lines of the last {@link BATCH_MS} ms
 * (plus what the destination itself has not written yet: nothing for a
 * synchronous pino.destination). Closing a channel writes them at once, and
 * so does an exit, an uncaught exception included.
 */
import { hostname } from 'node:os';
import pino, { type Logger } from 'pino';
import type { AnyHopRecord } from '../contract/hop.ts';

/** pino's numeric levels of the three hoptrace writes at. */
export const Level = { INFO: 30, WARN: 40, ERROR: 50 } as const;
export type HopLevel = (typeof Level)[keyof typeof Level];
const LABEL: Record<HopLevel, 'info' | 'warn' | 'error'> = { 30: 'info', 40: 'warn', 50: 'error' };

/** A failed stream write: how many records it held. */
export type WriteFailed = (err: unknown, records: number) => void;

export interface HopWriter {
  /** True: lines are built here and written to the logger's stream; false: records go to the logger as objects. */
  readonly direct: boolean;
  /** The logger's lines carry this process's `hostname` and `pid`: version-2 records leave out `instance`. */
  readonly lineHasInstance: boolean;
  /** Whether a record at this level would be written now (the logger's level can change at any time). */
  enabled(level: HopLevel): boolean;
  /** Write one record. */
  write(level: HopLevel, record: AnyHopRecord): void;
  /** Hand anything batched to the stream now. */
  flush(): void;
}

/** Characters in one batch before it is written at once. */
const BATCH_CHARS = 64 * 1024;
/** A batch is written at most this long after its first line. */
export const BATCH_MS = 25;

type PinoInternals = Record<symbol, unknown> & { levels?: { values?: Record<string, number> } };

/** pino's internal symbols (`pino.symbols`; its typings leave some out). */
const sym = pino.symbols as unknown as Record<
  | 'streamSym'
  | 'lsCacheSym'
  | 'timeSym'
  | 'chindingsSym'
  | 'endSym'
  | 'levelCompSym'
  | 'levelValSym'
  | 'mixinSym'
  | 'nestedKeySym'
  | 'formattersSym'
  | 'hooksSym'
  | 'serializersSym'
  | 'stringifiersSym'
  | 'redactFmtSym',
  symbol
>;

/** The logger's stream when hoptrace can write lines for it exactly as pino would; else undefined. */
function directStream(logger: Logger): { write(s: string): unknown; flushSync?: () => void } | undefined {
  const s = sym;
  const l = logger as unknown as PinoInternals;
  const stream = l[s.streamSym] as { write?: unknown; flushSync?: unknown } | undefined;
  if (stream === null || typeof stream !== 'object' || typeof stream.write !== 'function') return undefined;
  if (stream[Symbol.for('pino.metadata') as never] === true) return undefined; // multistream: wants per-line level and object
  const ls = l[s.lsCacheSym] as Record<number, unknown> | undefined;
  if (typeof ls?.[30] !== 'string' || typeof ls[40] !== 'string' || typeof ls[50] !== 'string') return undefined;
  if (typeof l[s.timeSym] !== 'function' || typeof l[s.chindingsSym] !== 'string' || typeof l[s.endSym] !== 'string') return undefined;
  if (typeof l[s.levelCompSym] !== 'function') return undefined;
  const values = l.levels?.values;
  if (values?.info !== 30 || values.warn !== 40 || values.error !== 50) return undefined;
  if (l[s.mixinSym]) return undefined;
  if (l[s.nestedKeySym]) return undefined;
  const formatters = l[s.formattersSym] as { log?: unknown } | undefined;
  if (formatters?.log !== undefined) return undefined;
  const hooks = l[s.hooksSym] as { logMethod?: unknown; streamWrite?: unknown } | undefined;
  if (hooks?.logMethod !== undefined || hooks?.streamWrite !== undefined) return undefined;
  const serializers = l[s.serializersSym] as Record<string, unknown> | undefined;
  if (serializers?.hop !== undefined) return undefined;
  const stringifiers = l[s.stringifiersSym] as Record<string | symbol, unknown> | undefined;
  if (stringifiers !== undefined && (Object.keys(stringifiers).length > 0 || stringifiers[s.redactFmtSym] !== undefined)) return undefined;
  return stream as { write(s: string): unknown; flushSync?: () => void };
}

/** Batching writers with lines pending, flushed on exit (before pino's own exit flush). */
const pendingOnExit = new Set<DirectWriter>();
let exitHooked = false;
function flushOnExit(): void {
  for (const w of pendingOnExit) w.flushOnExit();
}

class DirectWriter implements HopWriter {
  readonly direct = true;
  readonly lineHasInstance: boolean;
  private readonly logger: PinoInternals;
  private readonly stream: { write(s: string): unknown; flushSync?: () => void };
  private readonly batched: boolean;
  private readonly failed: WriteFailed;
  /** Lines not yet handed to the stream. */
  private pending = '';
  private pendingRecords = 0;
  private scheduled = false;
  private readonly flushLater: () => void;

  constructor(logger: Logger, stream: { write(s: string): unknown; flushSync?: () => void }, failed: WriteFailed) {
    this.logger = logger as unknown as PinoInternals;
    this.stream = stream;
    this.failed = failed;
    this.batched = typeof stream.flushSync === 'function';
    this.flushLater = () => {
      this.scheduled = false;
      pendingOnExit.delete(this);
      this.flush();
    };
    // A pino transport (worker thread) ships the `hop` object without its line, so it needs `instance`.
    const transport = (stream as { constructor?: { name?: string } }).constructor?.name === 'ThreadStream';
    const bindings = `${this.logger[sym.chindingsSym] as string},`;
    this.lineHasInstance =
      !transport && bindings.includes(`"pid":${process.pid},`) && bindings.includes(`"hostname":${JSON.stringify(hostname())},`);
    if (this.batched && !exitHooked) {
      exitHooked = true;
      process.prependListener('exit', flushOnExit);
    }
  }

  enabled(level: HopLevel): boolean {
    const l = this.logger;
    return (l[sym.levelCompSym] as (a: number, b: number) => boolean)(level, l[sym.levelValSym] as number);
  }

  write(level: HopLevel, record: AnyHopRecord): void {
    const l = this.logger;
    // Exactly pino's line: its level and time strings, the logger's bindings, then the record.
    // JSON.stringify, not a hand-built serializer: V8's measured faster on these records (bench/record.worker.ts).
    const line =
      (l[sym.lsCacheSym] as Record<number, string>)[level]! +
      (l[sym.timeSym] as () => string)() +
      (l[sym.chindingsSym] as string) +
      ',"hop":' +
      JSON.stringify(record) +
      (l[sym.endSym] as string);
    if (!this.batched) {
      // A stream of the user's own: one line per write, at once, as pino does.
      this.stream.write(line);
      return;
    }
    this.pending += line;
    this.pendingRecords++;
    if (!this.scheduled) {
      this.scheduled = true;
      pendingOnExit.add(this);
      setTimeout(this.flushLater, BATCH_MS).unref();
    }
    if (this.pending.length >= BATCH_CHARS) this.flush();
  }

  flush(): void {
    if (this.pending === '') return;
    const chunk = this.pending;
    const records = this.pendingRecords;
    this.pending = '';
    this.pendingRecords = 0;
    try {
      this.stream.write(chunk);
    } catch (err) {
      this.failed(err, records);
    }
  }

  flushOnExit(): void {
    this.flush();
    try {
      this.stream.flushSync?.();
    } catch {
      // pino flushes its own destinations on exit too; nothing more to do here
    }
  }
}

class LoggerWriter implements HopWriter {
  readonly direct = false;
  readonly lineHasInstance = false;
  private readonly logger: Logger;

  constructor(logger: Logger) {
    this.logger = logger;
  }

  enabled(level: HopLevel): boolean {
    const check = (this.logger as { isLevelEnabled?: (l: string) => boolean }).isLevelEnabled;
    return typeof check === 'function' ? check.call(this.logger, LABEL[level]) : true;
  }

  write(level: HopLevel, record: AnyHopRecord): void {
    this.logger[LABEL[level]]({ hop: record });
  }

  flush(): void {}
}

const writers = new WeakMap<object, HopWriter>();

/** The writer for a logger: one per logger, so configurations sharing a logger share its batch. */
export function writerFor(logger: Logger, failed: WriteFailed): HopWriter {
  let w = writers.get(logger);
  if (w === undefined) {
    const stream = directStream(logger);
    w = stream === undefined ? new LoggerWriter(logger) : new DirectWriter(logger, stream, failed);
    writers.set(logger, w);
  }
  return w;
}
