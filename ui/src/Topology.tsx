/**
 * The observed topology as a layered graph: publishing services → exchanges →
 * queues → consuming services. A service that does both appears on both
 * sides, which keeps every edge pointing right. The graph fits the page's
 * width (down to 1024-pixel screens); long names are shortened in the middle
 * and shown whole on hover. Every node links to the chains that used it.
 */
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { Topology, TopologyEdge, TopologyNode } from '../../collector/api-types.ts';
import { api } from './api.ts';
import { formatClock, formatDuration, formatRate, middleEllipsis, rateUnitFor, type RateUnit } from './format.ts';
import { ErrorBox, Loading } from './states.tsx';

/** Node height with a one-line name, and with a name on two lines. */
const NODE_H = 48;
const NODE_H2 = 64;
const ROW_GAP = 26;
const PAD = 20;
const HEAD = 30;
/** Node width and column gap bounds; between them the graph takes the width it is given. */
const NODE_MIN = 136;
const NODE_MAX = 230;
const GAP_MIN = 124;
const GAP_MAX = 260;
/** The label fonts (as styles.css sets them), for measuring text to fit. */
const LABEL_FONT = '600 13px';
const SMALL_FONT = '11px';
const EDGE_FONT = '11px';
const WAIT_FONT = '10.5px';
const LINE = 14;

let measurer: CanvasRenderingContext2D | null | undefined;

/** Width in pixels of `text` in `font` (size and weight; the page's sans family). */
function textWidth(text: string, font: string): number {
  if (measurer === undefined) {
    measurer = document.createElement('canvas').getContext('2d');
  }
  if (!measurer) return text.length * 7.5;
  const family = getComputedStyle(document.body).fontFamily || 'sans-serif';
  measurer.font = `${font} ${family}`;
  return measurer.measureText(text).width;
}

/**
 * A name's shorter forms, for fitting: without its leading `.`/`-`/`_`
 * segments first (`…counter.order-ready`: the prefix is usually a namespace
 * every neighbour shares, the end tells them apart).
 */
function nameVariants(name: string): string[] {
  const out = [name];
  const cuts = [...name.matchAll(/[._-]/g)].map((m) => m.index! + 1);
  for (const cut of cuts) if (name.length - cut >= 4) out.push(`…${name.slice(cut)}`);
  return out;
}

/**
 * A node name on one line when it fits, else on two broken after a `.`, `-`
 * or `_`: the second line the longest ending that fits (where names sharing
 * a namespace differ), the first what is left, shortened from its start.
 */
function nameLines(name: string, room: number): string[] {
  if (textWidth(name, LABEL_FONT) <= room) return [name];
  // Break after a dot where that works (`shop.family-account.` / `member-auth-reset`), else after any separator.
  for (const separators of [/(?<=\.)/, /(?<=[._-])/]) {
    const parts = name.split(separators);
    let tail = parts.length;
    while (tail > 1 && textWidth(parts.slice(tail - 1).join(''), LABEL_FONT) <= room) tail--;
    if (tail === parts.length) continue;
    const head = parts.slice(0, tail).join('');
    return [fit(nameVariants(head), room, LABEL_FONT), parts.slice(tail).join('')];
  }
  return [fit(nameVariants(name), room, LABEL_FONT)];
}

/** The fullest variant that fits `width` pixels, else the last one shortened in the middle until it does. */
function fit(variants: string[], width: number, font: string): string {
  const whole = variants.find((v) => textWidth(v, font) <= width);
  if (whole !== undefined) return whole;
  const last = variants.at(-1)!;
  let lo = 1;
  let hi = last.length;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (textWidth(middleEllipsis(last, mid), font) <= width) lo = mid;
    else hi = mid - 1;
  }
  return middleEllipsis(last, lo);
}

const WINDOWS = [
  { value: '15m', label: 'last 15 minutes', ms: 15 * 60_000 },
  { value: '1h', label: 'last hour', ms: 3_600_000 },
  { value: '24h', label: 'last 24 hours', ms: 86_400_000 },
  { value: 'all', label: 'everything stored', ms: 0 },
];

type Load = { state: 'loading' } | { state: 'error'; error: Error } | { state: 'ready'; topology: Topology };

