/**
 * `hoptrace import FILE...`: rebuild chains offline from pino log files.
 * Files are streamed line by line (never loaded whole; `.gz` files are
 * decompressed on the fly), every line carrying a valid `hop` record is
 * stored through the same validation and store as `POST /v1/hops`, in
 * batches; every other line is counted, never fatal.
 */
import { createReadStream, statSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Transform } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { ErrorCodes, HoptraceError } from './errors.ts';
import { checkRecord, hasHop } from './hop-schema.ts';
import { ingestHops } from './ingest.ts';
import type { IngestRecord } from './record-identity.ts';
import type { Store } from './store.ts';

/** Batches handed to the store and not yet committed, at most. */
const MAX_BATCHES_IN_FLIGHT = 4;

export interface ImportOptions {
  /** Hops written per transaction. @default 1000 */
  batchSize?: number;
  /** How many invalid-record reasons to keep for the summary. @default 5 */
  maxReasons?: number;
  /** Called about every `progressIntervalMs` while a file is read, and once at the end of each file. */
  onProgress?: (progress: ImportProgress) => void;
  /** @default 1000 */
  progressIntervalMs?: number;
}

export interface ImportProgress {
  file: string;
  /** Bytes of the file read so far (compressed bytes for `.gz`). */
  bytesRead: number;
  fileBytes: number;
  /** Hops stored so far over all files. */
  hops: number;
  done: boolean;
}

export interface ImportResult {
  files: number;
  /** Lines read (blank lines included). */
  lines: number;
  /** Hop records stored, duplicates included. */
  hops: number;
  /** Of those, already in the store (an earlier import of the same file, or the collector got them live). */
  duplicates: number;
  /** Non-blank lines that are not JSON. */
  notJson: number;
  /** JSON lines without a hop record (ordinary log lines). */
  withoutHop: number;
  /** Lines with a `hop` that failed validation. */
  invalidHops: number;
  /** The first few reasons, `file:line: field "x" must ...`. */
  invalidReasons: string[];
  /** The first few lines left out as no hop record at all, `file:line: not JSON` or `file:line: JSON without a "hop" field`. */
  ignoredSamples: string[];
}

/** Import pino log files into a store. @throws HoptraceError `HOPTRACE_ERR_IMPORT_FILE` when a file cannot be read */
export async function importFiles(store: Store, files: readonly string[], options: ImportOptions = {}): Promise<ImportResult> {
  const batchSize = options.batchSize ?? 1000;
  const maxReasons = options.maxReasons ?? 5;
  const interval = options.progressIntervalMs ?? 1000;
  const result: ImportResult = {
    files: 0,
    lines: 0,
    hops: 0,
    duplicates: 0,
    notJson: 0,
    withoutHop: 0,
    invalidHops: 0,
    invalidReasons: [],
    ignoredSamples: [],
  };
  let batch: IngestRecord[] = [];
  // Batches committing while the next ones are parsed: the store's writer thread and this one overlap.
  const inFlight = new Set<Promise<void>>();
  let failure: { error: unknown } | undefined;
  const flush = async () => {
    if (batch.length > 0) {
      const tracked: Promise<void> = ingestHops({ store }, batch)
        .then(
          (written) => {
            result.hops += written.accepted;
            result.duplicates += written.duplicates;
          },
          (error: unknown) => {
            failure ??= { error };
          },
        )
        .finally(() => inFlight.delete(tracked));
      inFlight.add(tracked);
      batch = [];
      if (inFlight.size >= MAX_BATCHES_IN_FLIGHT) await Promise.race(inFlight);
    }
    if (failure) throw failure.error;
  };
  const drain = async () => {
    await flush();
    await Promise.all(inFlight);
    if (failure) throw failure.error;
  };

  for (const file of files) {
    let fileBytes: number;
    try {
      fileBytes = statSync(file).size;
    } catch (cause) {
      throw new HoptraceError(ErrorCodes.IMPORT_FILE, `cannot read ${file}: ${(cause as Error).message}`, { cause });
    }
    let bytesRead = 0;
    const raw = createReadStream(file);
    const counter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        bytesRead += chunk.length;
        cb(null, chunk);
      },
    });
    let source = raw.pipe(counter);
    const failed = new Promise<never>((_, reject) => {
      const fail = (cause: Error) =>
        reject(new HoptraceError(ErrorCodes.IMPORT_FILE, `cannot read ${file}: ${cause.message}`, { cause }));
      raw.on('error', fail);
      if (file.endsWith('.gz')) {
        const gunzip = createGunzip();
        gunzip.on('error', fail);
        source = source.pipe(gunzip);
      }
    });
    failed.catch(() => {});
    const lines = createInterface({ input: source, crlfDelay: Infinity });
    const report = (done: boolean) =>
      options.onProgress?.({ file, bytesRead, fileBytes, hops: result.hops + batch.length, done });
    const timer = options.onProgress ? setInterval(() => report(false), interval) : undefined;
    let lineNo = 0;
    try {
      const iterate = (async () => {
        for await (const line of lines) {
          lineNo++;
          result.lines++;
          const text = line.trim();
          if (text.length === 0) continue;
          let value: unknown;
          try {
            value = JSON.parse(text);
          } catch {
            result.notJson++;
            if (result.ignoredSamples.length < maxReasons) result.ignoredSamples.push(`${file}:${lineNo}: not JSON`);
            continue;
          }
          if (!hasHop(value)) {
            result.withoutHop++;
            if (result.ignoredSamples.length < maxReasons) result.ignoredSamples.push(`${file}:${lineNo}: JSON without a "hop" field`);
            continue;
          }
          const checked = checkRecord(value);
          if (!checked.ok) {
            result.invalidHops++;
            if (result.invalidReasons.length < maxReasons) {
              result.invalidReasons.push(`${file}:${lineNo}: field "${checked.field}" ${checked.reason}`);
            }
            continue;
          }
          batch.push(checked.record);
          if (batch.length >= batchSize) await flush();
        }
      })();
      await Promise.race([iterate, failed]);
      await drain();
    } finally {
      if (timer) clearInterval(timer);
      lines.close();
      raw.destroy();
    }
    result.files++;
    report(true);
  }
  return result;
}

