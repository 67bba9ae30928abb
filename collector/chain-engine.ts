/**
 * The chain engine: turns a chain's hops (any arrival order, any clocks) into
 * a causal graph of messages and one causal order of hops, with clock skew,
 * per-message timings and a diagnosis.
 *
 * The steps live in modules named for what they hold:
 * - `chain-graph.ts`: messages, deliveries, attempts, happens-before edges;
 * - `chain-skew.ts`: per-service clock offsets from the cross-service edges;
 * - `chain-order.ts`: the causal order (topological, by adjusted time);
 * - `chain-messages.ts`: queue wait, handling, settle, dead-letter history;
 * - `chain-diagnose.ts`: statuses, reasons, the first failure, what is
 *   still open, and deliveries that recovered.
 *
 * A pure function of the hops' content and the options: store ids and
 * arrival order never change the result.
 */
import type { ChainDetail, ChainHop, ChainMessage, ChainSummary, OpenWait, Recovery, StalledEdge, StoredHop } from './api-types.ts';
import { diagnoseChain, diagnoseMessage, recoveries, type MessageDiagnosis } from './chain-diagnose.ts';
import { chainFailures, failureTally, replayAttempts, replayedMessages } from './chain-failures.ts';
import { buildGraph, type ChainGraph, type MessageNode } from './chain-graph.ts';
import { deadLetterHistory, deadLetterSources, describeDelivery, waitSources, type ChainContext } from './chain-messages.ts';
import { causalOrder } from './chain-order.ts';
import { estimateSkew, type SkewSample } from './chain-skew.ts';

export interface ChainEngineOptions {
  /** "Now" on the collector's clock, epoch ms; lost/stuck are judged against it. */
  now: number;
  /** A message sent and not received within this is `lost`. @default 60_000 */
  lostAfterMs: number;
  /** A message received and not settled within this is `stuck`. @default 60_000 */
  stuckAfterMs: number;
  /** This many redeliveries (or dead-letter round trips) of one message make a `redelivery-loop`. @default 5 */
  redeliveryLoopThreshold: number;
  /**
   * Queue → the dead-letter queue its rejected messages go to, for dead-letter
   * queues nobody consumes (parked for replay): a reject without requeue on
   * such a queue is `dead-lettered` into it at once, no copy needs to be seen
   * (without it, the message is `discarded` once `lostAfterMs` passed without
   * a copy). A dead-letter queue a consumer receives from needs no entry.
   * @default {}
   */
  deadLetterQueues?: Readonly<Record<string, string>>;
  /**
   * The result feeds only {@link summarizeChain}: `hops` are the input hops
   * in causal order, not copies with `seq` and `adjustedTs` (a summary of
   * thousands of chains a second would spend most of its time copying them).
   * @default false
   */
  summaryOnly?: boolean;
}

export const DEFAULT_ENGINE_OPTIONS: Omit<ChainEngineOptions, 'now'> = {
  lostAfterMs: 60_000,
  stuckAfterMs: 60_000,
  redeliveryLoopThreshold: 5,
};

/**
 * The service the other clocks are measured against: the publisher of the
 * earliest root message that was published at all.
 */
function referenceService(g: ChainGraph): string | undefined {
  let best: number | undefined;
  for (const m of g.messages) {
    const s0 = m.sends[0];
    if (m.root && s0 !== undefined && (best === undefined || s0 < best)) best = s0;
  }
  return best === undefined ? undefined : g.hops[best].service;
}

/**
 * Build one chain from all its hops.
 *
 * @example
 * const detail = buildChain('order-42', hops, { ...DEFAULT_ENGINE_OPTIONS, now: Date.now() });
 * detail.hops.map((h) => `${h.seq} ${h.service} ${h.kind}`);
 */
