/**
 * The observed topology as a layered graph: publishing services → exchanges →
 * queues → consuming services. A service that does both appears on both
 * sides, which keeps every edge pointing right.
 */
import { useEffect, useMemo, useState } from 'preact/hooks';
import type { Topology, TopologyEdge, TopologyNode } from '../../collector/api-types.ts';
import { api } from './api.ts';
import { formatDuration, formatRate } from './format.ts';
import { ErrorBox, Loading } from './states.tsx';

const NODE_W = 190;
const NODE_H = 48;
const COL_GAP = 230;
const ROW_GAP = 26;
const PAD = 24;
const HEAD = 30;

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
      </div>
      {load.state === 'loading' && <Loading what="topology" />}
      {load.state === 'error' && <ErrorBox error={load.error} onRetry={() => setReload((n) => n + 1)} />}
      {load.state === 'ready' &&
        (load.topology.nodes.length === 0 ? (
          <div class="state state-empty" data-testid="empty">
            <strong>Nothing observed in this window.</strong>
            <p class="muted">Services, exchanges and queues appear once hops arrive.</p>
          </div>
        ) : (
          <TopologyGraph topology={load.topology} />
        ))}
    </div>
  );
}

interface Placed {
  key: string;
  node: TopologyNode;
  column: number;
  x: number;
  y: number;
}

const kindOf = (id: string, nodes: Map<string, TopologyNode>): TopologyNode['kind'] =>
  nodes.get(id)?.kind ?? (id.startsWith('exchange:') ? 'exchange' : id.startsWith('queue:') ? 'queue' : 'service');

