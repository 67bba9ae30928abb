/**
 * Timeline geometry, computed once per chain. Time runs down the page, one
 * lane (column) per service, one row per hop in causal order. The space
 * between two rows grows with the time between them (on adjusted clocks) up
 * to a cap; a longer step is an idle gap, drawn compressed and labelled.
 *
 * A receive's queue wait (and its arrow) starts where the collector says the
 * message entered the queue: its publish, the settle that requeued it, the
 * reject that dead-lettered it. A chain still waiting for something ends in
 * a "now" row, and what it waits for is a bar that runs down to it.
 *
 * Everything is plain numbers in arrays so the view can cut out the visible
 * window by binary search on every scroll.
 */
import type { ChainHop, OpenWait } from '../../collector/api-types.ts';
import { formatDuration } from './format.ts';

export const ROW_HEIGHT = 26;
/** Height of a compressed gap band between two rows. */
export const GAP_HEIGHT = 30;
/** Most extra space one proportional step may take before it counts as a gap. */
const MAX_EXTRA = 60;
/** Below this a step is never called a gap, only capped. */
const MIN_GAP_MS = 250;

export interface Bar {
  /** `open`: still waiting at "now" (an open wait or an unsettled delivery), drawn to the now row. */
  kind: 'wait' | 'handling' | 'open-wait' | 'open-handling';
  lane: number;
  /** Sub-column within the lane when deliveries overlap. */
  slot: number;
  y1: number;
  y2: number;
  /** Hop index the bar ends on (receive for a wait, process for handling; the hop it started at for an open bar). */
  toIndex: number;
  fromIndex: number;
  failed: boolean;
  label: string;
  /** The figure rests on a clock-skew estimate. */
  approx?: boolean;
  /** For an open bar: what it waits for. */
  open?: OpenWait;
}

export interface Arrow {
  fromLane: number;
  toLane: number;
  y1: number;
  y2: number;
  fromIndex: number;
  toIndex: number;
  /** The delivery came back through a dead-letter exchange. */
  deadLettered: boolean;
  /** A redelivery: from the settle that requeued it. */
  redelivery: boolean;
}

export interface Gap {
  /** Top and bottom of the band. */
  y1: number;
  y2: number;
  /** Index of the hop after the gap (`hops.length` for the gap before "now"). */
  beforeIndex: number;
  ms: number;
  label: string;
}

export interface TimelineLayout {
  lanes: string[];
  laneOf: number[];
  /** Top of each hop's row. */
  rowTop: Float64Array;
  height: number;
  bars: Bar[];
  arrows: Arrow[];
  gaps: Gap[];
  /** Adjusted ms since the chain's first hop, per hop. */
  offsetMs: Float64Array;
  /** When the chain is still open: the row for "now" at the bottom, and its time since the first hop (at load). */
  now?: { top: number; offsetMs: number };
}

/** What the layout needs of a chain besides its hops. */
export interface LayoutInput {
  hops: readonly ChainHop[];
  serviceOrder?: readonly string[];
  indexById?: ReadonlyMap<number, number>;
  open?: readonly OpenWait[];
  /** See {@link ChainModel.openUntilMs}. */
  openUntilMs?: number;
  /** Receive hop ids whose wait rests on a clock-skew estimate. */
  approxWaits?: ReadonlySet<number>;
}

function quantile(sorted: number[], q: number): number {
  if (!sorted.length) return 0;
  const at = Math.min(sorted.length - 1, Math.max(0, Math.floor(q * (sorted.length - 1))));
  return sorted[at];
}

const OPEN_LABEL: Record<OpenWait['kind'], (o: OpenWait, hop: ChainHop) => string> = {
  unreceived: (o, hop) => `sent, not received for ${formatDuration(o.waitedMs)}${o.queue ? ` (in ${o.queue})` : ` (via ${hop.exchange || 'the default exchange'})`}`,
  unsettled: (o) => `received, not settled for ${formatDuration(o.waitedMs)}`,
  requeued: (o) => `requeued, not redelivered for ${formatDuration(o.waitedMs)}`,
  'dead-letter': (o) => `rejected ${formatDuration(o.waitedMs)} ago; no dead-lettered copy yet`,
};

