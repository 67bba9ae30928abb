/**
 * One step of a chain's stored summary, whatever the database: from the
 * summary hops it held to the ones it holds now, the new summary, the list
 * tags to remove and add, the trace ids to add, and the messages whose
 * topology contributions may have changed. A store writes what this says.
 */
import type { ChainFailure, ChainSummary, StoredHop } from './api-types.ts';
import { tagKey } from './chain-list-filters.ts';
import { chainTags, summarizeChainHops, type EngineSettings } from './chain-summary.ts';
import type { TopologyHop } from './topology-buckets.ts';

/** What a topology contribution needs of a stored hop. */
export function topologyHop(h: StoredHop): TopologyHop {
  return {
    kind: h.kind,
    service: h.service,
    exchange: h.exchange ?? null,
    queue: h.queue ?? null,
    ts: h.ts,
    outcome: h.outcome ?? null,
    deathCount: h.deathCount ?? null,
  };
}

/** The hops of each of `messages` (every one of them a key, possibly with no hops). */
export function hopsOfMessages(hops: readonly StoredHop[], messages: Iterable<string>): Map<string, StoredHop[]> {
  const out = new Map<string, StoredHop[]>();
  for (const m of messages) out.set(m, []);
  for (const h of hops) out.get(h.messageId)?.push(h);
  return out;
}

/** The tag keys to delete (at the old summary's start) and to insert (at the new one's). */
export function tagChanges(
  old: ChainSummary | undefined,
  oldHops: readonly StoredHop[],
  summary: ChainSummary,
  hops: readonly StoredHop[],
): { remove: string[]; add: string[] } {
  const next = new Set(chainTags(summary, hops).map(tagKey));
  const remove: string[] = [];
  if (old !== undefined) {
    const sameStart = old.startTs === summary.startTs;
    for (const key of new Set(chainTags(old, oldHops).map(tagKey))) {
      if (sameStart && next.has(key)) next.delete(key);
      else remove.push(key);
    }
  }
  return { remove, add: [...next] };
}

/** Trace ids (32 hex digits) of the new summary that the old one did not have. */
export function newTraceIds(old: ChainSummary | undefined, summary: ChainSummary): string[] {
  const known = new Set(old?.traceIds ?? []);
  return summary.traceIds.filter((t) => !known.has(t) && t.length === 32);
}

/** A chain's stored summary as a store last wrote it. */
export interface StoredChainState {
  summary: ChainSummary | undefined;
  json: string | undefined;
  /** The newest arrival the summary holds (epoch ms), 0 before the first summary. */
  updatedAt: number;
}

export interface ChainStep {
  /** The hops the summary now holds, each once. */
  hops: StoredHop[];
  summary: ChainSummary;
  json: string;
  settled: boolean;
  /** The chain's problem deliveries, with their failure groups' descriptions (what `summary.failureTally` counts). */
  failures: ChainFailure[];
  updatedAt: number;
  /** Whether the summary differs from the stored one (a live event, and tags and traces to write). */
  changed: boolean;
  tags: { remove: string[]; add: string[] };
  traces: string[];
}

/**
 * Summarize a chain from the hops it now holds (`hops`, each once) against
 * what was stored (`stored`, summarized from `before`).
 */
export function stepChain(input: {
  correlationId: string;
  stored: StoredChainState;
  before: readonly StoredHop[];
  hops: StoredHop[];
  updatedAt: number;
  now: number;
  settings: EngineSettings;
}): ChainStep {
  const { summary, settled, failures } = summarizeChainHops(input.correlationId, input.hops, { now: input.now, updatedAt: input.updatedAt }, input.settings);
  const json = JSON.stringify(summary);
  const changed = json !== input.stored.json;
  return {
    hops: input.hops,
    summary,
    json,
    settled,
    failures,
    updatedAt: input.updatedAt,
    changed,
    tags: changed ? tagChanges(input.stored.summary, input.before, summary, input.hops) : { remove: [], add: [] },
    traces: changed ? newTraceIds(input.stored.summary, summary) : [],
  };
}
