/**
 * The collector's own metrics, rendered in the Prometheus text exposition
 * format for `GET /metrics`. Counters live in memory (reset on restart, as
 * Prometheus expects); store figures are read when scraped.
 */
import type { StoreStats } from './store.ts';

type Labels = Record<string, string>;

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function labelText(labels: Labels): string {
  const keys = Object.keys(labels);
  if (keys.length === 0) return '';
  return `{${keys.map((k) => `${k}="${escapeLabel(labels[k])}"`).join(',')}}`;
}

/** A counter with optional labels. */
export class Counter {
  readonly name: string;
  readonly help: string;
  readonly #values = new Map<string, number>();

  constructor(name: string, help: string) {
    this.name = name;
    this.help = help;
  }

  inc(labels: Labels = {}, by = 1): void {
    const key = labelText(labels);
    this.#values.set(key, (this.#values.get(key) ?? 0) + by);
  }

  /** Value for one label set (tests, health). */
  get(labels: Labels = {}): number {
    return this.#values.get(labelText(labels)) ?? 0;
  }

  render(): string {
    let out = `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} counter\n`;
    if (this.#values.size === 0) out += `${this.name} 0\n`;
    for (const [labels, value] of this.#values) out += `${this.name}${labels} ${value}\n`;
    return out;
  }
}

function gauge(name: string, help: string, value: number): string {
  return `# HELP ${name} ${help}\n# TYPE ${name} gauge\n${name} ${value}\n`;
}

/** Every metric the collector exports. */
export class CollectorMetrics {
  readonly hopsIngested = new Counter('hoptrace_hops_ingested_total', 'Hop records accepted (committed), duplicates included.');
  readonly duplicates = new Counter('hoptrace_hops_duplicate_total', 'Accepted hop records that were already stored.');
  readonly rejected = new Counter('hoptrace_ingest_rejected_total', 'Ingest requests rejected, by error code.');
  readonly recordsRejected = new Counter(
    'hoptrace_records_rejected_total',
    'Invalid hop records left out of ingest requests (the valid ones of the request were stored), by the schema field at fault.',
  );
  readonly transportDropped = new Counter(
    'hoptrace_transport_dropped_total',
    'Hop records the hoptrace transports reported dropping (buffer full or rejected batch).',
  );
  readonly liveClientsCut = new Counter(
    'hoptrace_sse_clients_cut_total',
    'Live (SSE) clients disconnected, with a final reload event, for falling further behind than their buffer.',
  );
  readonly httpRequests = new Counter('hoptrace_http_requests_total', 'HTTP requests, by route and status.');

  render(extra: { store: StoreStats; sseClients: number }): string {
    return [
      this.hopsIngested.render(),
      this.duplicates.render(),
      this.rejected.render(),
      this.recordsRejected.render(),
      this.transportDropped.render(),
      gauge('hoptrace_store_hops', 'Hop records in the store.', extra.store.hops),
      gauge('hoptrace_store_chains', 'Chains in the store.', extra.store.chains),
      gauge('hoptrace_store_bytes', 'Bytes used by the store.', extra.store.bytes),
      gauge('hoptrace_sse_clients', 'Connected live (SSE) clients.', extra.sseClients),
      this.liveClientsCut.render(),
      this.httpRequests.render(),
    ].join('');
  }
}