const fmt = (n: number) => n.toLocaleString('en-US');

/** `12.3 MB` */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MB`;
  return `${(n / 1024 ** 3).toFixed(2)} GB`;
}

/** The progress line: `import: app.log 45.2% (123.0 MB of 272.0 MB), 512,345 hops`. */
export function formatProgress(p: ImportProgress): string {
  const pct = p.fileBytes > 0 ? ((100 * p.bytesRead) / p.fileBytes).toFixed(1) : '100.0';
  return `import: ${p.file} ${pct}% (${formatBytes(p.bytesRead)} of ${formatBytes(p.fileBytes)}), ${fmt(p.hops)} hops`;
}

/** The final summary (first line) and the invalid-record reasons (following lines). */
export function formatImportSummary(r: ImportResult): string {
  const ignored = r.notJson + r.withoutHop;
  let out =
    `imported ${fmt(r.hops)} hops (${fmt(r.duplicates)} already stored) from ${r.files} file${r.files === 1 ? '' : 's'}, ` +
    `${fmt(r.lines)} lines; ignored ${fmt(ignored)} lines (${fmt(r.notJson)} not JSON, ${fmt(r.withoutHop)} without a hop); ` +
    `${fmt(r.invalidHops)} invalid hop records`;
  for (const reason of r.invalidReasons) out += `\n  ${reason}`;
  if (r.invalidHops > r.invalidReasons.length) out += `\n  … and ${fmt(r.invalidHops - r.invalidReasons.length)} more`;
  return out;
}

/** What an import comes to: its exit code and the line that says why (and what to do). */
export interface ImportVerdict {
  exitCode: 0 | 1;
  /** Said after the summary; undefined when there is nothing to add. */
  message: string | undefined;
}

const plural = (n: number, one: string, many: string) => `${fmt(n)} ${n === 1 ? one : many}`;

/**
 * Decide, once, whether an import succeeded. Nothing imported is a failure
 * whatever the flags (a script must not read an empty store as success);
 * invalid records left out are a failure unless `allowInvalid`, while the
 * valid records of the same files are stored either way.
 */
export function importVerdict(r: ImportResult, options: { allowInvalid?: boolean } = {}): ImportVerdict {
  if (r.hops === 0 && r.invalidHops > 0) {
    return {
      exitCode: 1,
      message:
        `nothing was imported: ${plural(r.invalidHops, 'hop record was', 'hop records were')} found and every one is invalid (reasons above). ` +
        'Check that the services log with this version of the hoptrace library; --allow-invalid does not make an empty import succeed.',
    };
  }
  if (r.hops === 0) {
    const lines = r.notJson + r.withoutHop;
    const samples = r.ignoredSamples.map((s) => `
  ${s}`).join('');
    const pretty = r.notJson > 0 && r.notJson >= r.withoutHop ? ' Lines that are not JSON may be pino-pretty output: import the raw JSON log (before pino-pretty), not the pretty one.' : '';
    return {
      exitCode: 1,
      message:
        `nothing was imported: ${lines === 1 ? 'the one line holds no' : `none of the ${fmt(lines)} lines holds a`} hop record (${fmt(r.notJson)} not JSON, ${fmt(r.withoutHop)} JSON without a "hop" field).${samples}
` +
        'hoptrace import reads the pino logs (one JSON object per line) of services that use the hoptrace library, whose hop lines carry a "hop" field.' +
        pretty,
    };
  }
  if (r.invalidHops > 0 && !options.allowInvalid) {
    return {
      exitCode: 1,
      message:
        `${plural(r.invalidHops, 'invalid hop record was', 'invalid hop records were')} left out (reasons above); the ${fmt(r.hops)} valid ones are stored. ` +
        'Pass --allow-invalid to accept that and exit 0.',
    };
  }
  if (r.invalidHops > 0) {
    return { exitCode: 0, message: `skipped ${plural(r.invalidHops, 'invalid hop record', 'invalid hop records')} (--allow-invalid); ${fmt(r.hops)} stored` };
  }
  return { exitCode: 0, message: undefined };
}
