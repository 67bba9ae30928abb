/**
 * Ships hop records to the collector's `POST /v1/hops` in NDJSON batches.
 * Never throws, never blocks the caller: records go into a bounded buffer
 * (oldest dropped when full), batches are sent when full or on a timer, up
 * to `maxInFlight` requests at once (the collector commits concurrent
 * requests together), and failures are retried with one shared exponential
 * backoff while the collector is down or answers 5xx/429 (meanwhile a single
 * request probes it). Records leave the shipper only on a 2xx (or a 4xx). A 4xx batch is dropped and reported (retrying garbage
 * would block everything behind it). Drops are reported on stderr at most
 * every `dropReportIntervalMs`, with a final count on close, and to the
 * collector itself in the `x-hoptrace-dropped` header.
 */
import { HopBuffer } from './transport-buffer.ts';

export interface ShipperSettings {
  /** Base URL of the collector, without a trailing slash. */
  url: string;
  token: string | undefined;
  batchSize: number;
  /** Requests in flight at once (the collector group-commits concurrent requests). */
  maxInFlight: number;
  flushIntervalMs: number;
  maxBufferRecords: number;
  maxRetryDelayMs: number;
  requestTimeoutMs: number;
  closeTimeoutMs: number;
  dropReportIntervalMs: number;
  /** Where reports go (stderr by default). */
  report: (line: string) => void;
}

/** Largest batch body; a bigger record goes alone. Keeps well under the collector's 16 MiB default. */
const MAX_BATCH_BYTES = 4 * 1024 * 1024;
const FIRST_RETRY_DELAY_MS = 100;

type Outcome = 'ok' | 'retry' | 'rejected';

/** Records taken from the buffer: on the wire, or waiting for a retry. Held until a 2xx (or a 4xx). */
interface Batch {
  records: string[];
  /** A request carrying these records is in flight; nobody else may send or trim them meanwhile. */
  sending: boolean;
}

export class HopShipper {
  readonly #s: ShipperSettings;
  readonly #endpoint: string;
  readonly #buffer: HopBuffer;
  readonly #timer: NodeJS.Timeout;
  /** Batches taken from the buffer and not yet settled, oldest first. */
  readonly #batches: Batch[] = [];
  /** Records in `#batches` (they count against `maxBufferRecords`). */
  #held = 0;
  #sending = 0;
  #flushRequested = false;
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
  readonly #dropReasons = new Set<'full' | 'rejected'>();

  /** Dropped records not yet announced to the collector (sent in `x-hoptrace-dropped`). */
  #unannounced = 0;
  /** Dropped since the last stderr report. */
  #unreported = 0;
  #droppedTotal = 0;
  #lastDropReport = 0;
  #lastRejectReport = 0;
  #delivered = 0;

