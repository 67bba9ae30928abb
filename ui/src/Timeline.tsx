/**
 * The chain timeline: a lane per service, time running down, one row per hop
 * in causal order. Only the rows, bars and arrows inside the scrolled window
 * (plus a margin) are in the DOM, so a 2,000-hop chain scrolls like a short one.
 */
import { useEffect, useMemo, useRef } from 'preact/hooks';
import type { ChainHop, ServiceSkew } from '../../collector/api-types.ts';
import type { ChainModel } from './chain-model.ts';
import { formatDuration, formatElapsed, formatOffset } from './format.ts';
import { summarizeHop } from './hop-text.ts';
import { GAP_HEIGHT, ROW_HEIGHT, firstRowAtOrBelow, type TimelineLayout } from './timeline-layout.ts';
import { scrollIntoRange, useScrollWindow } from './use-scroll-window.ts';

const HEADER_HEIGHT = 58;
const GUTTER = 96;
const OVERSCAN = 480;
/** Room the hop descriptions keep before lanes get narrower. */
const DESC_MIN = 400;
const LANE_MAX = 132;
const LANE_MIN = 64;

/** Lanes shrink (down to a minimum) so the hop descriptions stay on screen with many services. */
function laneWidthFor(clientWidth: number, lanes: number): number {
  const fit = Math.floor((clientWidth - GUTTER - DESC_MIN) / Math.max(1, lanes));
  return Math.max(LANE_MIN, Math.min(LANE_MAX, fit));
}

interface Props {
  model: ChainModel;
  layout: TimelineLayout;
  selected: number;
  onSelect: (index: number) => void;
  /** Bumped when the selection should be centred rather than nudged into view (opening a chain). */
  centerToken: number;
}

export function Timeline({ model, layout, selected, onSelect, centerToken }: Props) {
  const scroller = useRef<HTMLDivElement>(null);
  const { scrollTop, clientHeight, clientWidth } = useScrollWindow(scroller);
  const laneWidth = laneWidthFor(clientWidth, layout.lanes.length);
  const laneX = (lane: number) => GUTTER + lane * laneWidth + laneWidth / 2;
  const lanesWidth = layout.lanes.length * laneWidth;
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

  const rows = [];
  for (let i = first; i < last; i++) {
    rows.push(
      <HopRow
        key={hops[i].id}
        hop={hops[i]}
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
    <div class="timeline" ref={scroller} data-testid="timeline" tabIndex={-1}>
      <LaneHeader model={model} layout={layout} laneWidth={laneWidth} />
      <div
        class="tl-body"
        style={{ height: `${layout.height}px`, minWidth: `${GUTTER + lanesWidth + DESC_MIN}px` }}
        role="listbox"
        aria-label={`${hops.length} hops in causal order`}
      >
        {visibleGaps.map((gap) => (
          <div
            class="tl-gap"
            key={`gap-${gap.beforeIndex}`}
            style={{ top: `${gap.y1}px`, height: `${GAP_HEIGHT}px`, paddingLeft: `${GUTTER + lanesWidth + 10}px` }}
            data-gap
          >
            <span class="tl-gap-label">⋯ {gap.label}</span>
          </div>
        ))}
        {rows}
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
              const x = bar.kind === 'wait' ? laneX(bar.lane) - 14 - bar.slot * 7 : laneX(bar.lane) + 8 + bar.slot * 9;
              return (
                <rect
                  key={`${bar.kind}-${bar.fromIndex}-${bar.toIndex}`}
                  class={`tl-bar tl-${bar.kind}${bar.failed ? ' failed' : ''}${hot ? ' hot' : ''}`}
                  x={x}
                  y={bar.y1}
                  width={bar.kind === 'wait' ? 6 : 7}
                  height={Math.max(2, bar.y2 - bar.y1)}
                  rx={2}
                >
                  <title>{bar.label}</title>
                </rect>
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
                  class={`tl-arrow${arrow.deadLettered ? ' dlx' : ''}${hot ? ' hot' : ''}`}
                  d={d}
                  marker-end={hot ? 'url(#tl-arrow-hot)' : 'url(#tl-arrow)'}
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
  if (hop.kind === 'settle' && hop.outcome !== 'ack') return ' warn';
  if ((hop.deathCount ?? 0) > 0) return ' bad';
  return '';
}

function LaneHeader({ model, layout, laneWidth }: { model: ChainModel; layout: TimelineLayout; laneWidth: number }) {
  const narrow = laneWidth < 110;
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
              {service}
            </div>
            <SkewNote skew={skew} narrow={narrow} />
          </div>
        );
      })}
      <div class="tl-desc-head">
        <span>hop</span>
        <span class="tl-legend">
          <span class="lg lg-wait" /> queue wait <span class="lg lg-handling" /> handling <span class="lg lg-arrow" /> message
        </span>
      </div>
    </div>
  );
}

export function SkewNote({ skew, narrow }: { skew: ServiceSkew | undefined; narrow?: boolean }) {
  if (!skew) {
    return (
      <div class="skew skew-unknown" title="The collector reported no clock estimate for this service">
        {narrow ? 'clock ?' : 'clock: no estimate'}
      </div>
    );
  }
  if (skew.reference) {
    return (
      <div class="skew skew-ref" title="The other services' clocks are measured against this one">
        {narrow ? 'ref. clock' : 'reference clock'}
      </div>
    );
  }
  const title = `clock skew: this service's timestamps were shifted by ${formatOffset(skew.offsetMs)} for layout (estimated from ${skew.samples} send→receive pair${skew.samples === 1 ? '' : 's'}); raw timestamps are unchanged`;
  return (
    <div class={`skew${skew.offsetMs !== 0 ? ' skew-off' : ''}`} title={title} data-skew={skew.offsetMs}>
      {narrow ? 'skew' : 'clock skew'} {formatOffset(skew.offsetMs)}
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
  onSelect: (index: number) => void;
}

function HopRow({ hop, index, top, offsetMs, lanesWidth, selected, related, onSelect }: RowProps) {
  const summary = useMemo(() => summarizeHop(hop), [hop]);
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
