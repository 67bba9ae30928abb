/**
 * Ships hop lines to the collector's `POST /v1/hops` in NDJSON batches.
 * Never throws, never blocks the caller: lines go into a buffer bounded in
 * bytes (and optionally in records), batches are sent when full or on a
 * timer, up to `maxInFlight` requests at once (the collector commits
 * concurrent requests together), larger while a backlog is caught up (the
 * collector spends less per line in a large request), and failures are retried with one shared
 * exponential backoff while the collector is down or answers 5xx/429
 * (meanwhile a single request probes it).
 *
 * What leaves the buffer, and how it is counted:
 * - **delivered**: the collector committed it (2xx);
 * - **rejected**: the collector judged the record invalid (listed in a 202's
 *   `rejections`, or a 400 whose every record was invalid). Its valid
 *   neighbours are kept: the collector commits them all the same. Each kind
 *   of rejection is reported once on stderr;
 * - **dropped**: lost in the transport: the buffer limit was reached (the
 *   oldest lines go), a request was refused as a whole (401, 415, one record
 *   over the body limit), or the close deadline passed.
 *
 * A batch over the collector's body limit (413) is split in two and retried,
 * and later batches are kept under the size it accepted. Every request
 * carries the transport's id and its total of dropped records
 * (`x-hoptrace-transport`, `x-hoptrace-dropped-total`); the collector counts
 * the growth of that total, so its `hoptrace_transport_dropped_total` equals
 * this count once a request after the last drop got through. When nothing
 * else goes out, a bodiless request reports new drops (and one more on close).
 */
import { randomUUID } from 'node:crypto';
import { HopBuffer } from './transport-buffer.ts';

export interface ShipperSettings {
  /** Base URL of the collector, without a trailing slash. */
  url: string;
  token: string | undefined;
  /** Lines that make a batch worth sending at once. */
  batchSize: number;
  /** Most lines in one request, while a backlog is caught up. */
  maxBatchSize: number;
  /** Requests in flight at once (the collector group-commits concurrent requests). */
  maxInFlight: number;
  flushIntervalMs: number;
  /** Bytes of lines held (buffered, waiting for a retry or in flight); beyond it the oldest are dropped. */
  maxBufferBytes: number;
  /** Lines held; beyond it the oldest are dropped. */
  maxBufferRecords: number;
  maxRetryDelayMs: number;
  requestTimeoutMs: number;
  closeTimeoutMs: number;
  dropReportIntervalMs: number;
  /** Where reports go (stderr by default). */
  report: (line: string) => void;
}

/** Largest batch body to start with; a 413 lowers it. A bigger single line goes alone. */
const MAX_BATCH_BYTES = 4 * 1024 * 1024;
const FIRST_RETRY_DELAY_MS = 100;
/** Rejection kinds reported once each; past this many, the rest are only counted. */
const MAX_REJECTION_KINDS = 100;

/** Header names the collector reads (collector/routes/ingest-routes.ts). */
const TRANSPORT_ID_HEADER = 'x-hoptrace-transport';
const DROPPED_TOTAL_HEADER = 'x-hoptrace-dropped-total';

type Outcome =
  | { kind: 'ok'; rejected: number }
  /** Judged invalid, every record (a 400 listing them). */
  | { kind: 'invalid'; rejected: number }
  | { kind: 'retry' }
  /** Too large: split and send again. */
  | { kind: 'split' }
  /** Refused as a whole (401, 415, …): dropped. */
  | { kind: 'refused' };

/** Records taken from the buffer: on the wire, or waiting for a retry. Held until the collector answers for them. */
interface Batch {
  records: string[];
  bytes: number;
  /** A request carrying these records is in flight; nobody else may send or trim them meanwhile. */
  sending: boolean;
}

type DropReason = 'full' | 'refused' | 'closing';

/** What the collector says about the records it rejected. */
interface Rejections {
  rejected?: number;
  rejections?: { index?: number; field?: string; reason?: string }[];
}

