/**
 * Topology kept as per-minute aggregates instead of computed from hops at
 * query time.
 *
 * Every message contributes edges, derived from all of its hops (whatever
 * order they arrived in):
 * - one publish per (sending service, exchange): service → exchange, at the
 *   first such send; an error when any hop of the message is a `return` or a
 *   `nack` confirm;
 * - one delivery per (consuming service, queue, exchange of the receive), at
 *   its first receive: exchange → queue (an error when a receive carries a
 *   death count) and queue → service (an error when that service's handler
 *   failed or it nacked/rejected from that queue), with the queue wait from
 *   the message's first send when one is stored.
 *
 * The store adds a message's contributions to `topology_buckets`, one row per
 * (minute, edge), when its hops are ingested: the contributions after the
 * write minus those before, so a late send or a failing settle moves counts
 * between buckets instead of adding to them. Retention subtracts them the
 * same way. A query sums the minutes the window covers whole and computes the
 * partial minutes at its two ends from the hops.
 *
 * Each edge's rate is over the part of the window in which it had traffic
 * (its first to last contribution; a whole bucket counts from its start to
 * its end), at least one bucket long, so two minutes of traffic in a 24-hour
 * window read as what they were, whatever other edges did an hour later.
 *
 * Lost and stuck messages are verdicts of time, reached by the status sweep
 * long after ingest; they are not kept here. A query adds them from the
 * summaries of the chains that have them ({@link addStalled}).
 *
 * Queue waits are kept as a log-scale histogram: 16 bins per doubling, each
 * holding a count and the sum of its waits in whole microseconds. A
 * percentile is the mean of the bin holding the nearest-rank sample, so it is
 * within one bin (≤ 4.4 %) of the exact nearest-rank value, and exact when
 * every wait in that bin is the same (to the microsecond).
 */
import type { ChainSummary, Topology, TopologyEdge, TopologyNode } from './api-types.ts';

/** Width of one bucket. Stored data depends on it: changing it needs a migration that rebuilds the table. */
export const TOPOLOGY_BUCKET_MS = 60_000;

/** Histogram bins per doubling of the wait. */
const BINS_PER_OCTAVE = 16;
/** Waits at or below 2^-10 ms (~1 µs) share bin 0. */
const BIN_OFFSET = 10 * BINS_PER_OCTAVE;

/** The histogram bin of a wait in microseconds. */
export function waitBin(waitUs: number): number {
  const ms = waitUs / 1000;
  if (ms <= 2 ** -10) return 0;
  return Math.floor(Math.log2(ms) * BINS_PER_OCTAVE) + BIN_OFFSET;
}

/** What the topology needs of one stored hop. */
export interface TopologyHop {
  kind: string;
  service: string;
  exchange: string | null;
  queue: string | null;
  ts: number;
  outcome: string | null;
  deathCount: number | null;
}

/** One edge a message contributes: at `ts`, an error or not, with a queue wait (µs) or not. */
export interface EdgeContribution {
  ts: number;
  from: string;
  to: string;
  error: boolean;
  waitUs?: number;
}

/** Every edge one message contributes, from all of its stored hops. */
export function messageContributions(hops: readonly TopologyHop[]): EdgeContribution[] {
  let sent = Infinity;
  let publishFailed = false;
  const publishes = new Map<string, EdgeContribution>();
  const deliveries = new Map<string, { ts: number; exchange: string; queue: string; service: string; deaths: boolean }>();
  const handlerFailed = new Set<string>();
  for (const h of hops) {
    switch (h.kind) {
      case 'send': {
        if (h.ts < sent) sent = h.ts;
        const exchange = h.exchange ?? '';
        const key = `${h.service}\u0000${exchange}`;
        const p = publishes.get(key);
        if (!p) publishes.set(key, { ts: h.ts, from: `service:${h.service}`, to: `exchange:${exchange}`, error: false });
        else if (h.ts < p.ts) p.ts = h.ts;
        break;
      }
      case 'return':
        publishFailed = true;
        break;
      case 'confirm':
        if (h.outcome === 'nack') publishFailed = true;
        break;
      case 'receive': {
        const exchange = h.exchange ?? '';
        const queue = h.queue ?? '';
        const key = `${h.service}\u0000${queue}\u0000${exchange}`;
        const deaths = (h.deathCount ?? 0) > 0;
        const d = deliveries.get(key);
        if (!d) deliveries.set(key, { ts: h.ts, exchange, queue, service: h.service, deaths });
        else {
          if (h.ts < d.ts) d.ts = h.ts;
          if (deaths) d.deaths = true;
        }
        break;
      }
      case 'process':
        if (h.outcome === 'error') handlerFailed.add(`${h.service}\u0000${h.queue ?? ''}`);
        break;
      case 'settle':
        if (h.outcome === 'nack' || h.outcome === 'reject') handlerFailed.add(`${h.service}\u0000${h.queue ?? ''}`);
        break;
    }
  }
  const out: EdgeContribution[] = [];
  for (const p of publishes.values()) {
    p.error = publishFailed;
    out.push(p);
  }
  for (const d of deliveries.values()) {
    out.push({ ts: d.ts, from: `exchange:${d.exchange}`, to: `queue:${d.queue}`, error: d.deaths });
    const consumed: EdgeContribution = {
      ts: d.ts,
      from: `queue:${d.queue}`,
      to: `service:${d.service}`,
      error: handlerFailed.has(`${d.service}\u0000${d.queue}`),
    };
    if (sent !== Infinity) consumed.waitUs = Math.round(Math.max(0, d.ts - sent) * 1000);
    out.push(consumed);
  }
  return out;
}

