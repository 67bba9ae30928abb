/**
 * Clock skew: how far each service's clock is off, judged only from what
 * must have happened in order. Every happens-before edge between hops of two
 * different services (a send and its receive, a reject and the dead-lettered
 * copy's receive, a parent's handling and a child's send) says
 * `ts(to) + offset(toService) ≥ ts(from) + offset(fromService)`: a system of
 * difference constraints over the services.
 *
 * 1. Smallest correction: every offset starts at 0 and a violated constraint
 *    moves the receiving service's clock forward (Bellman-Ford relaxation on
 *    the service graph), or, when that service is the reference (held at 0),
 *    the sending service's clock back. Clocks that agree stay at 0: ordinary
 *    queue wait never turns into skew.
 * 2. Centring: a service that had to move and is bounded from both sides
 *    (replies, onward messages to services on the reference's clock) slides
 *    to the middle of what its constraints allow (the NTP estimate), but
 *    never more than twice its smallest correction, so a slow return path
 *    cannot invent seconds of skew from a millisecond of disagreement.
 *    Bounded from one side only (traffic one way), it keeps the smallest
 *    correction, as Jaeger's and Zipkin's clock-skew adjusters do: one
 *    direction of traffic bounds a clock, it does not measure it.
 * 3. Intervals: the offsets a service's own constraints allow, with the
 *    other clocks where steps 1 and 2 put them, are reported with the
 *    estimate, and whether they bound it from both sides (`measured`), one
 *    (`bounded`) or none; an estimate its constraints cannot all hold for
 *    is `conflicting`.
 */
import type { ServiceSkew, SkewBasis } from './api-types.ts';

/** One cross-service happens-before sample: `offset(to) − offset(from) ≥ minDifference`. */
export interface SkewSample {
  fromService: string;
  toService: string;
  /** `ts(from) − ts(to)` on the raw clocks. */
  minDifference: number;
}

export interface SkewEstimate {
  /** Offset per service, ms to add to its timestamps. */
  offsets: Map<string, number>;
  /** One entry per service, in the order `services` listed them. */
  skew: ServiceSkew[];
}

interface Bound {
  /** Largest lower bound on offset(to) − offset(from). */
  lo: number;
  samples: number;
}

/** Estimate of `offset(b) − offset(a)` from the interval `[lo, hi]` the samples allow. */
const round = (x: number): number => {
  const r = Math.round(x * 1000) / 1000;
  return r === 0 ? 0 : r;
};

/**
 * @param services every service of the chain (each appears in the result once)
 * @param samples cross-service constraints; same-service ones are ignored
 * @param preferredReference the service others are measured against, when it has any constraint
 */