export function TopologyPage({ params }: { params: URLSearchParams }) {
  const [span, setSpan] = useState(params.get('window') ?? '24h');
  const [load, setLoad] = useState<Load>({ state: 'loading' });
  const [reload, setReload] = useState(0);

  useEffect(() => {
    history.replaceState(history.state, '', `#/topology?window=${encodeURIComponent(span)}`);
    const controller = new AbortController();
    const ms = WINDOWS.find((w) => w.value === span)?.ms ?? 0;
    setLoad((prev) => (prev.state === 'ready' ? prev : { state: 'loading' }));
    api.topology({ from: ms ? Date.now() - ms : 0 }, controller.signal).then(
      (topology) => setLoad({ state: 'ready', topology }),
      (error: Error) => {
        if (error.name !== 'AbortError') setLoad({ state: 'error', error });
      },
    );
    return () => controller.abort();
  }, [span, reload]);

  const topology = load.state === 'ready' ? load.topology : undefined;
  const unit = useMemo(() => rateUnitFor(topology?.edges.map((e) => e.ratePerSec) ?? []), [topology]);
  return (
    <div class="page topo-page" data-testid="topology">
      <div class="filters">
        <h1 class="page-title">Topology</h1>
        <select value={span} onChange={(e) => setSpan((e.target as HTMLSelectElement).value)} aria-label="Time window">
          {WINDOWS.map((w) => (
            <option value={w.value} key={w.value}>
              {w.label}
            </option>
          ))}
        </select>
        <button type="button" class="btn btn-small" onClick={() => setReload((n) => n + 1)}>
          refresh
        </button>
        {topology?.trafficFrom !== undefined && topology.trafficTo !== undefined && (
          <span class="muted small" data-testid="traffic-span">
            traffic {formatClock(topology.trafficFrom).slice(0, 5)}–{formatClock(topology.trafficTo).slice(0, 5)} (
            {formatDuration(topology.trafficTo - topology.trafficFrom)}) · rates per {unitName(unit)}, each over the time its edge had traffic · click a node for its chains
          </span>
        )}
      </div>
      {load.state === 'loading' && <Loading what="topology" />}
      {load.state === 'error' && <ErrorBox error={load.error} onRetry={() => setReload((n) => n + 1)} />}
      {topology &&
        (topology.nodes.length === 0 ? (
          <div class="state state-empty" data-testid="empty">
            <strong>Nothing observed in this window.</strong>
            <p class="muted">Services, exchanges and queues appear once hops arrive.</p>
          </div>
        ) : (
          <TopologyGraph topology={topology} unit={unit} />
        ))}
    </div>
  );
}

const unitName = (unit: RateUnit) => (unit === 's' ? 'second' : unit === 'min' ? 'minute' : 'hour');

interface Placed {
  key: string;
  node: TopologyNode;
  column: number;
  x: number;
  y: number;
}

interface Geometry {
  nodeW: number;
  nodeH: number;
  gap: number;
}

/** Node width and column gap for a container of `width` pixels; taller nodes when a name needs two lines. */
function geometry(width: number, names: readonly string[]): Geometry {
  const free = width - 2 * PAD;
  const nodeW = Math.max(NODE_MIN, Math.min(NODE_MAX, Math.floor((free - 3 * GAP_MIN) / 4)));
  const gap = Math.max(GAP_MIN, Math.min(GAP_MAX, Math.floor((free - 4 * nodeW) / 3)));
  const twoLines = names.some((name) => textWidth(name, LABEL_FONT) > nodeW - 22);
  return { nodeW, gap, nodeH: twoLines ? NODE_H2 : NODE_H };
}

const kindOf = (id: string, nodes: Map<string, TopologyNode>): TopologyNode['kind'] =>
  nodes.get(id)?.kind ?? (id.startsWith('exchange:') ? 'exchange' : id.startsWith('queue:') ? 'queue' : 'service');

