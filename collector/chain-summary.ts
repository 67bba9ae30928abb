/**
 * The chain engine's summary side: the list row of a chain (`ChainSummary`),
 * whether it can still change with time alone, the list-filter tags it is
 * found by, and the reduced hop ("summary hop") a store keeps in memory per
 * active chain so a summary is recomputed from state, never from re-read and
 * re-parsed records.
 */
import type { HopRecord } from '../src/contract/hop.ts';
import type { ChainFailure, ChainSummary, StoredHop } from './api-types.ts';
import { buildChain, chainIsSettled, summarizeChain, type ChainEngineOptions } from './chain-engine.ts';

/** Engine options without `now` (a summary gets "now" when it is computed). */
export type EngineSettings = Omit<ChainEngineOptions, 'now'>;

/** A chain's summary and whether time alone can still change it. */
export interface SummaryResult {
  summary: ChainSummary;
  /** False while a message is in flight (it may yet turn lost or stuck). */
  settled: boolean;
  /** The chain's problem deliveries (what `summary.failureTally` counts), with their groups' descriptions. */
  failures: ChainFailure[];
}

/**
 * Summarize a chain from its hops (full or {@link summaryHop}s: the result
 * is the same).
 * @param updatedAt last time a hop of the chain was ingested (collector clock)
 */
export function summarizeChainHops(
  correlationId: string,
  hops: readonly StoredHop[],
  times: { now: number; updatedAt: number },
  settings: EngineSettings,
): SummaryResult {
  const detail = buildChain(correlationId, hops, { ...settings, now: times.now, summaryOnly: true });
  return { summary: summarizeChain(detail, times.updatedAt), settled: chainIsSettled(detail), failures: detail.failures ?? [] };
}

/** Error text kept in a summary hop: enough to say what failed, never a stack. */
const SUMMARY_ERROR_CHARS = 500;

/**
 * A hop reduced to what a summary, its tags and the topology read: no
 * headers, properties, payload or stack; dead-letter entries without their
 * routing keys and time. `buildChain` over summary hops gives the same
 * summary as over the full hops.
 */
export function summaryHop(h: HopRecord, id: number, receivedAt: number): StoredHop {
  const s: StoredHop = {
    v: h.v,
    kind: h.kind,
    ts: h.ts,
    service: h.service,
    instance: h.instance,
    traceId: h.traceId,
    spanId: h.spanId,
    correlationId: h.correlationId,
    messageId: h.messageId,
    id,
    receivedAt,
  };
  if (h.parentSpanId !== undefined) s.parentSpanId = h.parentSpanId;
  if (h.causationId !== undefined) s.causationId = h.causationId;
  if (h.exchange !== undefined) s.exchange = h.exchange;
  if (h.routingKey !== undefined) s.routingKey = h.routingKey;
  if (h.queue !== undefined) s.queue = h.queue;
  if (h.consumerTag !== undefined) s.consumerTag = h.consumerTag;
  if (h.deliveryTag !== undefined) s.deliveryTag = h.deliveryTag;
  if (h.redelivered !== undefined) s.redelivered = h.redelivered;
  if (h.deathCount !== undefined) s.deathCount = h.deathCount;
  if (Array.isArray(h.death)) {
    s.death = h.death.map((d) => ({ queue: d?.queue, reason: d?.reason, count: d?.count, exchange: d?.exchange, routingKeys: [] }));
  }
  if (h.outcome !== undefined) s.outcome = h.outcome;
  if (h.requeue !== undefined) s.requeue = h.requeue;
  if (h.multiple !== undefined) s.multiple = h.multiple;
  if (h.durationMs !== undefined) s.durationMs = h.durationMs;
  if (h.replyCode !== undefined) s.replyCode = h.replyCode;
  if (h.replyText !== undefined) s.replyText = String(h.replyText).slice(0, SUMMARY_ERROR_CHARS);
  if (h.error !== undefined && h.error !== null) {
    s.error = { type: h.error.type, message: String(h.error.message ?? '').slice(0, SUMMARY_ERROR_CHARS) };
    if (h.error.code !== undefined) s.error.code = h.error.code;
  }
  const type = h.messageType ?? h.properties?.type;
  if (type !== undefined) s.messageType = type;
  return s;
}

/** A value a chain can be found by in the list filters. */
export type ChainTag =
  | { kind: 'service' | 'status' | 'exchange' | 'routingKey' | 'queue' | 'failure'; value: string }
  | { kind: 'redelivered' }
  | { kind: 'replayed' };

/**
 * The tags of a chain: its services, status and problems, the exchanges,
 * routing keys and queues of its hops, the failure groups of its problem
 * deliveries (replayed ones included), and the redelivered and replayed flags.
 */
export function chainTags(summary: ChainSummary, hops: readonly StoredHop[]): ChainTag[] {
  const tags: ChainTag[] = [];
  const seen = new Set<string>();
  const add = (kind: 'service' | 'status' | 'exchange' | 'routingKey' | 'queue' | 'failure', value: string) => {
    const key = `${kind}\u0000${value}`;
    if (seen.has(key)) return;
    seen.add(key);
    tags.push({ kind, value });
  };
  for (const s of summary.services) add('service', s);
  add('status', summary.status);
  for (const p of summary.problems) add('status', p);
  if (summary.redelivered) tags.push({ kind: 'redelivered' });
  if (summary.replayed) tags.push({ kind: 'replayed' });
  for (const t of summary.failureTally ?? []) add('failure', t.fingerprint);
  for (const h of hops) {
    if (typeof h.exchange === 'string') add('exchange', h.exchange);
    if (typeof h.routingKey === 'string') add('routingKey', h.routingKey);
    if (typeof h.queue === 'string') add('queue', h.queue);
  }
  return tags;
}
