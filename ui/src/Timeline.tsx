/**
 * The chain timeline: a lane per service, time running down, one row per hop
 * in causal order. Only the rows, bars and arrows inside the scrolled window
 * (plus a margin) are in the DOM, so a 2,000-hop chain scrolls like a short one.
 */
import { useEffect, useMemo, useRef } from 'preact/hooks';
import type { ChainHop, ServiceSkew } from '../../collector/api-types.ts';
import { deliveryKey, type ChainModel } from './chain-model.ts';
import { formatDuration, formatElapsed, formatOffset } from './format.ts';
import { summarizeHop } from './hop-text.ts';
import { GAP_HEIGHT, ROW_HEIGHT, firstRowAtOrBelow, type TimelineLayout } from './timeline-layout.ts';
import { scrollIntoRange, useScrollWindow } from './use-scroll-window.ts';

const HEADER_HEIGHT = 66;
const GUTTER = 80;
const OVERSCAN = 480;
/** The hop descriptions get this much before lanes grow past their minimum. */
const DESC_PREFERRED = 440;
/** Below this the descriptions drop the service name (the lane above says it). */
const DESC_COMPACT = 380;
/** Least room the descriptions keep; the timeline scrolls sideways past that. */
const DESC_MIN = 200;
const LANE_MAX = 140;
/** Wide enough for a two-line service name (broken at - . _) and the clock note. */
const LANE_MIN = 96;

/** Lanes get their minimum, then grow while the hop descriptions keep their preferred room. */
function laneWidthFor(clientWidth: number, lanes: number): number {
  const fit = Math.floor((clientWidth - GUTTER - DESC_PREFERRED) / Math.max(1, lanes));
  return Math.max(LANE_MIN, Math.min(LANE_MAX, fit));
}

interface Props {
  model: ChainModel;
  layout: TimelineLayout;
  selected: number;
  onSelect: (index: number) => void;
  /** Bumped when the selection should be centred rather than nudged into view (opening a chain). */
  centerToken: number;
  /** Time since the chain was loaded: an open chain's "now" moves on by it. */
  sinceLoadMs: number;
}

