/**
 * Per-message facts once hops are ordered and clocks adjusted: each
 * delivery's queue wait, handling time and final settle, redeliveries, and
 * the dead-letter history from `x-death`.
 */
import type { DeathEntry } from '../src/contract/hop.ts';
import type { DeadLetterInfo, MessageDelivery, StoredHop } from './api-types.ts';
import { isRejectingSettle, type ChainGraph, type DeliveryNode, type MessageNode } from './chain-graph.ts';

/** A built chain's indexes: the graph plus where each hop landed. */
export interface ChainContext {
  graph: ChainGraph;
  /** Hop index → `ts` + its service's offset. */
  adjustedTs: Float64Array;
  /** Hop index → position in causal order. */
  position: Int32Array;
  /** Hop index of a dead-lettered copy's receive → the reject that dead-lettered it. */
  deadLetterSource: Map<number, number>;
  /** Hop index of a receive → the hop its time in the queue started at (see {@link waitSources}). */
  waitSource: Map<number, number>;
}

export function deadLetterSources(graph: ChainGraph): Map<number, number> {
  const sources = new Map<number, number>();
  for (const e of graph.edges) if (e.kind === 'dead-letter' && !sources.has(e.to)) sources.set(e.to, e.from);
  return sources;
}

const requeues = (h: StoredHop): boolean => h.kind === 'settle' && (h.outcome === 'nack' || h.outcome === 'reject') && h.requeue !== false;

/**
 * Where each receive's time in the queue started: a dead-lettered copy at the
 * reject that dead-lettered it; a redelivery at the latest settle that
 * requeued the message on that queue before it (any consumer of the queue),
 * else at the previous attempt's last hop in its delivery (a channel closed
 * without settling); a first delivery at the message's publish. A replay
 * (the collector taking the message from its dead-letter queue) at the dead
 * letter it starts from.
 */
export function waitSources(graph: ChainGraph, position: Int32Array, deadLetterSource: Map<number, number>): Map<number, number> {
  const { hops } = graph;
  const out = new Map<number, number>();
  for (const m of graph.messages) {
    const requeuesOn = new Map<string, number[]>();
    for (const d of m.deliveries) {
      for (const a of d.attempts) {
        for (const s of a.settles) {
          if (!requeues(hops[s])) continue;
          const list = requeuesOn.get(d.queue);
          if (list === undefined) requeuesOn.set(d.queue, [s]);
          else list.push(s);
        }
      }
    }
    for (const d of m.deliveries) {
      let previousLast: number | undefined;
      for (const a of d.attempts) {
        const r = a.receive;
        if (r !== undefined) {
          let source = deadLetterSource.get(r);
          if (source === undefined && (hops[r].redelivered === true || previousLast !== undefined)) {
            for (const s of requeuesOn.get(d.queue) ?? []) {
              if (position[s] < position[r] && (source === undefined || position[s] > position[source])) source = s;
            }
            source ??= previousLast;
          }
          source ??= m.sends[0];
          if (source !== undefined) out.set(r, source);
        }
        const attemptHops = [...(r === undefined ? [] : [r]), ...a.processes, ...a.settles];
        for (const i of attemptHops) if (previousLast === undefined || position[i] > position[previousLast]) previousLast = i;
      }
    }
  }
  // A replay waited in the dead-letter queue since the dead letter it starts from.
  for (const e of graph.edges) {
    if (hops[e.to].kind === 'replay' && (e.kind === 'replay' || e.kind === 'causation')) out.set(e.to, e.from);
  }
  return out;
}

const byPosition = (ctx: ChainContext) => (a: number, b: number) => ctx.position[a] - ctx.position[b];

/** The attempt hop indexes of a delivery, flattened and in causal order. */
export function deliveryHops(ctx: ChainContext, d: DeliveryNode, kind: 'receive' | 'process' | 'settle'): number[] {
  const out: number[] = [];
  for (const a of d.attempts) {
    if (kind === 'receive') {
      if (a.receive !== undefined) out.push(a.receive);
    } else out.push(...(kind === 'process' ? a.processes : a.settles));
  }
  return out.sort(byPosition(ctx));
}

export function isProcessError(h: StoredHop): boolean {
  return h.kind === 'process' && (h.outcome === 'error' || (h.outcome !== 'ok' && h.error !== undefined));
}