export function buildChain(correlationId: string, hops: readonly StoredHop[], options: ChainEngineOptions): ChainDetail {
  const g = buildGraph(hops);
  const n = g.hops.length;

  const distinctServices = [...new Set(g.hops.map((h) => h.service))];
  const samples: SkewSample[] = [];
  for (const e of g.edges) {
    const from = g.hops[e.from];
    const to = g.hops[e.to];
    if (from.service !== to.service) samples.push({ fromService: from.service, toService: to.service, minDifference: from.ts - to.ts });
  }
  const { offsets, skew } = estimateSkew(distinctServices, samples, referenceService(g));

  const adjustedTs = new Float64Array(n);
  for (let i = 0; i < n; i++) adjustedTs[i] = g.hops[i].ts + (offsets.get(g.hops[i].service) ?? 0);
  const order = causalOrder(g.hops, g.edges, adjustedTs);
  const position = new Int32Array(n);
  order.forEach((hop, seq) => (position[hop] = seq));
  const deadLetterSource = deadLetterSources(g);
  const ctx: ChainContext = { graph: g, adjustedTs, position, deadLetterSource, waitSource: waitSources(g, position, deadLetterSource) };

  const firstPosition = (m: { hops: readonly number[] }): number => {
    let p = Infinity;
    for (const i of m.hops) if (position[i] < p) p = position[i];
    return p;
  };
  const nodes = [...g.messages].sort((a, b) => firstPosition(a) - firstPosition(b));
  const rank = new Map(nodes.map((m, k) => [m.messageId, k]));

  const recovered: Recovery[] = [];
  const built: { node: MessageNode; message: ChainMessage; diagnosis: MessageDiagnosis }[] = nodes.map((m) => {
    const deliveryNodes = [...m.deliveries].sort((a, b) => firstPosition(a) - firstPosition(b));
    const node: MessageNode = { ...m, deliveries: deliveryNodes };
    const deliveries = deliveryNodes.map((d) => describeDelivery(ctx, node, d));
    const redeliveryCount = deliveries.reduce((sum, d) => sum + d.redeliveries, 0);
    const diagnosis = diagnoseMessage(ctx, node, deliveries, redeliveryCount, options);
    // A message whose status is a problem is explained by its failure, not by a recovery.
    if (diagnosis.status === 'ok' || diagnosis.status === 'in-flight') {
      for (const { hop, ...r } of recoveries(ctx, node, deliveries)) recovered.push({ ...r, hopId: g.hops[hop].id });
    }
    return { node, message: toChainMessage(ctx, node, deliveries, redeliveryCount, diagnosis, rank, options.deadLetterQueues), diagnosis };
  });

  // A message replayed from its dead-letter queue hands its say over the chain's status to its replay.
  const replayed = replayedMessages(ctx, built);
  for (const b of built) {
    const by = replayed.get(b.node.messageId);
    if (by !== undefined) b.message.statusReason = `${b.message.statusReason ?? b.message.status}; replayed as ${by.join(', ')}`;
  }
  const chain = diagnoseChain(ctx, built, new Set(replayed.keys()));
  const failures = chainFailures(ctx, built, replayed, options);
  const open: OpenWait[] = [];
  for (const { node, diagnosis } of built) {
    for (const o of diagnosis.open) {
      const h = g.hops[o.hop];
      const wait: OpenWait = { kind: o.kind, status: o.status, messageId: node.messageId, hopId: h.id, service: h.service, waitedMs: o.waitedMs };
      if (o.queue !== undefined) wait.queue = o.queue;
      open.push(wait);
    }
  }

  const chainHops: ChainHop[] = options.summaryOnly
    ? (order.map((i) => g.hops[i]) as ChainHop[])
    : order.map((i, seq) => {
        const hop: ChainHop = { ...g.hops[i], seq, adjustedTs: adjustedTs[i] };
        const since = ctx.waitSource.get(i);
        if (since !== undefined) hop.waitSinceHopId = g.hops[since].id;
        return hop;
      });
  let startTs = 0;
  let endTs = 0;
  if (n > 0) {
    startTs = Infinity;
    endTs = -Infinity;
    for (let i = 0; i < n; i++) {
      if (adjustedTs[i] < startTs) startTs = adjustedTs[i];
      if (adjustedTs[i] > endTs) endTs = adjustedTs[i];
    }
  }
  const services = [...new Set(chainHops.map((h) => h.service))];
  const skewOf = new Map(skew.map((s) => [s.service, s]));

  const detail: ChainDetail = {
    correlationId,
    status: chain.status,
    problems: chain.problems,
    services,
    traceIds: [...new Set(chainHops.map((h) => h.traceId).filter((t) => typeof t === 'string' && t !== ''))],
    startTs,
    endTs,
    durationMs: endTs - startTs,
    hopCount: n,
    messageCount: nodes.length,
    judgedAt: options.now,
    open,
    skew: services.map((s) => skewOf.get(s)!),
    rootMessageIds: built.filter((b) => b.node.root).map((b) => b.node.messageId),
    messages: built.map((b) => b.message),
    hops: chainHops,
  };
  if (chain.firstFailure !== undefined) detail.firstFailure = chain.firstFailure;
  if (recovered.length > 0) detail.recoveries = recovered;
  if (replayed.size > 0) detail.replayed = true;
  if (failures.length > 0) detail.failures = failures;
  if (n > 0 && g.hops.some((h) => h.kind === 'replay')) {
    const statusOf = new Map(built.map((b) => [b.node.messageId, b.message.status]));
    const attempts = replayAttempts(ctx, (id) => statusOf.get(id));
    if (attempts.length > 0) detail.replays = attempts;
  }
  return detail;
}