export function Timeline({ model, layout, selected, onSelect, centerToken, sinceLoadMs }: Props) {
  const scroller = useRef<HTMLDivElement>(null);
  const { scrollTop, clientHeight, clientWidth } = useScrollWindow(scroller);
  const laneWidth = laneWidthFor(clientWidth, layout.lanes.length);
  const laneX = (lane: number) => GUTTER + lane * laneWidth + laneWidth / 2;
  const lanesWidth = layout.lanes.length * laneWidth;
  const compact = clientWidth - GUTTER - lanesWidth < DESC_COMPACT;
  const hops = model.hops;

  // Keep the selected hop on screen as it moves; centre it when the chain opens.
  const lastCenter = useRef(-1);
  useEffect(() => {
    const element = scroller.current;
    if (!element || selected < 0 || selected >= hops.length) return;
    const top = HEADER_HEIGHT + layout.rowTop[selected];
    const center = lastCenter.current !== centerToken;
    lastCenter.current = centerToken;
    scrollIntoRange(element, top, top + ROW_HEIGHT, HEADER_HEIGHT, center);
  }, [selected, centerToken, layout, hops.length]);

  const winTop = Math.max(0, scrollTop - OVERSCAN);
  const winBottom = Math.min(layout.height, scrollTop + clientHeight + OVERSCAN);
  const first = firstRowAtOrBelow(layout, winTop);
  let last = first;
  while (last < hops.length && layout.rowTop[last] < winBottom) last++;

  const visibleBars = layout.bars.filter((b) => b.y2 >= winTop && b.y1 <= winBottom);
  const visibleArrows = layout.arrows.filter((a) => Math.max(a.y1, a.y2) >= winTop && Math.min(a.y1, a.y2) <= winBottom);
  const visibleGaps = layout.gaps.filter((g) => g.y2 >= winTop && g.y1 <= winBottom);
  const selectedMessage = hops[selected]?.messageId;
  const nowOffset = layout.now ? layout.now.offsetMs + sinceLoadMs : undefined;

  const rows = [];
  for (let i = first; i < last; i++) {
    rows.push(
      <HopRow
        key={hops[i].id}
        hop={hops[i]}
        unsettled={hops[i].kind === 'process' && model.unsettled.has(deliveryKey(hops[i].messageId, hops[i].service, hops[i].queue))}
        index={i}
        top={layout.rowTop[i]}
        offsetMs={layout.offsetMs[i]}
        lanesWidth={lanesWidth}
        selected={i === selected}
        related={hops[i].messageId === selectedMessage}
        onSelect={onSelect}
      />,
    );
  }

  return (
    <div class={`timeline${compact ? ' compact' : ''}`} ref={scroller} data-testid="timeline" tabIndex={-1}>
      <LaneHeader model={model} layout={layout} laneWidth={laneWidth} />
      <div
        class="tl-body"
        style={{ height: `${layout.height}px`, minWidth: `${GUTTER + lanesWidth + DESC_MIN}px` }}
        role="listbox"
        aria-label={`${hops.length} hops in causal order`}
      >
        {visibleGaps.map((gap) => {
          const open = gap.beforeIndex === hops.length;
          const label = open && nowOffset !== undefined ? `${formatDuration(nowOffset - layout.offsetMs[hops.length - 1])} since the last hop, still open` : gap.label;
          return (
            <div
              class={`tl-gap${open ? ' tl-gap-open' : ''}`}
              key={`gap-${gap.beforeIndex}`}
              style={{ top: `${gap.y1}px`, height: `${GAP_HEIGHT}px`, paddingLeft: `${GUTTER + lanesWidth + 10}px` }}
              data-gap={open ? 'open' : ''}
            >
              <span class="tl-gap-label">⋯ {label}</span>
            </div>
          );
        })}
        {rows}
        {layout.now && nowOffset !== undefined && layout.now.top <= winBottom && (
          <NowRow model={model} top={layout.now.top} offsetMs={nowOffset} lanesWidth={lanesWidth} />
        )}
        <svg
          class="tl-svg"
          style={{ top: `${winTop}px`, height: `${Math.max(0, winBottom - winTop)}px`, width: `${GUTTER + lanesWidth}px` }}
          aria-hidden="true"
        >
          <defs>
            <marker id="tl-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
              <path d="M0,0 L10,5 L0,10 z" class="tl-arrowhead" />
            </marker>
            <marker id="tl-arrow-hot" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
              <path d="M0,0 L10,5 L0,10 z" class="tl-arrowhead hot" />
            </marker>
            <pattern id="tl-hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">
              <rect width="6" height="6" class="tl-hatch-bg" />
              <line x1="0" y1="0" x2="0" y2="6" class="tl-hatch-line" />
            </pattern>
          </defs>
          <g transform={`translate(0 ${-winTop})`}>
            {layout.lanes.map((_, lane) => (
              <line key={lane} class="tl-lane-line" x1={laneX(lane)} x2={laneX(lane)} y1={winTop} y2={winBottom} />
            ))}
            {visibleBars.map((bar) => {
              const hot = hops[bar.toIndex].messageId === selectedMessage;
              const waitSide = bar.kind === 'wait' || bar.kind === 'open-wait';
              const x = waitSide ? laneX(bar.lane) - 14 - bar.slot * 7 : laneX(bar.lane) + 8 + bar.slot * 9;
              const height = Math.max(2, bar.y2 - bar.y1);
              const tone = bar.open ? ` st-${bar.open.status}` : '';
              return (
                <g key={`${bar.kind}-${bar.fromIndex}-${bar.toIndex}-${bar.slot}`}>
                  <rect
                    class={`tl-bar tl-${bar.kind}${bar.failed ? ' failed' : ''}${bar.approx ? ' approx' : ''}${hot ? ' hot' : ''}${tone}`}
                    x={x}
                    y={bar.y1}
                    width={waitSide ? 6 : 7}
                    height={height}
                    rx={2}
                    data-bar={bar.kind}
                    data-from-seq={hops[bar.fromIndex].seq}
                    data-to-seq={bar.open ? 'now' : hops[bar.toIndex].seq}
                  >
                    <title>{bar.label}</title>
                  </rect>
                  {bar.open && <path class={`tl-open-end${tone}`} d={`M${x - 2},${bar.y2 - 5} L${x + (waitSide ? 3 : 3.5)},${bar.y2 + 1} L${x + (waitSide ? 8 : 9)},${bar.y2 - 5}`} />}
                </g>
              );
            })}
            {visibleArrows.map((arrow) => {
              const hot = hops[arrow.toIndex].messageId === selectedMessage;
              const x1 = laneX(arrow.fromLane);
              const x2 = laneX(arrow.toLane);
              const d =
                arrow.fromLane === arrow.toLane
                  ? `M${x1 + 5},${arrow.y1} C${x1 + 48},${arrow.y1} ${x2 + 48},${arrow.y2} ${x2 + 7},${arrow.y2}`
                  : `M${x1 + (x2 > x1 ? 5 : -5)},${arrow.y1} L${x2 + (x2 > x1 ? -7 : 7)},${arrow.y2}`;
              return (
                <path
                  key={`arrow-${arrow.fromIndex}-${arrow.toIndex}`}
                  class={`tl-arrow${arrow.deadLettered ? ' dlx' : ''}${arrow.redelivery ? ' redelivery' : ''}${hot ? ' hot' : ''}`}
                  d={d}
                  marker-end={hot ? 'url(#tl-arrow-hot)' : 'url(#tl-arrow)'}
                  data-arrow-from-seq={hops[arrow.fromIndex].seq}
                  data-arrow-to-seq={hops[arrow.toIndex].seq}
                />
              );
            })}
            {rowsDots(hops, layout, first, last, selected, laneX)}
          </g>
        </svg>
      </div>
    </div>
  );
}

