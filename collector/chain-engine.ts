/**
 * The chain engine: turns a chain's hops (any arrival order, any clocks) into
 * a causal graph of messages and one causal order of hops, with clock skew,
 * per-message timings and a diagnosis.
 *
 * STUB with the final signatures (the lead's seam for parallel work): it orders
 * by timestamp only and diagnoses nothing. The chain-engine work replaces it.
 */
import type { ChainDetail, ChainSummary, StoredHop } from './api-types.ts';

export interface ChainEngineOptions {
  /** "Now" on the collector's clock, epoch ms; lost/stuck are judged against it. */
  now: number;
  /** A message sent and not received within this is `lost`. @default 60_000 */
  lostAfterMs: number;
  /** A message received and not settled within this is `stuck`. @default 60_000 */
  stuckAfterMs: number;
  /** This many redeliveries (or dead-letter round trips) of one message make a `redelivery-loop`. @default 5 */
  redeliveryLoopThreshold: number;
}

export const DEFAULT_ENGINE_OPTIONS: Omit<ChainEngineOptions, 'now'> = {
  lostAfterMs: 60_000,
  stuckAfterMs: 60_000,
  redeliveryLoopThreshold: 5,
};

export function buildChain(correlationId: string, hops: readonly StoredHop[], options: ChainEngineOptions): ChainDetail {
  void options;
  const sorted = [...hops].sort((a, b) => a.ts - b.ts);
  const startTs = sorted[0]?.ts ?? 0;
  const endTs = sorted.at(-1)?.ts ?? 0;
  const services = [...new Set(sorted.map((h) => h.service))];
  return {
    correlationId,
    status: 'ok',
    problems: [],
    services,
    traceIds: [...new Set(sorted.map((h) => h.traceId))],
    startTs,
    endTs,
    durationMs: endTs - startTs,
    hopCount: sorted.length,
    messageCount: new Set(sorted.map((h) => h.messageId)).size,
    skew: services.map((service, i) => ({ service, offsetMs: 0, samples: 0, reference: i === 0 })),
    rootMessageIds: [],
    messages: [],
    hops: sorted.map((h, seq) => ({ ...h, seq, adjustedTs: h.ts })),
  };
}

export function summarizeChain(detail: ChainDetail, updatedAt: number): ChainSummary {
  return {
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
}
