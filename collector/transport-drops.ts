/**
 * Drop reports from hoptrace transports, turned into the exact
 * `hoptrace_transport_dropped_total`.
 *
 * A transport sends, with its requests, its own id and the number of records
 * it has dropped since it started. The collector counts the growth of that
 * total per transport, so a report that arrives twice (a retry after a lost
 * answer) or out of order (requests in flight together) counts once, and
 * the counter equals the sum of the transports' own counts as soon as each
 * has reported its last total. Older transports send only the records dropped
 * since their last successful request; those count as they come.
 */
import type { Counter } from './metrics.ts';

/** Transports remembered at once; the longest silent is forgotten first (it would then count from zero again). */
const MAX_TRANSPORTS = 10_000;
const ID = /^[A-Za-z0-9._:-]{1,128}$/;

function count(text: string | undefined): number | undefined {
  if (text === undefined || !/^\d{1,15}$/.test(text)) return undefined;
  return Number(text);
}

export class TransportDrops {
  readonly #counter: Counter;
  /** Last total reported, by transport id, least recently reported first. */
  readonly #totals = new Map<string, number>();

  constructor(counter: Counter) {
    this.#counter = counter;
  }

  /**
   * One request's report: `total` with `transport` (cumulative, counted by its growth),
   * or `delta` alone (an older transport). Malformed values are ignored.
   */
  report(r: { transport?: string; total?: string; delta?: string }): void {
    const total = count(r.total);
    if (total !== undefined && r.transport !== undefined && ID.test(r.transport)) {
      const last = this.#totals.get(r.transport) ?? 0;
      this.#totals.delete(r.transport);
      this.#totals.set(r.transport, Math.max(last, total));
      if (total > last) this.#counter.inc({}, total - last);
      if (this.#totals.size > MAX_TRANSPORTS) this.#totals.delete(this.#totals.keys().next().value as string);
      return;
    }
    const delta = count(r.delta);
    if (delta !== undefined && delta > 0) this.#counter.inc({}, delta);
  }
}