export function estimateSkew(
  services: readonly string[],
  samples: Iterable<SkewSample>,
  preferredReference?: string,
): SkewEstimate {
  const bounds = new Map<string, Map<string, Bound>>();
  const sampleCount = new Map<string, number>();
  for (const s of services) sampleCount.set(s, 0);
  for (const s of samples) {
    if (s.fromService === s.toService || !Number.isFinite(s.minDifference)) continue;
    let row = bounds.get(s.fromService);
    if (row === undefined) bounds.set(s.fromService, (row = new Map()));
    const b = row.get(s.toService);
    if (b === undefined) row.set(s.toService, { lo: s.minDifference, samples: 1 });
    else {
      b.lo = Math.max(b.lo, s.minDifference);
      b.samples++;
    }
    sampleCount.set(s.fromService, (sampleCount.get(s.fromService) ?? 0) + 1);
    sampleCount.set(s.toService, (sampleCount.get(s.toService) ?? 0) + 1);
  }
  const all = [...sampleCount.keys()];
  const constrained = all
    .filter((s) => (sampleCount.get(s) ?? 0) > 0)
    .sort((x, y) => (sampleCount.get(y) ?? 0) - (sampleCount.get(x) ?? 0) || (x < y ? -1 : x > y ? 1 : 0));
  const reference =
    preferredReference !== undefined && (sampleCount.get(preferredReference) ?? 0) > 0
      ? preferredReference
      : (constrained[0] ?? preferredReference ?? services[0]);

  // Constraints as flat arrays, sorted so the result never depends on input order.
  const list: { from: string; to: string; lo: number }[] = [];
  const incoming = new Map<string, { from: string; lo: number }[]>();
  const outgoing = new Map<string, { to: string; lo: number }[]>();
  for (const [from, row] of bounds) for (const [to, b] of row) list.push({ from, to, lo: b.lo });
  list.sort((x, y) => (x.from < y.from ? -1 : x.from > y.from ? 1 : x.to < y.to ? -1 : x.to > y.to ? 1 : 0));
  for (const c of list) {
    if (!incoming.has(c.to)) incoming.set(c.to, []);
    incoming.get(c.to)!.push({ from: c.from, lo: c.lo });
    if (!outgoing.has(c.from)) outgoing.set(c.from, []);
    outgoing.get(c.from)!.push({ to: c.to, lo: c.lo });
  }

  // 1. Smallest correction.
  const offsets = new Map<string, number>();
  for (const s of all) offsets.set(s, 0);
  const rounds = all.length + 1;
  for (let r = 0; r < rounds; r++) {
    let changed = false;
    for (const c of list) {
      const oa = offsets.get(c.from)!;
      const ob = offsets.get(c.to)!;
      if (ob - oa >= c.lo - 1e-6) continue;
      if (c.to !== reference) offsets.set(c.to, oa + c.lo);
      else if (c.from !== reference) offsets.set(c.from, ob - c.lo);
      else continue;
      changed = true;
    }
    if (!changed) break;
  }

  // 2. Centring, strongest-sampled services first; each move stays inside what its constraints allow.
  for (const s of constrained) {
    const x = offsets.get(s)!;
    if (s === reference || x === 0) continue;
    let lo = -Infinity;
    let hi = Infinity;
    for (const c of incoming.get(s) ?? []) lo = Math.max(lo, offsets.get(c.from)! + c.lo);
    for (const c of outgoing.get(s) ?? []) hi = Math.min(hi, offsets.get(c.to)! - c.lo);
    if (!Number.isFinite(lo) || !Number.isFinite(hi) || lo > hi) continue;
    const mid = (lo + hi) / 2;
    const next = x > 0 ? Math.min(mid, 2 * Math.max(lo, 0)) : Math.max(mid, 2 * Math.min(hi, 0));
    if (next >= lo && next <= hi) offsets.set(s, next);
  }

  // 3. Intervals: what each service's constraints allow with the other clocks where they were put.
  const skew = services.map((service): ServiceSkew => {
    const entry: ServiceSkew = {
      service,
      offsetMs: round(offsets.get(service) ?? 0),
      samples: sampleCount.get(service) ?? 0,
      reference: service === reference,
      basis: 'none',
    };
    if (entry.reference) {
      entry.basis = 'reference';
      return entry;
    }
    let lo = -Infinity;
    let hi = Infinity;
    for (const c of incoming.get(service) ?? []) lo = Math.max(lo, offsets.get(c.from)! + c.lo);
    for (const c of outgoing.get(service) ?? []) hi = Math.min(hi, offsets.get(c.to)! - c.lo);
    const x = offsets.get(service) ?? 0;
    if (lo > hi + 1e-6 || x < lo - 1e-6 || x > hi + 1e-6) {
      entry.basis = 'conflicting';
      return entry;
    }
    if (Number.isFinite(lo)) entry.lowerMs = round(lo);
    if (Number.isFinite(hi)) entry.upperMs = round(hi);
    entry.basis = basisOf(lo, hi);
    return entry;
  });
  const rounded = new Map(skew.map((s) => [s.service, s.offsetMs]));
  return { offsets: rounded, skew };
}

function basisOf(lo: number, hi: number): SkewBasis {
  const a = Number.isFinite(lo);
  const b = Number.isFinite(hi);
  return a && b ? 'measured' : a || b ? 'bounded' : 'none';
}