function toChainMessage(
  ctx: ChainContext,
  m: MessageNode,
  deliveries: ChainMessage['deliveries'],
  redeliveryCount: number,
  diagnosis: MessageDiagnosis,
  rank: Map<string, number>,
  deadLetterQueues: Readonly<Record<string, string>> | undefined,
): ChainMessage {
  const hops = ctx.graph.hops;
  const message: ChainMessage = {
    messageId: m.messageId,
    childMessageIds: [...m.childMessageIds].sort((a, b) => (rank.get(a) ?? 0) - (rank.get(b) ?? 0)),
    deliveries,
    status: diagnosis.status,
    statusReason: diagnosis.statusReason,
    redeliveryCount,
    deadLetters: deadLetterHistory(ctx, m, deadLetterQueues),
    hopIds: [...m.hops].sort((a, b) => ctx.position[a] - ctx.position[b]).map((i) => hops[i].id),
  };
  if (m.parentMessageId !== undefined) message.parentMessageId = m.parentMessageId;
  const s0 = m.sends[0];
  if (s0 !== undefined) {
    const h = hops[s0];
    message.publisher = { service: h.service, instance: h.instance ?? '', exchange: h.exchange ?? '', routingKey: h.routingKey ?? '', ts: h.ts };
  }
  for (const i of m.hops) {
    const type = hops[i].messageType ?? hops[i].properties?.type;
    if (type !== undefined && type !== '') {
      message.messageType = type;
      break;
    }
  }
  // The critical delivery: the longest wait plus handling. Deliveries to several queues run in
  // parallel; adding their figures up would describe no consumer at all.
  let critical = -1;
  let longest = -1;
  deliveries.forEach((d, k) => {
    if (d.queueWaitMs === undefined && d.handlingMs === undefined) return;
    const total = (d.queueWaitMs ?? 0) + (d.handlingMs ?? 0);
    if (total > longest) {
      longest = total;
      critical = k;
    }
  });
  if (critical >= 0) {
    const d = deliveries[critical];
    message.criticalDelivery = critical;
    if (d.queueWaitMs !== undefined) message.queueWaitMs = d.queueWaitMs;
    if (d.queueWaitApprox) message.queueWaitApprox = true;
    if (d.handlingMs !== undefined) message.handlingMs = d.handlingMs;
  }
  return message;
}