  constructor(settings: ShipperSettings) {
    this.#s = settings;
    this.#endpoint = settings.url.endsWith('/v1/hops') ? settings.url : `${settings.url}/v1/hops`;
    this.#buffer = new HopBuffer(settings.maxBufferRecords);
    this.#timer = setInterval(() => {
      this.#flushRequested = true;
      this.#pump();
      this.#reportDrops(false);
    }, settings.flushIntervalMs);
  }

  /** Hops delivered (answered 202) so far. */
  get delivered(): number {
    return this.#delivered;
  }

  get dropped(): number {
    return this.#droppedTotal;
  }

  /** Queue one serialized hop record. */
  add(record: string): void {
    if (this.#closing && Date.now() > this.#deadline) {
      this.#drop(1);
      return;
    }
    if (this.#buffer.size + this.#held >= this.#s.maxBufferRecords) {
      // Drop the oldest record we still hold that is not on the wire right now.
      const waiting = this.#batches.find((b) => !b.sending);
      if (waiting) {
        waiting.records.shift();
        this.#held--;
        if (waiting.records.length === 0) this.#batches.splice(this.#batches.indexOf(waiting), 1);
        this.#drop(1);
      } else if (this.#buffer.dropOldest()) {
        this.#drop(1);
      } else {
        this.#drop(1);
        return;
      }
    }
    this.#buffer.push(record);
    if (this.#buffer.size >= this.#s.batchSize) this.#pump();
  }

  #drop(n: number, reason: 'full' | 'rejected' = 'full'): void {
    this.#dropReasons.add(reason);
    this.#droppedTotal += n;
    this.#unreported += n;
    this.#unannounced += n;
    this.#reportDrops(false);
  }

  #reportDrops(final: boolean): void {
    if (this.#unreported === 0) return;
    const now = Date.now();
    if (!final && now - this.#lastDropReport < this.#s.dropReportIntervalMs) return;
    this.#lastDropReport = now;
    const reasons = [...this.#dropReasons]
      .map((r) => (r === 'full' ? `buffer full (maxBufferRecords ${this.#s.maxBufferRecords})` : 'rejected by the collector'))
      .join(', ');
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
        if (this.#buffer.size < this.#s.batchSize && !this.#flushRequested && !this.#closing) return;
        batch = { records: this.#buffer.take(this.#s.batchSize, MAX_BATCH_BYTES), sending: false };
        this.#batches.push(batch);
        this.#held += batch.records.length;
      }
      this.#send(batch).catch((err: unknown) => this.#s.report(`internal error: ${(err as Error).message}`));
    }
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
    if (outcome === 'retry') {
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
    } else {
      this.#batches.splice(this.#batches.indexOf(batch), 1);
      this.#held -= batch.records.length;
      if (outcome === 'ok') {
        this.#delivered += batch.records.length;
        if (generation === this.#generation) this.#attempt = 0;
      } else {
        this.#drop(batch.records.length, 'rejected');
      }
    }
    this.#pump();
    this.#notify();
  }

  #notify(): void {
    const changed = this.#changed;
    this.#changed = undefined;
    changed?.();
  }

  async #post(batch: readonly string[]): Promise<Outcome> {
    // Each drop is announced by exactly one request: take the count now, give it back unless it got a 2xx.
    const announced = this.#unannounced;
    this.#unannounced = 0;
    const headers: Record<string, string> = { 'content-type': 'application/x-ndjson' };
    if (this.#s.token) headers.authorization = `Bearer ${this.#s.token}`;
    if (announced > 0) headers['x-hoptrace-dropped'] = String(announced);
    const timeout = this.#closing
      ? Math.max(1, Math.min(this.#s.requestTimeoutMs, this.#deadline - Date.now()))
      : this.#s.requestTimeoutMs;
    let ok = false;
    try {
      const res = await fetch(this.#endpoint, {
        method: 'POST',
        headers,
        body: batch.join('\n') + '\n',
        signal: AbortSignal.timeout(timeout),
      });
      const text = await res.text().catch(() => '');
      if (res.ok) {
        ok = true;
        this.#lastError = '';
        return 'ok';
      }
      let message = text.slice(0, 500);
      try {
        message = (JSON.parse(text) as { message?: string }).message ?? message;
      } catch {
        // not our error body
      }
      this.#lastError = `HTTP ${res.status}: ${message}`;
      if (res.status === 429 || res.status >= 500) return 'retry';
      const now = Date.now();
      if (now - this.#lastRejectReport >= this.#s.dropReportIntervalMs) {
        this.#lastRejectReport = now;
        this.#s.report(`the collector rejected a batch of ${batch.length} hop records (${this.#lastError}); dropping it`);
      }
      return 'rejected';
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      this.#lastError = cause?.code ?? cause?.message ?? (err as Error).message;
      return 'retry';
    } finally {
      if (!ok) this.#unannounced += announced;
    }
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
    while (this.#sending > 0 || this.#backoffTimer) {
      await new Promise<void>((resolve) => (this.#changed = resolve));
    }
    const left = this.#buffer.size + this.#held;
    if (left > 0) {
      this.#droppedTotal += left;
      this.#s.report(`${left} hop records not delivered within ${this.#s.closeTimeoutMs} ms of closing`);
    }
    this.#reportDrops(true);
    if (this.#droppedTotal > 0) {
      this.#s.report(`closed: ${this.#delivered} hop records delivered, ${this.#droppedTotal} dropped in total`);
    }
  }
}