export class HopShipper {
  readonly #s: ShipperSettings;
  readonly #endpoint: string;
  readonly #id = randomUUID();
  readonly #buffer = new HopBuffer();
  readonly #timer: NodeJS.Timeout;
  /** Batches taken from the buffer and not yet settled, oldest first. */
  readonly #batches: Batch[] = [];
  /** Records and bytes in `#batches` (they count against the limits). */
  #heldRecords = 0;
  #heldBytes = 0;
  #sending = 0;
  #flushRequested = false;
  /** Body size the collector accepts; lowered by a 413. */
  #maxBatchBytes = MAX_BATCH_BYTES;
  /** The one backoff state all requests share: consecutive failures, and no request starts before `#backoffUntil`. */
  #attempt = 0;
  #backoffUntil = 0;
  #backoffTimer: NodeJS.Timeout | undefined;
  /** Bumped by every failure that sets a backoff: a request started before it does not count again. */
  #generation = 0;
  #closing = false;
  #deadline = Infinity;
  /** Resolves `close()`'s wait on every change (a request settled, a backoff ended). */
  #changed: (() => void) | undefined;
  #lastError = '';
  /** Why the records reported next were dropped. */
  readonly #dropReasons = new Set<DropReason>();

  #droppedTotal = 0;
  /** The highest dropped total a request carried to an answering collector. */
  #announced = 0;
  #announcing = false;
  /** Dropped since the last stderr report. */
  #unreported = 0;
  #lastDropReport = 0;
  #delivered = 0;
  #rejectedTotal = 0;
  readonly #rejectionKinds = new Set<string>();