/** A delivery's figures, as {@link MessageDelivery} reports them. */
export function describeDelivery(ctx: ChainContext, m: MessageNode, d: DeliveryNode): MessageDelivery {
  const hops = ctx.graph.hops;
  const receives = deliveryHops(ctx, d, 'receive');
  const processes = deliveryHops(ctx, d, 'process');
  const settles = deliveryHops(ctx, d, 'settle');
  const first = receives[0];
  const lastProcess = processes.at(-1);
  const lastSettle = settles.at(-1);

  const delivery: MessageDelivery = {
    service: d.service,
    queue: d.queue,
    errors: 0,
    redeliveries: 0,
    hopIds: [...d.hops].sort(byPosition(ctx)).map((i) => hops[i].id),
  };
  const consumerTag = first === undefined ? undefined : hops[first].consumerTag;
  if (consumerTag !== undefined) delivery.consumerTag = consumerTag;
  if (first !== undefined) delivery.receivedTs = hops[first].ts;
  if (lastProcess !== undefined) delivery.processedTs = hops[lastProcess].ts;
  if (lastSettle !== undefined) delivery.settledTs = hops[lastSettle].ts;

  if (first !== undefined) {
    // A dead-lettered copy waited since it was rejected, not since it was first published.
    const source = ctx.deadLetterSource.get(first) ?? m.sends[0];
    if (source !== undefined) {
      delivery.queueWaitMs = Math.max(0, ctx.adjustedTs[first] - ctx.adjustedTs[source]);
      if (isShifted(ctx, source) || isShifted(ctx, first)) {
        if (hops[source].service !== hops[first].service) delivery.queueWaitApprox = true;
      }
    }
  }

  let handling: number | undefined;
  for (const p of processes) {
    const dur = hops[p].durationMs;
    if (typeof dur === 'number' && Number.isFinite(dur)) handling = (handling ?? 0) + dur;
    if (isProcessError(hops[p])) delivery.errors++;
  }
  if (handling !== undefined) delivery.handlingMs = handling;
  for (const r of receives) if (hops[r].redelivered === true) delivery.redeliveries++;

  if (lastSettle !== undefined) {
    const s = hops[lastSettle];
    if (s.outcome === 'ack' || s.outcome === 'nack' || s.outcome === 'reject') {
      // AMQP's own default: a nack or reject requeues unless told otherwise.
      delivery.settle = { outcome: s.outcome, requeue: s.outcome === 'ack' ? false : s.requeue !== false };
    }
  }
  return delivery;
}

/** True when a skew estimate moved this hop's time. */
function isShifted(ctx: ChainContext, i: number): boolean {
  return ctx.adjustedTs[i] !== ctx.graph.hops[i].ts;
}

function deathTotal(h: StoredHop): number {
  if (Array.isArray(h.death) && h.death.length > 0) {
    let n = 0;
    for (const e of h.death) n += typeof e?.count === 'number' ? e.count : 1;
    return n;
  }
  return typeof h.deathCount === 'number' ? h.deathCount : 0;
}

/** Largest dead-letter count any hop of the message carried, and that hop. */
export function maxDeath(ctx: ChainContext, m: MessageNode): { count: number; hop?: number } {
  let best: { count: number; hop?: number } = { count: 0 };
  for (const i of m.hops) {
    const n = deathTotal(ctx.graph.hops[i]);
    if (n > best.count) best = { count: n, hop: i };
  }
  return best;
}

const sameEntry = (e: DeathEntry | undefined, queue: string, reason: string): boolean =>
  e !== undefined && e !== null && e.queue === queue && e.reason === reason;

/**
 * Dead-letter history: the `x-death` entries of the hop that carried the
 * fullest history (newest first, as the broker keeps them), each linked to
 * the queue that received the copy; then rejects without requeue that no
 * `x-death` entry accounts for (no dead-lettered copy seen).
 */
export function deadLetterHistory(ctx: ChainContext, m: MessageNode, deadLetterQueues?: Readonly<Record<string, string>>): DeadLetterInfo[] {
  const hops = ctx.graph.hops;
  const out: DeadLetterInfo[] = [];
  const { hop: fullest } = maxDeath(ctx, m);
  const receives = m.deliveries.flatMap((d) => deliveryHops(ctx, d, 'receive')).sort(byPosition(ctx));
  const covered = new Set<string>();

  const death = fullest === undefined ? undefined : hops[fullest].death;
  if (Array.isArray(death)) {
    for (const e of death) {
      if (e === null || typeof e !== 'object') continue;
      const queue = String(e.queue ?? '');
      const reason = String(e.reason ?? '');
      covered.add(`${queue}\u0000${reason}`);
      const info: DeadLetterInfo = {
        queue,
        reason,
        count: typeof e.count === 'number' ? e.count : 1,
        exchange: String(e.exchange ?? ''),
        routingKeys: Array.isArray(e.routingKeys) ? e.routingKeys.map(String) : [],
      };
      const direct = receives.find((r) => sameEntry(hops[r].death?.[0], queue, reason));
      const any = direct ?? receives.find((r) => hops[r].queue !== queue && (hops[r].death ?? []).some((x) => sameEntry(x, queue, reason)));
      const dlq = any === undefined ? undefined : hops[any].queue;
      if (dlq) info.deadLetterQueue = dlq;
      out.push(info);
    }
  }

  for (const d of m.deliveries) {
    const rejects = deliveryHops(ctx, d, 'settle').filter((s) => isRejectingSettle(hops[s]));
    if (rejects.length === 0 || covered.has(`${d.queue}\u0000rejected`)) continue;
    const receive = deliveryHops(ctx, d, 'receive')[0];
    const from = receive === undefined ? (m.sends[0] === undefined ? undefined : hops[m.sends[0]]) : hops[receive];
    const info: DeadLetterInfo = {
      queue: d.queue,
      reason: 'rejected',
      count: rejects.length,
      exchange: from?.exchange ?? '',
      routingKeys: from?.routingKey === undefined ? [] : [from.routingKey],
    };
    // A dead-letter queue nobody consumes, named by configuration (`deadLetterQueues`).
    if (deadLetterQueues !== undefined && Object.hasOwn(deadLetterQueues, d.queue)) info.deadLetterQueue = deadLetterQueues[d.queue];
    out.push(info);
  }
  return out;
}