/** A sparse wait histogram: bin → [count, sum of waits in µs]. */
type Histogram = Map<number, [number, number]>;

/** Counts of one edge (in one bucket, or summed over a window). */
export interface EdgeCounts {
  from: string;
  to: string;
  count: number;
  errors: number;
  waits: Histogram;
  /** Earliest and latest time of the traffic added at query time (see {@link EdgeTally.addRow}). */
  firstTs?: number;
  lastTs?: number;
}

/** Stored form of a histogram: a JSON array `[bin, count, sumUs, bin, count, sumUs, …]`, bins ascending; null when empty. */
export function encodeWaits(waits: Histogram): string | null {
  if (waits.size === 0) return null;
  const out: number[] = [];
  for (const bin of [...waits.keys()].sort((a, b) => a - b)) {
    const [n, sum] = waits.get(bin)!;
    out.push(bin, n, sum);
  }
  return JSON.stringify(out);
}

export function addEncodedWaits(into: Histogram, encoded: string | null, sign = 1): void {
  if (encoded === null) return;
  const flat = JSON.parse(encoded) as number[];
  for (let i = 0; i < flat.length; i += 3) addWait(into, flat[i], sign * flat[i + 1], sign * flat[i + 2]);
}

function addWait(into: Histogram, bin: number, n: number, sumUs: number): void {
  const cell = into.get(bin);
  if (!cell) {
    into.set(bin, [n, sumUs]);
    return;
  }
  cell[0] += n;
  cell[1] += sumUs;
  // A message whose wait moved within the bin nets a zero count but not a zero sum: keep that.
  if (cell[0] === 0 && cell[1] === 0) into.delete(bin);
}

/** Nearest-rank percentile of a histogram, in ms: the mean of the bin holding the rank. */
function histogramPercentile(waits: Histogram, total: number, p: number): number {
  const rank = Math.min(total, Math.max(1, Math.ceil(p * total)));
  let seen = 0;
  for (const bin of [...waits.keys()].sort((a, b) => a - b)) {
    const [n, sum] = waits.get(bin)!;
    seen += n;
    if (seen >= rank) return Math.round(sum / n) / 1000;
  }
  return NaN;
}

/** Edge counts keyed by edge (and bucket, when it matters), netted as contributions come and go. */
export class EdgeTally {
  readonly #edges = new Map<string, EdgeCounts & { bucket: number }>();

  #cell(bucket: number, from: string, to: string): EdgeCounts & { bucket: number } {
    const key = `${bucket}\u0000${from}\u0000${to}`;
    let e = this.#edges.get(key);
    if (!e) {
      e = { bucket, from, to, count: 0, errors: 0, waits: new Map() };
      this.#edges.set(key, e);
    }
    return e;
  }

  /** Add (sign 1) or take away (sign -1) contributions; `bucketed` keys them by bucket too. */
  addContributions(contributions: readonly EdgeContribution[], sign: 1 | -1, bucketed: boolean): void {
    for (const c of contributions) {
      const e = this.#cell(bucketed ? Math.floor(c.ts / TOPOLOGY_BUCKET_MS) * TOPOLOGY_BUCKET_MS : 0, c.from, c.to);
      e.count += sign;
      if (c.error) e.errors += sign;
      if (c.waitUs !== undefined) addWait(e.waits, waitBin(c.waitUs), sign, sign * c.waitUs);
      if (!bucketed && sign === 1) widen(e, c.ts, c.ts);
    }
  }

  /**
   * Add an edge's summed bucket rows; `waits` is a JSON array of their stored
   * histograms, or null; `buckets`, the first and last bucket summed (their
   * traffic counts as spread over those whole minutes).
   */
  addRow(from: string, to: string, count: number, errors: number, waits: string | null, buckets?: { first: number; last: number }): void {
    const e = this.#cell(0, from, to);
    e.count += count;
    e.errors += errors;
    if (buckets !== undefined) widen(e, buckets.first, buckets.last + TOPOLOGY_BUCKET_MS);
    if (waits === null) return;
    for (const flat of JSON.parse(waits) as number[][]) {
      for (let i = 0; i < flat.length; i += 3) addWait(e.waits, flat[i], flat[i + 1], flat[i + 2]);
    }
  }

  /** The cells that changed (some count or bin not zero). */
  *changed(): IterableIterator<EdgeCounts & { bucket: number }> {
    for (const e of this.#edges.values()) if (e.count !== 0 || e.errors !== 0 || e.waits.size > 0) yield e;
  }

  /** The API's topology from the summed edges. */
  toTopology(from: number, to: number): Topology {
    const nodes = new Map<string, TopologyNode>();
    const node = (id: string): void => {
      if (!nodes.has(id)) nodes.set(id, nodeOf(id));
    };
    let first = Infinity;
    let last = -Infinity;
    for (const e of this.#edges.values()) {
      if (e.count <= 0 || e.firstTs === undefined || e.lastTs === undefined) continue;
      first = Math.min(first, e.firstTs);
      last = Math.max(last, e.lastTs);
    }
    const traffic = Number.isFinite(first) ? trafficSpan(first, last, from, to) : undefined;
    const edges: TopologyEdge[] = [];
    for (const e of this.#edges.values()) {
      if (e.count <= 0) continue;
      const span = e.firstTs !== undefined && e.lastTs !== undefined ? trafficSpan(e.firstTs, e.lastTs, from, to) : { from, to };
      const spanSec = Math.max(0.001, (span.to - span.from) / 1000);
      node(e.from);
      node(e.to);
      const edge: TopologyEdge = {
        from: e.from,
        to: e.to,
        count: e.count,
        errorCount: e.errors,
        errorRate: e.errors / e.count,
        ratePerSec: e.count / spanSec,
      };
      let waited = 0;
      for (const [n] of e.waits.values()) waited += n;
      if (waited > 0) {
        edge.queueWaitP50Ms = histogramPercentile(e.waits, waited, 0.5);
        edge.queueWaitP95Ms = histogramPercentile(e.waits, waited, 0.95);
      }
      edges.push(edge);
    }
    const topology: Topology = { nodes: [...nodes.values()], edges, from, to };
    if (traffic !== undefined) {
      topology.trafficFrom = traffic.from;
      topology.trafficTo = traffic.to;
    }
    return topology;
  }
}