  constructor(settings: ShipperSettings) {
    this.#s = settings;
    this.#endpoint = settings.url.endsWith('/v1/hops') ? settings.url : `${settings.url}/v1/hops`;
    this.#timer = setInterval(() => {
      this.#flushRequested = true;
      this.#pump();
      this.#announceIdle();
      this.#reportDrops(false);
    }, settings.flushIntervalMs);
  }

  /** Records the collector committed. */
  get delivered(): number {
    return this.#delivered;
  }

  /** Records the collector judged invalid. */
  get rejected(): number {
    return this.#rejectedTotal;
  }

  /** Records lost in the transport (buffer limit, refused requests, close deadline). */
  get dropped(): number {
    return this.#droppedTotal;
  }

  /** Queue one hop line (a pino line carrying `hop`, or a bare record). */
  add(record: string): void {
    if (this.#closing && Date.now() > this.#deadline) {
      this.#drop(1, 'closing');
      return;
    }
    if (record.length > this.#s.maxBufferBytes) {
      this.#drop(1, 'full');
      return;
    }
    this.#buffer.push(record);
    this.#evict();
    if (this.#buffer.size >= this.#s.batchSize || this.#buffer.bytes >= this.#maxBatchBytes) this.#pump();
  }

  /** Over a limit: drop the oldest lines not on the wire (waiting batches first, then the buffer's head). */
  #evict(): void {
    let dropped = 0;
    while (
      this.#buffer.bytes + this.#heldBytes > this.#s.maxBufferBytes ||
      this.#buffer.size + this.#heldRecords > this.#s.maxBufferRecords
    ) {
      const waiting = this.#batches.find((b) => !b.sending);
      if (waiting) {
        const line = waiting.records.shift() as string;
        waiting.bytes -= line.length;
        this.#heldRecords--;
        this.#heldBytes -= line.length;
        if (waiting.records.length === 0) this.#batches.splice(this.#batches.indexOf(waiting), 1);
      } else if (this.#buffer.size > 1) {
        this.#buffer.dropOldest();
      } else {
        // Only requests in flight and the newest line are left: what is on the wire stays.
        break;
      }
      dropped++;
    }
    if (dropped > 0) this.#drop(dropped, 'full');
  }

  #drop(n: number, reason: DropReason): void {
    this.#dropReasons.add(reason);
    this.#droppedTotal += n;
    this.#unreported += n;
    this.#reportDrops(false);
  }

  #reportDrops(final: boolean): void {
    if (this.#unreported === 0) return;
    const now = Date.now();
    if (!final && now - this.#lastDropReport < this.#s.dropReportIntervalMs) return;
    this.#lastDropReport = now;
    const limit =
      this.#s.maxBufferRecords === Infinity
        ? `maxBufferBytes ${this.#s.maxBufferBytes}`
        : `maxBufferRecords ${this.#s.maxBufferRecords}, maxBufferBytes ${this.#s.maxBufferBytes}`;
    const text: Record<DropReason, string> = {
      full: `buffer full (${limit})`,
      refused: 'refused by the collector',
      closing: 'not delivered before the close deadline',
    };
    const reasons = [...this.#dropReasons].map((r) => text[r]).join(', ');
    const why = this.#lastError ? `; last error from ${this.#endpoint}: ${this.#lastError}` : '';
    this.#s.report(`dropped ${this.#unreported} hop records: ${reasons}; ${this.#droppedTotal} in total${why}`);
    this.#unreported = 0;
    this.#dropReasons.clear();
  }

  /** Start requests up to `maxInFlight`: batches waiting for a retry first, then new ones from the buffer. */
  #pump(): void {
    const now = Date.now();
    if (this.#closing && now >= this.#deadline) return;
    if (this.#backoffUntil > now) {
      this.#backoffTimer ??= setTimeout(() => {
        this.#backoffTimer = undefined;
        this.#pump();
        this.#notify();
      }, this.#backoffUntil - now);
      return;
    }
    // After a failure, one request probes the collector; all `maxInFlight` again once one gets through.
    const limit = this.#attempt > 0 ? 1 : this.#s.maxInFlight;
    while (this.#sending < limit) {
      let batch = this.#batches.find((b) => !b.sending);
      if (!batch) {
        if (this.#buffer.size === 0) {
          this.#flushRequested = false;
          return;
        }
        const full = this.#buffer.size >= this.#s.batchSize || this.#buffer.bytes >= this.#maxBatchBytes;
        if (!full && !this.#flushRequested && !this.#closing) return;
        // Sized to the backlog: `batchSize` while the collector keeps up; larger (up to `maxBatchSize`)
        // while lines pile up between its answers, which costs it less per line.
        const size = Math.min(this.#s.maxBatchSize, Math.max(this.#s.batchSize, Math.ceil(this.#buffer.size / this.#s.maxInFlight)));
        const before = this.#buffer.bytes;
        const records = this.#buffer.take(size, this.#maxBatchBytes);
        batch = { records, bytes: before - this.#buffer.bytes, sending: false };
        this.#batches.push(batch);
        this.#heldRecords += records.length;
        this.#heldBytes += batch.bytes;
      }
      this.#send(batch).catch((err: unknown) => this.#s.report(`internal error: ${(err as Error).message}`));
    }
  }

  #settle(batch: Batch): void {
    this.#batches.splice(this.#batches.indexOf(batch), 1);
    this.#heldRecords -= batch.records.length;
    this.#heldBytes -= batch.bytes;
  }

  async #send(batch: Batch): Promise<void> {
    batch.sending = true;
    this.#sending++;
    const generation = this.#generation;
    let outcome: Outcome;
    try {
      outcome = await this.#post(batch.records);
    } finally {
      batch.sending = false;
      this.#sending--;
    }
    switch (outcome.kind) {
      case 'retry':
        // Retry the same batch (the collector dedupes, so a lost 202 costs nothing) after the shared backoff.
        // Requests that were already in flight when another one failed do not back off further.
        if (generation === this.#generation) {
          this.#generation++;
          this.#attempt++;
          const base = Math.min(this.#s.maxRetryDelayMs, FIRST_RETRY_DELAY_MS * 2 ** Math.min(this.#attempt - 1, 30));
          const delay = base / 2 + Math.random() * (base / 2);
          const now = Date.now();
          this.#backoffUntil = now + (this.#closing ? Math.min(delay, Math.max(0, this.#deadline - now)) : delay);
        }
        break;
      case 'split': {
        // Two halves in its place, oldest first; a single line over the limit cannot be sent at all.
        const index = this.#batches.indexOf(batch);
        if (batch.records.length === 1) {
          this.#settle(batch);
          this.#drop(1, 'refused');
          break;
        }
        const half = Math.ceil(batch.records.length / 2);
        const halves = [batch.records.slice(0, half), batch.records.slice(half)].map((records) => ({
          records,
          bytes: records.reduce((n, r) => n + r.length, 0),
          sending: false,
        }));
        this.#batches.splice(index, 1, ...halves);
        this.#maxBatchBytes = Math.max(1, Math.min(this.#maxBatchBytes, Math.floor(batch.bytes / 2)));
        break;
      }
      case 'refused':
        this.#settle(batch);
        this.#drop(batch.records.length, 'refused');
        break;
      default:
        this.#settle(batch);
        this.#delivered += batch.records.length - outcome.rejected;
        this.#rejectedTotal += outcome.rejected;
        if (generation === this.#generation) this.#attempt = 0;
    }
    this.#pump();
    this.#notify();
  }

  #notify(): void {
    const changed = this.#changed;
    this.#changed = undefined;
    changed?.();
  }

  /** Report each kind of rejection (the field at fault, without indexes) once. */
  #noteRejections(body: Rejections, batch: readonly string[]): number {
    const rejected = typeof body.rejected === 'number' && body.rejected > 0 ? Math.min(body.rejected, batch.length) : 0;
    for (const r of body.rejections ?? []) {
      const field = String(r.field ?? '(record)');
      const kind = field.replace(/\[\d+\]/g, '[]');
      if (this.#rejectionKinds.has(kind) || this.#rejectionKinds.size >= MAX_REJECTION_KINDS) continue;
      this.#rejectionKinds.add(kind);
      this.#s.report(
        `the collector rejected a hop record: field "${field}" ${String(r.reason ?? '')}; its valid neighbours were kept ` +
          `(records rejected for "${kind}" are reported once, and counted)`,
      );
    }
    return rejected;
  }

  async #post(batch: readonly string[]): Promise<Outcome> {
    const dropped = this.#droppedTotal;
    const headers: Record<string, string> = { 'content-type': 'application/x-ndjson', [TRANSPORT_ID_HEADER]: this.#id };
    if (this.#s.token) headers.authorization = `Bearer ${this.#s.token}`;
    if (dropped > 0) headers[DROPPED_TOTAL_HEADER] = String(dropped);
    const timeout = this.#closing
      ? Math.max(1, Math.min(this.#s.requestTimeoutMs, this.#deadline - Date.now()))
      : this.#s.requestTimeoutMs;
    try {
      const res = await fetch(this.#endpoint, {
        method: 'POST',
        headers,
        body: batch.length === 0 ? '' : batch.join('\n') + '\n',
        signal: AbortSignal.timeout(timeout),
      });
      const text = await res.text().catch(() => '');
      // The collector read the drop total with any answer past its token check.
      if (res.status !== 401 && res.status < 500) this.#announced = Math.max(this.#announced, dropped);
      let body: (Rejections & { message?: string; code?: string }) | undefined;
      try {
        body = JSON.parse(text) as typeof body;
      } catch {
        // not our body
      }
      if (res.ok) {
        this.#lastError = '';
        return { kind: 'ok', rejected: body ? this.#noteRejections(body, batch) : 0 };
      }
      this.#lastError = `HTTP ${res.status}: ${body?.message ?? text.slice(0, 500)}`;
      if (res.status === 429 || res.status >= 500) return { kind: 'retry' };
      if (res.status === 413) return { kind: 'split' };
      if (res.status === 400 && body?.code === 'HOPTRACE_ERR_INVALID_HOP' && typeof body.rejected === 'number') {
        return { kind: 'invalid', rejected: this.#noteRejections(body, batch) };
      }
      return { kind: 'refused' };
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      this.#lastError = cause?.code ?? cause?.message ?? (err as Error).message;
      return { kind: 'retry' };
    }
  }

  /** Nothing else going out: a bodiless request tells the collector about new drops. */
  #announceIdle(): void {
    if (this.#announcing || this.#droppedTotal <= this.#announced || this.#sending > 0 || this.#batches.length > 0) return;
    if (this.#backoffUntil > Date.now()) return;
    this.#announcing = true;
    void this.#post([]).finally(() => {
      this.#announcing = false;
      this.#notify();
    });
  }

  /** Send what is buffered within `closeTimeoutMs` (every request in flight included), then report and stop. */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    this.#deadline = Date.now() + this.#s.closeTimeoutMs;
    clearInterval(this.#timer);
    // Closing cuts the backoff short: one more try now, later ones within the deadline.
    clearTimeout(this.#backoffTimer);
    this.#backoffTimer = undefined;
    this.#backoffUntil = 0;
    this.#pump();
    while (this.#sending > 0 || this.#backoffTimer || this.#announcing) {
      await new Promise<void>((resolve) => (this.#changed = resolve));
    }
    const left = this.#buffer.size + this.#heldRecords;
    if (left > 0) {
      this.#drop(left, 'closing');
      this.#s.report(`${left} hop records not delivered within ${this.#s.closeTimeoutMs} ms of closing`);
    }
    // Best effort: the final total, so the collector's count matches this one when it is reachable.
    if (this.#droppedTotal > this.#announced) {
      this.#deadline = Date.now() + Math.min(this.#s.requestTimeoutMs, 1000);
      await this.#post([]);
    }
    this.#reportDrops(true);
    if (this.#droppedTotal > 0 || this.#rejectedTotal > 0) {
      this.#s.report(
        `closed: ${this.#delivered} hop records delivered, ${this.#rejectedTotal} rejected by the collector, ${this.#droppedTotal} dropped in total`,
      );
    }
  }
}
