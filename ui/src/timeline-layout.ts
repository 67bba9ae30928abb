/**
 * Timeline geometry, computed once per chain. Time runs down the page, one
 * lane (column) per service, one row per hop in causal order. The space
 * between two rows grows with the time between them (on adjusted clocks) up
 * to a cap; a longer step is an idle gap, drawn compressed and labelled.
 *
 * Everything is plain numbers in arrays so the view can cut out the visible
 * window by binary search on every scroll.
 */
import type { ChainHop } from '../../collector/api-types.ts';
import { formatDuration } from './format.ts';

export const ROW_HEIGHT = 26;
/** Height of a compressed gap band between two rows. */
export const GAP_HEIGHT = 30;
/** Most extra space one proportional step may take before it counts as a gap. */
const MAX_EXTRA = 60;
/** Below this a step is never called a gap, only capped. */
const MIN_GAP_MS = 250;

export interface Bar {
  kind: 'wait' | 'handling';
  lane: number;
  /** Sub-column within the lane when deliveries overlap. */
  slot: number;
  y1: number;
  y2: number;
  /** Hop index the bar ends on (receive for a wait, process for handling). */
  toIndex: number;
  fromIndex: number;
  failed: boolean;
  label: string;
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
}

export interface Gap {
  /** Top and bottom of the band. */
  y1: number;
  y2: number;
  /** Index of the hop after the gap. */
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
}

function quantile(sorted: number[], q: number): number {
  if (!sorted.length) return 0;
  const at = Math.min(sorted.length - 1, Math.max(0, Math.floor(q * (sorted.length - 1))));
  return sorted[at];
}

export function layoutTimeline(hops: readonly ChainHop[], serviceOrder: readonly string[] = []): TimelineLayout {
  const n = hops.length;
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
  const height = y + 8;
  const mid = (i: number) => rowTop[i] + ROW_HEIGHT / 2;

  // Deliveries: each receive pairs with its message's latest earlier send (or
  // any send), and with the process that follows it on the same consumer.
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
      const sends = sendsOf.get(hop.messageId);
      if (sends?.length) {
        let from = sends[0];
        for (const s of sends) if (s < i) from = s;
        const deadLettered = (hop.deathCount ?? 0) > 0 || (hop.death?.length ?? 0) > 0;
        arrows.push({ fromLane: laneOf[from], toLane: laneOf[i], y1: mid(from), y2: mid(i), fromIndex: from, toIndex: i, deadLettered });
        if (from < i) {
          waits.push({
            kind: 'wait',
            lane: laneOf[i],
            y1: mid(from),
            y2: mid(i),
            fromIndex: from,
            toIndex: i,
            failed: false,
            label: `waited ${formatDuration(hop.adjustedTs - hops[from].adjustedTs)} in ${hop.queue ?? 'queue'}`,
          });
        }
      }
      openReceive.set(consumerKey(hop), i);
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

  return { lanes, laneOf, rowTop, height, bars, arrows, gaps, offsetMs };
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
  const waiting = waits.filter((w) => w.fromIndex <= i - 1 && w.toIndex >= i);
  if (waiting.length) {
    const queues = [...new Set(waiting.map((w) => hops[w.toIndex].queue ?? 'a queue'))];
    const where = queues.length > 2 ? `${queues.slice(0, 2).join(', ')} and ${queues.length - 2} more` : queues.join(' and ');
    return `waited ${duration} in ${where}`;
  }
  const handling = handlings.find((h) => h.fromIndex <= i - 1 && h.toIndex >= i);
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