export function layoutTimeline(input: LayoutInput): TimelineLayout {
  const { hops, serviceOrder = [], open = [] } = input;
  const n = hops.length;
  const indexById = input.indexById ?? new Map(hops.map((h, i) => [h.id, i]));
  // Lanes: the collector's service order first, then anyone it forgot, in order of appearance.
  const lanes: string[] = [];
  const laneIndex = new Map<string, number>();
  const addLane = (service: string) => {
    if (!laneIndex.has(service)) {
      laneIndex.set(service, lanes.length);
      lanes.push(service);
    }
  };
  // Appearance order reads best (the publisher on the left); the collector's list only adds missing ones.
  for (const hop of hops) addLane(hop.service);
  for (const service of serviceOrder) addLane(service);
  const laneOf = hops.map((hop) => laneIndex.get(hop.service)!);

  let start = n ? Infinity : 0;
  for (const hop of hops) if (hop.adjustedTs < start) start = hop.adjustedTs;
  const offsetMs = new Float64Array(n);
  for (let i = 0; i < n; i++) offsetMs[i] = hops[i].adjustedTs - start;

  // Steps between consecutive rows; negative (independent hops ordered by causality) count as 0.
  const steps = new Float64Array(n);
  for (let i = 1; i < n; i++) steps[i] = Math.max(0, hops[i].adjustedTs - hops[i - 1].adjustedTs);
  const positive = [...steps.subarray(1)].filter((s) => s > 0).sort((a, b) => a - b);
  // Scale so a typical (90th percentile) step gets a quarter of the cap: ordinary steps
  // stay proportional, an outlier becomes a labelled gap instead of a blank screen.
  const p90 = quantile(positive, 0.9);
  const scale = p90 > 0 ? MAX_EXTRA / 4 / p90 : 0;

  const rowTop = new Float64Array(n);
  const gapAt: number[] = [];
  let y = 8;
  for (let i = 0; i < n; i++) {
    if (i > 0) {
      const extra = steps[i] * scale;
      if (extra > MAX_EXTRA && steps[i] >= MIN_GAP_MS) {
        gapAt.push(i);
        y += GAP_HEIGHT;
      } else {
        y += Math.min(extra, MAX_EXTRA);
      }
    }
    rowTop[i] = y;
    y += ROW_HEIGHT;
  }
  // Still open: a band for the time since the last hop, then a row for "now".
  let now: TimelineLayout['now'];
  let nowGap: Gap | undefined;
  if (n > 0 && open.length > 0) {
    const nowOffset = Math.max(input.openUntilMs ?? 0, offsetMs[n - 1]);
    nowGap = { y1: y, y2: y + GAP_HEIGHT, beforeIndex: n, ms: nowOffset - offsetMs[n - 1], label: '' };
    y += GAP_HEIGHT;
    now = { top: y, offsetMs: nowOffset };
    y += ROW_HEIGHT;
  }
  const height = y + 8;
  const mid = (i: number) => rowTop[i] + ROW_HEIGHT / 2;

  // Sends by message, for receives the collector gave no wait source.
  const sendsOf = new Map<string, number[]>();
  for (let i = 0; i < n; i++) {
    if (hops[i].kind === 'send') {
      let list = sendsOf.get(hops[i].messageId);
      if (!list) sendsOf.set(hops[i].messageId, (list = []));
      list.push(i);
    }
  }
  const consumerKey = (h: ChainHop) => `${h.messageId}\u0000${h.service}\u0000${h.instance}\u0000${h.queue ?? ''}`;
  const openReceive = new Map<string, number>();
  const arrows: Arrow[] = [];
  const waits: Array<Omit<Bar, 'slot'>> = [];
  const handlings: Array<Omit<Bar, 'slot'>> = [];
  for (let i = 0; i < n; i++) {
    const hop = hops[i];
    if (hop.kind === 'receive') {
      // The queue wait starts where the collector says (the publish, the requeueing settle, the dead-lettering reject).
      let from = hop.waitSinceHopId === undefined ? undefined : indexById.get(hop.waitSinceHopId);
      if (from === undefined) {
        const sends = sendsOf.get(hop.messageId);
        if (sends?.length) {
          from = sends[0];
          for (const s of sends) if (s < i) from = s;
        }
      }
      if (from !== undefined) {
        const deadLettered = (hop.deathCount ?? 0) > 0 || (hop.death?.length ?? 0) > 0;
        const redelivery = hops[from].kind === 'settle' && !deadLettered;
        arrows.push({ fromLane: laneOf[from], toLane: laneOf[i], y1: mid(from), y2: mid(i), fromIndex: from, toIndex: i, deadLettered, redelivery });
        if (from < i) {
          const approx = input.approxWaits?.has(hop.id) ?? false;
          const since = hops[from].kind === 'send' ? '' : deadLettered ? ' after it was dead-lettered' : ' after it was requeued';
          waits.push({
            kind: 'wait',
            lane: laneOf[i],
            y1: mid(from),
            y2: mid(i),
            fromIndex: from,
            toIndex: i,
            failed: false,
            approx,
            label: `waited ${approx ? '≈ ' : ''}${formatDuration(hop.adjustedTs - hops[from].adjustedTs)} in ${hop.queue ?? 'queue'}${since}`,
          });
        }
      }
      openReceive.set(consumerKey(hop), i);
    } else if (hop.kind === 'replay' && hop.waitSinceHopId !== undefined) {
      // A replay branches off the dead letter it took the message from.
      const from = indexById.get(hop.waitSinceHopId);
      if (from !== undefined) {
        arrows.push({ fromLane: laneOf[from], toLane: laneOf[i], y1: mid(from), y2: mid(i), fromIndex: from, toIndex: i, deadLettered: true, redelivery: false });
        if (from < i) {
          waits.push({
            kind: 'wait',
            lane: laneOf[i],
            y1: mid(from),
            y2: mid(i),
            fromIndex: from,
            toIndex: i,
            failed: false,
            approx: false,
            label: `waited ${formatDuration(hop.adjustedTs - hops[from].adjustedTs)} in ${hop.queue ?? 'the dead-letter queue'} until replayed`,
          });
        }
      }
    } else if (hop.kind === 'process') {
      const key = consumerKey(hop);
      const from = openReceive.get(key);
      if (from !== undefined) {
        openReceive.delete(key);
        handlings.push({
          kind: 'handling',
          lane: laneOf[i],
          y1: mid(from),
          y2: mid(i),
          fromIndex: from,
          toIndex: i,
          failed: hop.outcome === 'error',
          label: `handled in ${formatDuration(hop.durationMs ?? hop.adjustedTs - hops[from].adjustedTs)}${hop.outcome === 'error' ? ' (error)' : ''}`,
        });
      }
    }
  }
  // Open waits run from the hop they wait since down to "now".
  if (now) {
    const nowMid = now.top + ROW_HEIGHT / 2;
    for (const o of open) {
      const i = indexById.get(o.hopId);
      if (i === undefined) continue;
      const bar: Omit<Bar, 'slot'> = {
        kind: o.kind === 'unsettled' ? 'open-handling' : 'open-wait',
        lane: laneOf[i],
        y1: mid(i),
        y2: nowMid,
        fromIndex: i,
        toIndex: i,
        failed: o.status !== 'in-flight',
        label: `${OPEN_LABEL[o.kind](o, hops[i])}${o.status === 'in-flight' ? '' : ` (${o.status})`}`,
        open: o,
      };
      (bar.kind === 'open-handling' ? handlings : waits).push(bar);
    }
  }
  const bars = [...assignSlots(handlings), ...assignSlots(waits)];

  const gaps: Gap[] = gapAt.map((i) => {
    const ms = steps[i];
    return {
      y1: rowTop[i - 1] + ROW_HEIGHT,
      y2: rowTop[i],
      beforeIndex: i,
      ms,
      label: gapLabel(i, ms, waits, handlings, hops),
    };
  });
  if (nowGap) gaps.push({ ...nowGap, label: `${formatDuration(nowGap.ms)} since the last hop, still open` });

  return { lanes, laneOf, rowTop, height, bars, arrows, gaps, offsetMs, now };
}