function layout(topology: Topology, { nodeW, nodeH, gap }: Geometry) {
  const nodes = new Map<string, TopologyNode>();
  for (const node of topology.nodes) nodes.set(node.id, node);
  // Edges may name nodes the list forgot; invent them rather than drop the edge.
  for (const edge of topology.edges) {
    for (const id of [edge.from, edge.to]) {
      if (!nodes.has(id)) {
        const kind = kindOf(id, nodes);
        nodes.set(id, { id, kind, label: id.slice(id.indexOf(':') + 1) });
      }
    }
  }
  const publishes = new Set<string>();
  const consumes = new Set<string>();
  for (const edge of topology.edges) {
    if (kindOf(edge.from, nodes) === 'service') publishes.add(edge.from);
    if (kindOf(edge.to, nodes) === 'service') consumes.add(edge.to);
  }
  const columns: string[][] = [[], [], [], []];
  for (const node of nodes.values()) {
    if (node.kind === 'exchange') columns[1].push(node.id);
    else if (node.kind === 'queue') columns[2].push(node.id);
    else {
      if (publishes.has(node.id) || !consumes.has(node.id)) columns[0].push(node.id);
      if (consumes.has(node.id)) columns[3].push(node.id);
    }
  }
  columns[0].sort((a, b) => label(nodes.get(a)!).localeCompare(label(nodes.get(b)!)));
  // Order each column by the average position of its neighbours in the previous one (fewer crossings).
  for (let c = 1; c < 4; c++) {
    const prev = new Map(columns[c - 1].map((id, i) => [id, i]));
    const score = (id: string) => {
      const positions = topology.edges.filter((e) => e.to === id && prev.has(e.from)).map((e) => prev.get(e.from)!);
      return positions.length ? positions.reduce((a, b) => a + b, 0) / positions.length : Number.MAX_SAFE_INTEGER;
    };
    const scores = new Map(columns[c].map((id) => [id, score(id)]));
    columns[c].sort((a, b) => scores.get(a)! - scores.get(b)! || label(nodes.get(a)!).localeCompare(label(nodes.get(b)!)));
  }
  const tallest = Math.max(...columns.map((col) => col.length));
  const placed: Placed[] = [];
  const at = new Map<string, Placed[]>();
  columns.forEach((col, column) => {
    // Short columns sit at the top: centred against a long queue column they would start off-screen.
    const offset = Math.min(((tallest - col.length) * (nodeH + ROW_GAP)) / 2, 2 * (nodeH + ROW_GAP));
    col.forEach((id, row) => {
      const p: Placed = {
        key: `${column}:${id}`,
        node: nodes.get(id)!,
        column,
        x: PAD + column * (nodeW + gap),
        y: HEAD + PAD + offset + row * (nodeH + ROW_GAP),
      };
      placed.push(p);
      const list = at.get(id) ?? [];
      list.push(p);
      at.set(id, list);
    });
  });
  const edges = topology.edges.map((edge) => {
    const fromList = at.get(edge.from) ?? [];
    const toList = at.get(edge.to) ?? [];
    // Leave from the left copy of a service, arrive at the right one.
    const from = fromList.reduce((best, p) => (p.column < best.column ? p : best), fromList[0]);
    const to = toList.reduce((best, p) => (p.column > best.column ? p : best), toList[0]);
    return { edge, from, to, stackY: 0 };
  });
  // Labels sit at the end where edges fan out least (into a queue: the queue;
  // otherwise the source); labels sharing an anchor stack downwards.
  const stacks = new Map<string, number>();
  let bottom = HEAD + PAD * 2 + tallest * (nodeH + ROW_GAP);
  for (const e of edges) {
    if (!e.from || !e.to) continue;
    const key = labelAtTarget(e.to.node) ? `t:${e.to.key}` : `s:${e.from.key}`;
    e.stackY = stacks.get(key) ?? 0;
    stacks.set(key, e.stackY + edgeLines(e.edge).length * LINE + 4);
    const anchorY = (labelAtTarget(e.to.node) ? e.to.y : e.from.y) + nodeH / 2;
    bottom = Math.max(bottom, anchorY + e.stackY + edgeLines(e.edge).length * LINE + PAD);
  }
  return { placed, edges, width: PAD * 2 + 4 * nodeW + 3 * gap, height: bottom };
}

function labelAtTarget(node: TopologyNode): boolean {
  return node.kind === 'queue';
}

function label(node: TopologyNode): string {
  if (node.kind === 'exchange' && node.label === '') return '(default exchange)';
  return node.label;
}

/** The chains list filtered by a node. */
function nodeHref(node: TopologyNode): string {
  const name = node.id.slice(node.id.indexOf(':') + 1);
  const key = node.kind === 'service' ? 'service' : node.kind === 'exchange' ? 'exchange' : 'queue';
  return `#/?${new URLSearchParams({ [key]: name }).toString()}`;
}

