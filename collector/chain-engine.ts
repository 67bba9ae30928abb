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
 * - `chain-diagnose.ts`: statuses, reasons, the first failure.
 *
 * A pure function of the hops' content and the options: store ids and
 * arrival order never change the result.
 */
import type { ChainDetail, ChainHop, ChainMessage, ChainSummary, StoredHop } from './api-types.ts';
import { diagnoseChain, diagnoseMessage, type MessageDiagnosis } from './chain-diagnose.ts';
import { buildGraph, type ChainGraph, type MessageNode } from './chain-graph.ts';
import { deadLetterHistory, deadLetterSources, describeDelivery, type ChainContext } from './chain-messages.ts';
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
  const ctx: ChainContext = { graph: g, adjustedTs, position, deadLetterSource: deadLetterSources(g) };

  const firstPosition = (m: { hops: readonly number[] }): number => {
    let p = Infinity;
    for (const i of m.hops) if (position[i] < p) p = position[i];
    return p;
  };
  const nodes = [...g.messages].sort((a, b) => firstPosition(a) - firstPosition(b));
  const rank = new Map(nodes.map((m, k) => [m.messageId, k]));

  const built: { node: MessageNode; message: ChainMessage; diagnosis: MessageDiagnosis }[] = nodes.map((m) => {
    const deliveryNodes = [...m.deliveries].sort((a, b) => firstPosition(a) - firstPosition(b));
    const node: MessageNode = { ...m, deliveries: deliveryNodes };
    const deliveries = deliveryNodes.map((d) => describeDelivery(ctx, node, d));
    const redeliveryCount = deliveries.reduce((sum, d) => sum + d.redeliveries, 0);
    const diagnosis = diagnoseMessage(ctx, node, deliveries, redeliveryCount, options);
    return { node, message: toChainMessage(ctx, node, deliveries, redeliveryCount, diagnosis, rank), diagnosis };
  });

  const chain = diagnoseChain(ctx, built);

  const chainHops: ChainHop[] = options.summaryOnly
    ? (order.map((i) => g.hops[i]) as ChainHop[])
    : order.map((i, seq) => ({ ...g.hops[i], seq, adjustedTs: adjustedTs[i] }));
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
    skew: services.map((s) => skewOf.get(s)!),
    rootMessageIds: built.filter((b) => b.node.root).map((b) => b.node.messageId),
    messages: built.map((b) => b.message),
    hops: chainHops,
  };
  if (chain.firstFailure !== undefined) detail.firstFailure = chain.firstFailure;
  return detail;
}

function toChainMessage(
  ctx: ChainContext,
  m: MessageNode,
  deliveries: ChainMessage['deliveries'],
  redeliveryCount: number,
  diagnosis: MessageDiagnosis,
  rank: Map<string, number>,
): ChainMessage {
  const hops = ctx.graph.hops;
  const message: ChainMessage = {
    messageId: m.messageId,
    childMessageIds: [...m.childMessageIds].sort((a, b) => (rank.get(a) ?? 0) - (rank.get(b) ?? 0)),
    deliveries,
    status: diagnosis.status,
    statusReason: diagnosis.statusReason,
    redeliveryCount,
    deadLetters: deadLetterHistory(ctx, m),
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
  let wait: number | undefined;
  let handling: number | undefined;
  for (const d of deliveries) {
    if (d.queueWaitMs !== undefined) wait = wait === undefined ? d.queueWaitMs : Math.min(wait, d.queueWaitMs);
    if (d.handlingMs !== undefined) handling = (handling ?? 0) + d.handlingMs;
  }
  if (wait !== undefined) message.queueWaitMs = wait;
  if (handling !== undefined) message.handlingMs = handling;
  return message;
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