function rowsDots(hops: ChainHop[], layout: TimelineLayout, first: number, last: number, selected: number, laneX: (lane: number) => number) {
  const dots = [];
  for (let i = first; i < last; i++) {
    const hop = hops[i];
    const x = laneX(layout.laneOf[i]);
    const y = layout.rowTop[i] + ROW_HEIGHT / 2;
    const cls = `tl-dot k-${hop.kind}${dotTone(hop)}${i === selected ? ' sel' : ''}`;
    let shape;
    switch (hop.kind) {
      case 'send':
        shape = <circle cx={x} cy={y} r={5} class={cls} />;
        break;
      case 'receive':
        shape = <circle cx={x} cy={y} r={5} class={cls} />;
        break;
      case 'process':
        shape = <rect x={x - 5} y={y - 5} width={10} height={10} rx={1.5} class={cls} />;
        break;
      case 'settle':
        shape = <path d={`M${x},${y - 6} L${x + 6},${y} L${x},${y + 6} L${x - 6},${y} z`} class={cls} />;
        break;
      default:
        shape = <circle cx={x} cy={y} r={4} class={cls} />;
    }
    dots.push(
      <g key={`dot-${hop.id}`}>
        {i === selected && <circle cx={x} cy={y} r={10} class="tl-dot-halo" />}
        {shape}
        {hop.redelivered && (
          <text x={x - 18} y={y + 4} class="tl-mark warn">
            ↻
          </text>
        )}
        {((hop.deathCount ?? 0) > 0 || (hop.death?.length ?? 0) > 0) && (
          <text x={x + 9} y={y - 4} class="tl-mark bad">
            ☠
          </text>
        )}
      </g>,
    );
  }
  return dots;
}

function dotTone(hop: ChainHop): string {
  if (hop.kind === 'process' && hop.outcome === 'error') return ' bad';
  if (hop.kind === 'return' || (hop.kind === 'confirm' && hop.outcome === 'nack')) return ' bad';
  if (hop.kind === 'replay') return hop.outcome === 'ack' ? ' good' : ' bad';
  if (hop.kind === 'settle' && hop.outcome !== 'ack') return ' warn';
  if ((hop.deathCount ?? 0) > 0) return ' bad';
  return '';
}