function layout(topology: Topology) {
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
  const height = HEAD + PAD * 2 + tallest * (NODE_H + ROW_GAP);
  const placed: Placed[] = [];
  const at = new Map<string, Placed[]>();
  columns.forEach((col, column) => {
    // Short columns sit at the top: centred against a long queue column they would start off-screen.
    const offset = Math.min(((tallest - col.length) * (NODE_H + ROW_GAP)) / 2, 2 * (NODE_H + ROW_GAP));
    col.forEach((id, row) => {
      const p: Placed = {
        key: `${column}:${id}`,
        node: nodes.get(id)!,
        column,
        x: PAD + column * (NODE_W + COL_GAP),
        y: HEAD + PAD + offset + row * (NODE_H + ROW_GAP),
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
    return { edge, from, to, stack: 0 };
  });
  // Labels sit at the end where edges fan out least (into a queue: the queue;
  // otherwise the source); labels sharing an anchor stack downwards.
  const stacks = new Map<string, number>();
  for (const e of edges) {
    if (!e.from || !e.to) continue;
    const key = labelAtTarget(e.to.node) ? `t:${e.to.key}` : `s:${e.from.key}`;
    e.stack = stacks.get(key) ?? 0;
    stacks.set(key, e.stack + 1);
  }
  return { placed, edges, width: PAD * 2 + 4 * NODE_W + 3 * COL_GAP, height };
}

function labelAtTarget(node: TopologyNode): boolean {
  return node.kind === 'queue';
}

function label(node: TopologyNode): string {
  if (node.kind === 'exchange' && node.label === '') return '(default exchange)';
  return node.label;
}

function TopologyGraph({ topology }: { topology: Topology }) {
  const { placed, edges, width, height } = useMemo(() => layout(topology), [topology]);
  const totals = useMemo(() => {
    const out = new Map<string, { inCount: number; outCount: number; errors: number }>();
    const get = (id: string) => {
      let t = out.get(id);
      if (!t) out.set(id, (t = { inCount: 0, outCount: 0, errors: 0 }));
      return t;
    };
    for (const e of topology.edges) {
      get(e.from).outCount += e.count;
      get(e.to).inCount += e.count;
      get(e.to).errors += e.errorCount;
    }
    return out;
  }, [topology]);
  const maxCount = Math.max(1, ...topology.edges.map((e) => e.count));
  const heads = ['publishers', 'exchanges', 'queues', 'consumers'];
  return (
    <div class="topo-scroll">
      <svg class="topo" width={width} height={height} viewBox={`0 0 ${width} ${height}`} role="img" aria-label="Observed topology">
        <defs>
          <marker id="topo-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="9" markerHeight="9" markerUnits="userSpaceOnUse" orient="auto">
            <path d="M0,0 L10,5 L0,10 z" class="topo-arrowhead" />
          </marker>
        </defs>
        {heads.map((head, column) => (
          <text key={head} class="topo-head" x={PAD + column * (NODE_W + COL_GAP) + NODE_W / 2} y={PAD + 4} text-anchor="middle">
            {head}
          </text>
        ))}
        {edges.map(({ edge, from, to, stack }, i) =>
          from && to ? <EdgeView key={`e${i}`} edge={edge} from={from} to={to} maxCount={maxCount} stack={stack} /> : null,
        )}
        {placed.map((p) => {
          const t = totals.get(p.node.id);
          const parts: string[] = [p.node.kind];
          if (p.node.kind === 'service') parts.push(p.column === 0 ? `published ${t?.outCount ?? 0}` : `consumed ${t?.inCount ?? 0}`);
          else parts.push(`${Math.max(t?.inCount ?? 0, t?.outCount ?? 0)} msgs`);
          if (t?.errors && (p.node.kind !== 'service' || p.column !== 0)) parts.push(`${t.errors} error${t.errors === 1 ? '' : 's'}`);
          return (
            <g key={p.key} class={`topo-node n-${p.node.kind}${t?.errors ? ' has-errors' : ''}`} data-node-id={p.node.id} data-node-kind={p.node.kind}>
              <title>{`${p.node.kind} ${label(p.node)}`}</title>
              <rect x={p.x} y={p.y} width={NODE_W} height={NODE_H} rx={p.node.kind === 'service' ? 10 : p.node.kind === 'queue' ? 3 : 22} />
              <text x={p.x + 14} y={p.y + 21} class="topo-label">
                {clip(label(p.node), 22)}
              </text>
              <text x={p.x + 14} y={p.y + 38} class="topo-sub">
                {parts.join(' · ')}
              </text>
            </g>
          );
        })}
      </svg>
    </div>
  );
}

function clip(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

function EdgeView({ edge, from, to, maxCount, stack }: { edge: TopologyEdge; from: Placed; to: Placed; maxCount: number; stack: number }) {
  const x1 = from.x + NODE_W;
  const y1 = from.y + NODE_H / 2;
  const x2 = to.x;
  const y2 = to.y + NODE_H / 2;
  const backwards = x2 <= x1;
  const d = backwards
    ? `M${x1},${y1} C${x1 + 80},${y1 - 90} ${x2 - 80},${y2 - 90} ${x2},${y2}`
    : `M${x1},${y1} C${(x1 + x2) / 2},${y1} ${(x1 + x2) / 2},${y2} ${x2 - 2},${y2}`;
  const widthPx = 1.2 + 4 * Math.log10(1 + (9 * edge.count) / maxCount);
  const parts = [`${edge.count} msg${edge.count === 1 ? '' : 's'}`];
  const rate = formatRate(edge.ratePerSec);
  if (rate) parts.push(rate);
  if (edge.errorCount) parts.push(`${edge.errorCount} err (${Math.round(edge.errorRate * 100)}%)`);
  const wait =
    edge.queueWaitP50Ms !== undefined ? `wait p50 ${formatDuration(edge.queueWaitP50Ms)} · p95 ${formatDuration(edge.queueWaitP95Ms)}` : undefined;
  const atTarget = labelAtTarget(to.node);
  const lx = atTarget ? x2 - 12 : x1 + 12;
  // Counts above the line, queue wait below it.
  const ly = (atTarget ? y2 : y1) - 6 + stack * 30;
  const anchor = atTarget ? 'end' : 'start';
  return (
    <g class={`topo-edge${edge.errorCount ? ' has-errors' : ''}`} data-edge={`${edge.from}->${edge.to}`}>
      <path d={d} style={{ strokeWidth: `${widthPx}px` }} marker-end="url(#topo-arrow)" />
      <text x={lx} y={ly} text-anchor={anchor} class="topo-edge-label">
        {parts.join(' · ')}
      </text>
      {wait && (
        <text x={lx} y={ly + 19} text-anchor={anchor} class="topo-edge-label sub">
          {wait}
        </text>
      )}
    </g>
  );
}
