/**
 * Causal order: one sequence of a chain's hops that respects every
 * happens-before edge and otherwise follows skew-adjusted time.
 *
 * Kahn's topological sort with a priority queue: of the hops whose causes are
 * all placed, the one earliest on the adjusted clock goes next (ties by kind,
 * then canonical content order). Should bad data make the edges cyclic, the
 * earliest remaining hop is placed anyway and the sort carries on.
 * O((n + e) log n).
 */
import { KIND_RANK, type CausalEdge } from './chain-graph.ts';
import type { StoredHop } from './api-types.ts';

/**
 * @param hops hops in canonical content order (as {@link buildGraph} returns them)
 * @param edges happens-before edges between indexes of `hops`
 * @param adjustedTs per hop index, `ts` plus its service's offset
 * @returns hop indexes in causal order
 */
export function causalOrder(hops: readonly StoredHop[], edges: readonly CausalEdge[], adjustedTs: ArrayLike<number>): number[] {
  const n = hops.length;

  // Rank every hop by (adjusted ts, kind, canonical index) once; the heap then compares integers.
  const byTime = Array.from({ length: n }, (_, i) => i).sort(
    (a, b) => adjustedTs[a] - adjustedTs[b] || (KIND_RANK[hops[a].kind] ?? 9) - (KIND_RANK[hops[b].kind] ?? 9) || a - b,
  );
  const rank = new Int32Array(n);
  for (let r = 0; r < n; r++) rank[byTime[r]] = r;

  // Adjacency in CSR form.
  const indegree = new Int32Array(n);
  const outStart = new Int32Array(n + 1);
  for (const e of edges) {
    outStart[e.from + 1]++;
    indegree[e.to]++;
  }
  for (let i = 0; i < n; i++) outStart[i + 1] += outStart[i];
  const fill = outStart.slice(0, n);
  const out = new Int32Array(edges.length);
  for (const e of edges) out[fill[e.from]++] = e.to;

  // Binary min-heap of ranks.
  const heap = new Int32Array(n);
  let size = 0;
  const push = (r: number): void => {
    let i = size++;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (heap[p] <= r) break;
      heap[i] = heap[p];
      i = p;
    }
    heap[i] = r;
  };
  const pop = (): number => {
    const top = heap[0];
    const last = heap[--size];
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= size) break;
      if (c + 1 < size && heap[c + 1] < heap[c]) c++;
      if (heap[c] >= last) break;
      heap[i] = heap[c];
      i = c;
    }
    heap[i] = last;
    return top;
  };

  for (let i = 0; i < n; i++) if (indegree[i] === 0) push(rank[i]);
  const placed = new Uint8Array(n);
  const order: number[] = [];
  let cursor = 0; // into byTime: the earliest hop not yet placed, for breaking cycles
  while (order.length < n) {
    let next: number;
    if (size > 0) {
      next = byTime[pop()];
      if (placed[next]) continue;
    } else {
      while (placed[byTime[cursor]]) cursor++;
      next = byTime[cursor];
    }
    placed[next] = 1;
    order.push(next);
    for (let k = outStart[next]; k < outStart[next + 1]; k++) {
      const to = out[k];
      if (--indegree[to] === 0 && !placed[to]) push(rank[to]);
    }
  }
  return order;
}