/** A service name with break opportunities after its separators, so it wraps at `-`, `.`, `_` rather than mid-word. */
function breakable(name: string) {
  const parts = name.split(/(?<=[-._/:])/);
  return parts.flatMap((part, i) => (i < parts.length - 1 ? [part, <wbr key={i} />] : [part]));
}

function LaneHeader({ model, layout, laneWidth }: { model: ChainModel; layout: TimelineLayout; laneWidth: number }) {
  return (
    <div class="tl-header" style={{ height: `${HEADER_HEIGHT}px`, minWidth: `${GUTTER + layout.lanes.length * laneWidth + DESC_MIN}px` }}>
      <div class="tl-gutter-head" style={{ width: `${GUTTER}px` }}>
        time
      </div>
      {layout.lanes.map((service) => {
        const skew = model.skewByService.get(service);
        return (
          <div class="tl-lane-head" style={{ width: `${laneWidth}px` }} key={service} data-lane={service}>
            <div class="tl-lane-name" title={service}>
              {breakable(service)}
            </div>
            <SkewNote skew={skew} />
          </div>
        );
      })}
      <div class="tl-desc-head">
        <span>hop</span>
        <span class="tl-legend">
          <span class="lg lg-wait" /> queue wait <span class="lg lg-handling" /> handling <span class="lg lg-open" /> still open
        </span>
      </div>
    </div>
  );
}

/** `+1.24 s … +5.50 s`, `≥ +1.24 s`, `≤ −36 ms`; empty when unbounded both ways. */
export function skewRange(skew: ServiceSkew): string {
  const lo = skew.lowerMs;
  const hi = skew.upperMs;
  if (lo !== undefined && hi !== undefined) return `${formatOffset(lo)} … ${formatOffset(hi)}`;
  if (lo !== undefined) return `≥ ${formatOffset(lo)}`;
  if (hi !== undefined) return `≤ ${formatOffset(hi)}`;
  return '';
}

/**
 * A clock offset as what it is: the reference, an estimate within an
 * interval (traffic both ways), a bound (one way: the smallest correction,
 * often none), nothing to go on, or contradictory evidence.
 */
export function describeSkew(skew: ServiceSkew | undefined): { short: string; long: string; shifted: boolean } {
  if (!skew) return { short: 'clock: no estimate', long: 'the collector reported no clock estimate for this service', shifted: false };
  const basis = skew.basis ?? (skew.reference ? 'reference' : 'measured');
  const pairs = `${skew.samples} causal pair${skew.samples === 1 ? '' : 's'}`;
  const shift = formatOffset(skew.offsetMs);
  switch (basis) {
    case 'reference':
      return { short: 'reference clock', long: 'reference clock: the other services’ clocks are measured against this one', shifted: false };
    case 'measured':
      if (skew.offsetMs === 0) {
        return {
          short: 'no skew seen',
          long: `no skew detected: the order is causal without a correction (consistent range ${skewRange(skew)}, from ${pairs} in both directions)`,
          shifted: false,
        };
      }
      return {
        short: `skew ≈ ${shift}`,
        long: `estimated ${shift} (consistent range ${skewRange(skew)}, from ${pairs} in both directions); timestamps shifted for layout only`,
        shifted: skew.offsetMs !== 0,
      };
    case 'bounded':
      return skew.offsetMs === 0
        ? {
            short: 'no skew seen',
            long: `no skew detected: the order is causal without a correction; traffic one way only bounds the offset (${skewRange(skew)}, from ${pairs}), it does not measure it`,
            shifted: false,
          }
        : {
            short: `skew ${skew.offsetMs > 0 ? '≥' : '≤'} ${shift}`,
            long: `bounded, not measured: shifted ${shift}, the smallest correction that keeps the order causal (the real offset is ${skewRange(skew)}; traffic one way only, ${pairs})`,
            shifted: true,
          };
    case 'conflicting':
      return { short: `skew ? ${shift}`, long: `the causal constraints contradict each other (a clock jumped?); best effort ${shift} from ${pairs}`, shifted: skew.offsetMs !== 0 };
    default:
      return { short: 'clock unrelated', long: 'no hop of this service is causally related to another service’s: its clock cannot be compared', shifted: false };
  }
}

