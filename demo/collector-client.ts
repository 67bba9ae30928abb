/**
 * The few collector API calls the demo makes: how many hops are stored, and
 * how the chains stand, for the progress line and the summary; the failure
 * groups and a replay, for `--replay`.
 */
import type { ChainDetail, ChainList, ChainStatus, FailureGroupList, Health, ReplayResult } from '../collector/api-types.ts';

export class CollectorClient {
  readonly #base: string;
  readonly #headers: Record<string, string>;

  constructor(baseUrl: string, token?: string) {
    this.#base = baseUrl.replace(/\/+$/, '');
    this.#headers = token ? { authorization: `Bearer ${token}` } : {};
  }

  async #get<T>(path: string): Promise<T | undefined> {
    const res = await fetch(`${this.#base}${path}`, { headers: this.#headers, signal: AbortSignal.timeout(5_000) });
    if (res.status === 404) {
      await res.body?.cancel();
      return undefined;
    }
    if (!res.ok) throw new Error(`GET ${path}: HTTP ${res.status} ${await res.text()}`);
    return (await res.json()) as T;
  }

  /** Hops the collector has stored, or `undefined` when it cannot be reached. */
  async storedHops(): Promise<number | undefined> {
    try {
      return (await this.#get<Health>('/healthz'))?.hops;
    } catch {
      return undefined;
    }
  }

  /** Chains that started at or after `from`, counted by status (at most `maxPages` pages of 200). */
  async statusCounts(from: number, maxPages = 10): Promise<Map<ChainStatus, number>> {
    const counts = new Map<ChainStatus, number>();
    let cursor: string | null = null;
    for (let page = 0; page < maxPages; page++) {
      const qs = new URLSearchParams({ from: String(Math.floor(from)), limit: '200' });
      if (cursor) qs.set('cursor', cursor);
      const list = await this.#get<ChainList>(`/api/chains?${qs}`);
      if (!list) break;
      for (const chain of list.items) counts.set(chain.status, (counts.get(chain.status) ?? 0) + 1);
      cursor = list.nextCursor;
      if (!cursor) break;
    }
    return counts;
  }

  /** The failure groups of chains that started at or after `from`. */
  async failures(from: number): Promise<FailureGroupList | undefined> {
    return this.#get<FailureGroupList>(`/api/failures?from=${Math.floor(from)}`);
  }

  /** Replay a failure group's dead letters (`POST /api/replay`, with the admin token). */
  async replay(group: string, adminToken: string): Promise<ReplayResult> {
    const res = await fetch(`${this.#base}/api/replay`, {
      method: 'POST',
      headers: { ...this.#headers, authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ group, requestedBy: 'demo' }),
      signal: AbortSignal.timeout(30_000),
    });
    if (!res.ok) throw new Error(`POST /api/replay: HTTP ${res.status} ${await res.text()}`);
    return (await res.json()) as ReplayResult;
  }

  /** One chain, freshly diagnosed; `undefined` when the collector has no hop of it yet. */
  chain(correlationId: string): Promise<ChainDetail | undefined> {
    return this.#get<ChainDetail>(`/api/chains/${encodeURIComponent(correlationId)}`);
  }
}