type EdgeLine = { text: string[]; tone: 'count' | 'wait' | 'bad' };

/** What an edge's label says, line by line; each line lists shorter variants, the fullest first. */
function edgeLines(edge: TopologyEdge, unit: RateUnit = 'min'): EdgeLine[] {
  const lines: EdgeLine[] = [];
  if (edge.count > 0) {
    const rate = formatRate(edge.ratePerSec, unit);
    const msgs = `${edge.count} msg${edge.count === 1 ? '' : 's'}`;
    lines.push({ text: [`${msgs} · ${rate}`, `${edge.count} · ${rate}`, msgs], tone: 'count' });
  }
  if (edge.errorCount) {
    lines.push({ text: [`${edge.errorCount} error${edge.errorCount === 1 ? '' : 's'} (${Math.round(edge.errorRate * 100)}%)`, `${edge.errorCount} err`], tone: 'bad' });
  }
  if (edge.queueWaitP50Ms !== undefined) {
    const p50 = formatDuration(edge.queueWaitP50Ms);
    const p95 = formatDuration(edge.queueWaitP95Ms);
    lines.push({ text: [`wait p50 ${p50} · p95 ${p95}`, `p50 ${p50} · p95 ${p95}`, `p95 ${p95}`], tone: 'wait' });
  }
  const stalled = [edge.lostCount ? `${edge.lostCount} lost` : '', edge.stuckCount ? `${edge.stuckCount} stuck` : ''].filter(Boolean).join(' · ');
  if (stalled) lines.push({ text: [stalled], tone: 'bad' });
  return lines;
}

/** The graph's container width, followed as the window resizes. */
function useWidth(ref: { current: HTMLElement | null }): number {
  const [width, setWidth] = useState(1200);
  useEffect(() => {
    const element = ref.current;
    if (!element) return;
    const measure = () => setWidth(element.clientWidth);
    measure();
    const observer = new ResizeObserver(measure);
    observer.observe(element);
    return () => observer.disconnect();
  }, [ref]);
  return width;
}