/** Say what the chain was doing during a gap between rows `i - 1` and `i`. */
function gapLabel(
  i: number,
  ms: number,
  waits: ReadonlyArray<Omit<Bar, 'slot'>>,
  handlings: ReadonlyArray<Omit<Bar, 'slot'>>,
  hops: readonly ChainHop[],
): string {
  const duration = formatDuration(ms);
  const waiting = waits.filter((w) => w.kind === 'wait' && w.fromIndex <= i - 1 && w.toIndex >= i);
  if (waiting.length) {
    const queues = [...new Set(waiting.map((w) => hops[w.toIndex].queue ?? 'a queue'))];
    const where = queues.length > 2 ? `${queues.slice(0, 2).join(', ')} and ${queues.length - 2} more` : queues.join(' and ');
    return `waited ${duration} in ${where}`;
  }
  const handling = handlings.find((h) => h.kind === 'handling' && h.fromIndex <= i - 1 && h.toIndex >= i);
  if (handling) return `${hops[handling.toIndex].service} handled for ${duration}`;
  return `${duration} with no activity`;
}

/** Greedy interval colouring per lane so overlapping deliveries sit side by side. */
function assignSlots(bars: Array<Omit<Bar, 'slot'>>): Bar[] {
  const byLane = new Map<number, Array<Omit<Bar, 'slot'>>>();
  for (const bar of bars) {
    let list = byLane.get(bar.lane);
    if (!list) byLane.set(bar.lane, (list = []));
    list.push(bar);
  }
  const out: Bar[] = [];
  for (const list of byLane.values()) {
    list.sort((a, b) => a.y1 - b.y1);
    const slotEnds: number[] = [];
    for (const bar of list) {
      let slot = slotEnds.findIndex((end) => end <= bar.y1);
      if (slot === -1) {
        slot = slotEnds.length < 4 ? slotEnds.length : slotEnds.indexOf(Math.min(...slotEnds));
      }
      slotEnds[slot] = bar.y2;
      out.push({ ...bar, slot });
    }
  }
  return out;
}

/** First row index whose bottom is below `y` (binary search). */
export function firstRowAtOrBelow(layout: TimelineLayout, y: number): number {
  let lo = 0;
  let hi = layout.rowTop.length;
  while (lo < hi) {
    const m = (lo + hi) >> 1;
    if (layout.rowTop[m] + ROW_HEIGHT <= y) lo = m + 1;
    else hi = m;
  }
  return lo;
}