function widen(e: EdgeCounts, first: number, last: number): void {
  if (e.firstTs === undefined || first < e.firstTs) e.firstTs = first;
  if (e.lastTs === undefined || last > e.lastTs) e.lastTs = last;
}

/** The traffic's span inside the window, stretched to at least one bucket (or the whole window when it is shorter). */
function trafficSpan(first: number, last: number, from: number, to: number): { from: number; to: number } {
  let a = Math.max(first, from);
  let b = Math.min(last, to);
  const need = Math.min(TOPOLOGY_BUCKET_MS, to - from);
  if (b - a < need) {
    const grow = need - (b - a);
    a -= grow / 2;
    b += grow / 2;
    if (a < from) [a, b] = [from, b + (from - a)];
    if (b > to) [a, b] = [a - (b - to), to];
  }
  return { from: a, to: Math.max(b, a + 1) };
}

/** How far before a topology window a chain may start and still have lost or stuck messages inside it. */
export const STALLED_LOOKBACK_MS = 60 * 60 * 1000;

/**
 * Add the lost and stuck messages of these chain summaries whose hop time
 * falls in the topology's window to their edges (see {@link StalledEdge}),
 * drawing the nodes and edges that carried no other traffic. Returns a new
 * topology.
 */
export function addStalled(topology: Topology, summaries: Iterable<ChainSummary>): Topology {
  const nodes = new Map(topology.nodes.map((n) => [n.id, n]));
  const edges = new Map(topology.edges.map((e) => [`${e.from}\u0000${e.to}`, { ...e }]));
  for (const summary of summaries) {
    for (const s of summary.stalled ?? []) {
      if (s.ts < topology.from || s.ts > topology.to) continue;
      for (const id of [s.from, s.to]) if (!nodes.has(id)) nodes.set(id, nodeOf(id));
      const key = `${s.from}\u0000${s.to}`;
      let e = edges.get(key);
      if (e === undefined) {
        e = { from: s.from, to: s.to, count: 0, errorCount: 0, errorRate: 0 };
        edges.set(key, e);
      }
      if (s.status === 'lost') e.lostCount = (e.lostCount ?? 0) + s.count;
      else e.stuckCount = (e.stuckCount ?? 0) + s.count;
    }
  }
  return { ...topology, nodes: [...nodes.values()], edges: [...edges.values()] };
}

function nodeOf(id: string): TopologyNode {
  const sep = id.indexOf(':');
  const kind = id.slice(0, sep) as TopologyNode['kind'];
  const name = id.slice(sep + 1);
  return { id, kind, label: kind === 'exchange' && name === '' ? '(default)' : name };
}

/**
 * The columns of `hops` that {@link TopologyHop} reads, in its field names;
 * JSON is parsed only for the kinds whose outcome or death count matters.
 */
export const TOPOLOGY_HOP_COLUMNS = `kind, service, exchange, queue, ts,
  CASE WHEN kind IN ('confirm', 'process', 'settle') THEN json_extract(json, '$.outcome') END AS outcome,
  CASE WHEN kind = 'receive' THEN json_extract(json, '$.deathCount') END AS deathCount`;