function TopologyGraph({ topology, unit }: { topology: Topology; unit: RateUnit }) {
  const scroller = useRef<HTMLDivElement>(null);
  const width = useWidth(scroller);
  const geo = useMemo(() => geometry(width, topology.nodes.map(label)), [width, topology]);
  const { placed, edges, width: svgWidth, height } = useMemo(() => layout(topology, geo), [topology, geo]);
  const totals = useMemo(() => {
    const out = new Map<string, { inCount: number; outCount: number; errors: number; lost: number; stuck: number }>();
    const get = (id: string) => {
      let t = out.get(id);
      if (!t) out.set(id, (t = { inCount: 0, outCount: 0, errors: 0, lost: 0, stuck: 0 }));
      return t;
    };
    for (const e of topology.edges) {
      get(e.from).outCount += e.count;
      get(e.to).inCount += e.count;
      get(e.to).errors += e.errorCount;
      get(e.to).lost += e.lostCount ?? 0;
      get(e.to).stuck += e.stuckCount ?? 0;
    }
    return out;
  }, [topology]);
  const maxCount = Math.max(1, ...topology.edges.map((e) => e.count));
  const heads = ['publishers', 'exchanges', 'queues', 'consumers'];
  return (
    <div class="topo-scroll" ref={scroller} data-testid="topology-scroll">
      <svg class="topo" width={svgWidth} height={height} viewBox={`0 0 ${svgWidth} ${height}`} role="img" aria-label="Observed topology">
        <defs>
          <marker id="topo-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="9" markerHeight="9" markerUnits="userSpaceOnUse" orient="auto">
            <path d="M0,0 L10,5 L0,10 z" class="topo-arrowhead" />
          </marker>
        </defs>
        {heads.map((head, column) => (
          <text key={head} class="topo-head" x={PAD + column * (geo.nodeW + geo.gap) + geo.nodeW / 2} y={PAD + 4} text-anchor="middle">
            {head}
          </text>
        ))}
        {edges.map(({ edge, from, to, stackY }, i) =>
          from && to ? <EdgeView key={`e${i}`} edge={edge} from={from} to={to} maxCount={maxCount} stackY={stackY} geo={geo} unit={unit} /> : null,
        )}
        {placed.map((p) => {
          const t = totals.get(p.node.id);
          const parts: string[] = [p.node.kind];
          if (p.node.kind === 'service') parts.push(p.column === 0 ? `published ${t?.outCount ?? 0}` : `consumed ${t?.inCount ?? 0}`);
          else parts.push(`${Math.max(t?.inCount ?? 0, t?.outCount ?? 0)} msgs`);
          const inbound = p.node.kind !== 'service' || p.column !== 0;
          if (inbound && t?.errors) parts.push(`${t.errors} err`);
          if (inbound && t?.lost) parts.push(`${t.lost} lost`);
          if (inbound && t?.stuck) parts.push(`${t.stuck} stuck`);
          const bad = inbound && Boolean(t?.errors || t?.lost || t?.stuck);
          const name = label(p.node);
          const lines = nameLines(name, geo.nodeW - 22);
          return (
            <a
              key={p.key}
              href={nodeHref(p.node)}
              class={`topo-node n-${p.node.kind}${bad ? ' has-errors' : ''}`}
              data-node-id={p.node.id}
              data-node-kind={p.node.kind}
              data-full={name}
              aria-label={`${p.node.kind} ${name}: show its chains`}
            >
              <title>{`${p.node.kind} ${name} · ${parts.slice(1).join(' · ')} · click for its chains`}</title>
              <rect x={p.x} y={p.y} width={geo.nodeW} height={geo.nodeH} rx={p.node.kind === 'service' ? 10 : p.node.kind === 'queue' ? 3 : 22} />
              {lines.map((line, i) => (
                <text key={i} x={p.x + 12} y={p.y + (lines.length === 1 && geo.nodeH > NODE_H ? 27 : 19 + i * 16)} class="topo-label" data-room={geo.nodeW - 22}>
                  {line}
                </text>
              ))}
              <text x={p.x + 12} y={p.y + geo.nodeH - 10} class="topo-sub" data-room={geo.nodeW - 22}>
                {fit([parts.join(' · '), parts.slice(1).join(' · ')], geo.nodeW - 22, SMALL_FONT)}
              </text>
            </a>
          );
        })}
      </svg>
    </div>
  );
}

interface EdgeProps {
  edge: TopologyEdge;
  from: Placed;
  to: Placed;
  maxCount: number;
  stackY: number;
  geo: Geometry;
  unit: RateUnit;
}

function EdgeView({ edge, from, to, maxCount, stackY, geo, unit }: EdgeProps) {
  const x1 = from.x + geo.nodeW;
  const y1 = from.y + geo.nodeH / 2;
  const x2 = to.x;
  const y2 = to.y + geo.nodeH / 2;
  const backwards = x2 <= x1;
  const d = backwards
    ? `M${x1},${y1} C${x1 + 80},${y1 - 90} ${x2 - 80},${y2 - 90} ${x2},${y2}`
    : `M${x1},${y1} C${(x1 + x2) / 2},${y1} ${(x1 + x2) / 2},${y2} ${x2 - 2},${y2}`;
  const widthPx = 1.2 + 4 * Math.log10(1 + (9 * edge.count) / maxCount);
  const stalled = Boolean(edge.lostCount || edge.stuckCount);
  const atTarget = labelAtTarget(to.node);
  const lx = atTarget ? x2 - 10 : x1 + 10;
  const ly = (atTarget ? y2 : y1) - 6 + stackY;
  const anchor = atTarget ? 'end' : 'start';
  const room = geo.gap - 20;
  const lines = edgeLines(edge, unit);
  return (
    <g class={`topo-edge${edge.errorCount ? ' has-errors' : ''}${stalled ? ' stalled' : ''}${edge.count === 0 ? ' no-traffic' : ''}`} data-edge={`${edge.from}->${edge.to}`}>
      <path d={d} style={{ strokeWidth: `${widthPx}px` }} marker-end="url(#topo-arrow)" />
      {lines.map((line, i) => (
        <text key={i} x={lx} y={ly + i * LINE} text-anchor={anchor} class={`topo-edge-label l-${line.tone}`} data-room={room}>
          {fit(line.text, room, line.tone === 'wait' ? WAIT_FONT : EDGE_FONT)}
        </text>
      ))}
    </g>
  );
}