/** Longest failure reason a list row carries. */
const SUMMARY_REASON_MAX = 300;

/** Where the chain's lost and stuck messages stopped, by topology edge (see {@link StalledEdge}). */
function stalledEdges(detail: ChainDetail): StalledEdge[] {
  const byId = new Map(detail.hops.map((h) => [h.id, h]));
  const edges = new Map<string, StalledEdge>();
  for (const o of detail.open) {
    if (o.status !== 'lost' && o.status !== 'stuck') continue;
    const h = byId.get(o.hopId);
    if (h === undefined) continue;
    let from: string;
    let to: string;
    if (o.kind === 'unreceived') {
      if (o.queue !== undefined) [from, to] = [`exchange:${h.exchange ?? ''}`, `queue:${o.queue}`];
      else [from, to] = [`service:${h.service}`, `exchange:${h.exchange ?? ''}`];
    } else [from, to] = [`queue:${o.queue ?? h.queue ?? ''}`, `service:${h.service}`];
    const key = `${o.status}\u0000${from}\u0000${to}`;
    const e = edges.get(key);
    if (e === undefined) edges.set(key, { status: o.status, from, to, count: 1, ts: h.ts });
    else {
      e.count++;
      if (h.ts < e.ts) e.ts = h.ts;
    }
  }
  return [...edges.values()].sort((a, b) => a.ts - b.ts || (a.from < b.from ? -1 : a.from > b.from ? 1 : 0));
}

/**
 * The list row of a chain.
 *
 * @param updatedAt last time a hop of the chain was ingested (collector clock)
 */
export function summarizeChain(detail: ChainDetail, updatedAt: number): ChainSummary {
  const summary: ChainSummary = {
    correlationId: detail.correlationId,
    status: detail.status,
    problems: detail.problems,
    redelivered: detail.hops.some((h) => h.redelivered === true),
    services: detail.services,
    traceIds: detail.traceIds,
    hopCount: detail.hopCount,
    messageCount: detail.messageCount,
    startTs: detail.startTs,
    endTs: detail.endTs,
    durationMs: detail.durationMs,
    updatedAt,
  };
  const failure = detail.firstFailure;
  if (failure !== undefined) {
    const hop = detail.hops.find((h) => h.id === failure.hopId);
    const reason = failure.reason.length > SUMMARY_REASON_MAX ? `${failure.reason.slice(0, SUMMARY_REASON_MAX - 1)}…` : failure.reason;
    summary.failure = { status: failure.status, service: hop?.service ?? '', kind: failure.kind, reason };
    if (failure.replayed) summary.failure.replayed = true;
    const error = hop?.error;
    if (error) {
      const text = error.message ? `${error.type || 'Error'}: ${error.message}` : error.type || 'Error';
      summary.failure.error = text.length > SUMMARY_REASON_MAX ? `${text.slice(0, SUMMARY_REASON_MAX - 1)}…` : text;
    }
  }
  if (detail.replayed) summary.replayed = true;
  if (detail.failures !== undefined) summary.failureTally = failureTally(detail.failures);
  if (detail.open.length > 0) summary.open = true;
  const stalled = stalledEdges(detail);
  if (stalled.length > 0) summary.stalled = stalled;
  const rootId = detail.rootMessageIds[0];
  const root = detail.messages.find((m) => m.messageId === rootId);
  if (root !== undefined) {
    const receive = root.publisher === undefined ? detail.hops.find((h) => h.messageId === rootId && h.kind === 'receive') : undefined;
    const label = root.publisher?.routingKey || receive?.routingKey || receive?.queue;
    if (label) summary.rootRoutingKey = label;
    if (root.messageType !== undefined) summary.rootMessageType = root.messageType;
  }
  return summary;
}

/**
 * False while the chain's status can still change with time alone (a message
 * in flight may yet become lost or stuck); the store's `settled` flag.
 */
export function chainIsSettled(detail: ChainDetail): boolean {
  return !detail.problems.includes('in-flight');
}