export function SkewNote({ skew }: { skew: ServiceSkew | undefined }) {
  const { short, long, shifted } = describeSkew(skew);
  return (
    <div class={`skew${shifted ? ' skew-off' : ''}${skew?.reference ? ' skew-ref' : ''}`} title={long} data-skew={skew?.offsetMs} data-basis={skew?.basis}>
      {short}
    </div>
  );
}

interface RowProps {
  hop: ChainHop;
  index: number;
  top: number;
  offsetMs: number;
  lanesWidth: number;
  selected: boolean;
  related: boolean;
  unsettled: boolean;
  onSelect: (index: number) => void;
}

function HopRow({ hop, index, top, offsetMs, lanesWidth, selected, related, unsettled, onSelect }: RowProps) {
  const summary = useMemo(() => summarizeHop(hop, { unsettled }), [hop, unsettled]);
  return (
    <div
      class={`tl-row${selected ? ' selected' : ''}${related ? ' related' : ''}`}
      style={{ top: `${top}px`, height: `${ROW_HEIGHT}px` }}
      onClick={() => onSelect(index)}
      data-hop-row
      data-seq={hop.seq}
      data-hop-id={hop.id}
      aria-selected={selected}
      role="option"
      title={`#${hop.seq} ${summary.kind} ${hop.service}: ${summary.text}${summary.marks.length ? ` · ${summary.marks.map((m) => m.label).join(' · ')}` : ''}`}
    >
      <span class="tl-time" style={{ width: `${GUTTER}px` }} title={`${formatDuration(offsetMs)} after the chain's first hop (adjusted clocks)`}>
        {formatElapsed(offsetMs)}
      </span>
      <span class="tl-lanes-spacer" style={{ width: `${lanesWidth}px` }} />
      <span class="tl-desc">
        <span class="tl-seq">#{hop.seq}</span>
        <span class={`kind k-${summary.kind}`}>{summary.kind}</span>
        <span class="tl-svc">{hop.service}</span>
        <span class={`tl-text tone-${summary.tone}`}>{summary.text}</span>
        {summary.marks.map((mark) => (
          <span class={`chip tone-${mark.tone}`} key={mark.label}>
            {mark.label}
          </span>
        ))}
      </span>
    </div>
  );
}

/** The last row of an open chain: "now", and what is still waiting. */
function NowRow({ model, top, offsetMs, lanesWidth }: { model: ChainModel; top: number; offsetMs: number; lanesWidth: number }) {
  const open = model.detail.open ?? [];
  const worst = open.find((o) => o.status === 'stuck') ?? open.find((o) => o.status === 'lost') ?? open[0];
  const text = open
    .map((o) => {
      const hop = model.hops[model.indexById.get(o.hopId) ?? -1];
      const who = o.kind === 'unsettled' || o.kind === 'requeued' ? `${hop?.service ?? '?'} on ${o.queue ?? '?'}` : o.kind === 'unreceived' ? (o.queue ?? `sent by ${hop?.service ?? '?'}`) : `${hop?.service ?? '?'}`;
      const what = { unreceived: 'not received', unsettled: 'not settled', requeued: 'not redelivered', 'dead-letter': 'no dead-lettered copy' }[o.kind];
      return `${what} (${who}${o.status === 'in-flight' ? '' : `, ${o.status}`})`;
    })
    .join(' · ');
  return (
    <div class={`tl-row tl-now st-${worst?.status ?? 'in-flight'}`} style={{ top: `${top}px`, height: `${ROW_HEIGHT}px` }} data-testid="now-row">
      <span class="tl-time" style={{ width: `${GUTTER}px` }} data-testid="now-offset">
        {formatElapsed(offsetMs)}
      </span>
      <span class="tl-lanes-spacer" style={{ width: `${lanesWidth}px` }} />
      <span class="tl-desc">
        <span class="kind k-now">now</span>
        <span class="tl-text" title={text}>
          still open: {text}
        </span>
      </span>
    </div>
  );
}
