/**
 * Ships hop records to the collector's `POST /v1/hops` in NDJSON batches.
 * Never throws, never blocks the caller: records go into a bounded buffer
 * (oldest dropped when full), batches are sent when full or on a timer, and
 * failures are retried with exponential backoff while the collector is down
 * or answers 5xx/429. A 4xx batch is dropped and reported (retrying garbage
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

export class HopShipper {
  readonly #s: ShipperSettings;
  readonly #endpoint: string;
  readonly #buffer: HopBuffer;
  readonly #timer: NodeJS.Timeout;
  /** The batch being sent or waiting to be retried: the oldest records. */
  #inflight: string[] = [];
  #requestInProgress = false;
  #running: Promise<void> | undefined;
  #flushRequested = false;
  #attempt = 0;
  #closing = false;
  #deadline = Infinity;
  #wake: (() => void) | undefined;
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
    if (this.#buffer.size + this.#inflight.length >= this.#s.maxBufferRecords) {
      // Drop the oldest record we still hold that is not on the wire right now.
      if (this.#inflight.length > 0 && !this.#requestInProgress) {
        this.#inflight.shift();
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

  #pump(): void {
    if (this.#running) return;
    this.#running = this.#run()
      .catch((err: unknown) => this.#s.report(`internal error: ${(err as Error).message}`))
      .finally(() => {
        this.#running = undefined;
      });
  }

  async #run(): Promise<void> {
    for (;;) {
      if (this.#inflight.length === 0) {
        if (this.#buffer.size === 0) {
          this.#flushRequested = false;
          return;
        }
        if (this.#buffer.size < this.#s.batchSize && !this.#flushRequested && !this.#closing) return;
        this.#inflight = this.#buffer.take(this.#s.batchSize, MAX_BATCH_BYTES);
      }
      if (this.#closing && Date.now() >= this.#deadline) return;
      const outcome = await this.#post(this.#inflight);
      if (outcome === 'ok') {
        this.#delivered += this.#inflight.length;
        this.#inflight = [];
        this.#attempt = 0;
        continue;
      }
      if (outcome === 'rejected') {
        const n = this.#inflight.length;
        this.#inflight = [];
        this.#drop(n, 'rejected');
        continue;
      }
      // Retry the same batch (the collector dedupes, so a lost 202 costs nothing) after a backoff.
      this.#attempt++;
      const base = Math.min(this.#s.maxRetryDelayMs, FIRST_RETRY_DELAY_MS * 2 ** Math.min(this.#attempt - 1, 30));
      const delay = base / 2 + Math.random() * (base / 2);
      await this.#sleep(this.#closing ? Math.min(delay, Math.max(0, this.#deadline - Date.now())) : delay);
      if (this.#closing && Date.now() >= this.#deadline) return;
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.#wake = done;
    }).finally(() => {
      this.#wake = undefined;
    });
  }

  async #post(batch: readonly string[]): Promise<Outcome> {
    const announced = this.#unannounced;
    const headers: Record<string, string> = { 'content-type': 'application/x-ndjson' };
    if (this.#s.token) headers.authorization = `Bearer ${this.#s.token}`;
    if (announced > 0) headers['x-hoptrace-dropped'] = String(announced);
    const timeout = this.#closing
      ? Math.max(1, Math.min(this.#s.requestTimeoutMs, this.#deadline - Date.now()))
      : this.#s.requestTimeoutMs;
    this.#requestInProgress = true;
    try {
      const res = await fetch(this.#endpoint, {
        method: 'POST',
        headers,
        body: batch.join('\n') + '\n',
        signal: AbortSignal.timeout(timeout),
      });
      const text = await res.text().catch(() => '');
      if (res.ok) {
        this.#unannounced -= announced;
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
      this.#requestInProgress = false;
    }
  }

  /** Send what is buffered within `closeTimeoutMs`, then report and stop. */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    this.#deadline = Date.now() + this.#s.closeTimeoutMs;
    clearInterval(this.#timer);
    this.#wake?.();
    this.#pump();
    while (this.#running) await this.#running;
    const left = this.#buffer.size + this.#inflight.length;
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
