/**
 * The collector's HTTP API as the UI uses it. URLs are relative to the page so
 * the UI works wherever the collector is mounted (hash routing keeps the
 * document path fixed).
 */
import type {
  ChainDetail,
  ChainList,
  LiveChainEvent,
  Topology,
  UiConfig,
} from '../../collector/api-types.ts';

/** A failed API call, carrying the collector's own `message` when it sent one. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string | undefined;
  constructor(message: string, status: number, code?: string) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

export function apiUrl(path: string, params?: Record<string, string | number | undefined>): string {
  const url = new URL(path, document.baseURI);
  for (const [key, value] of Object.entries(params ?? {})) {
    // '' is a value (the default exchange); leave a parameter out with undefined.
    if (value !== undefined) url.searchParams.set(key, String(value));
  }
  return url.toString();
}

async function getJson<T>(path: string, params?: Record<string, string | number | undefined>, signal?: AbortSignal): Promise<T> {
  const url = apiUrl(path, params);
  let response: Response;
  try {
    response = await fetch(url, { headers: { accept: 'application/json' }, signal });
  } catch (cause) {
    if ((cause as Error).name === 'AbortError') throw cause;
    throw new ApiError(`Cannot reach the collector at ${new URL(url).origin} (${(cause as Error).message}).`, 0);
  }
  if (!response.ok) {
    // Every collector error has the body { statusCode, code, error, message }.
    let message = `${response.status} ${response.statusText}`;
    let code: string | undefined;
    try {
      const body = (await response.json()) as { message?: unknown; code?: unknown };
      if (typeof body.message === 'string' && body.message) message = body.message;
      if (typeof body.code === 'string') code = body.code;
    } catch {
      // Not JSON (a proxy's error page): the status line is all there is.
    }
    throw new ApiError(message, response.status, code);
  }
  return (await response.json()) as T;
}

export interface ChainQuery {
  status?: string;
  service?: string;
  exchange?: string;
  queue?: string;
  q?: string;
  from?: number;
  to?: number;
  limit?: number;
  cursor?: string;
}

export const api = {
  chains: (query: ChainQuery, signal?: AbortSignal) =>
    getJson<ChainList>('api/chains', { ...query }, signal),
  chain: (correlationId: string, signal?: AbortSignal) =>
    getJson<ChainDetail>(`api/chains/${encodeURIComponent(correlationId)}`, undefined, signal),
  topology: (query: { from?: number; to?: number }, signal?: AbortSignal) =>
    getJson<Topology>('api/topology', query, signal),
  config: () => getJson<UiConfig>('api/config'),
  exportUrl: (correlationId: string, format: 'jaeger' | 'otlp') =>
    apiUrl(`api/chains/${encodeURIComponent(correlationId)}/export`, { format }),
};

export type LiveState = 'connecting' | 'live' | 'reconnecting';

/**
 * One shared EventSource for `GET /api/live`; subscribers get every chain
 * event. EventSource reconnects by itself; we only report the state.
 */
const listeners = new Set<(event: LiveChainEvent) => void>();
const stateListeners = new Set<(state: LiveState) => void>();
let source: EventSource | undefined;
let liveState: LiveState = 'connecting';

function setLiveState(state: LiveState): void {
  liveState = state;
  for (const listener of stateListeners) listener(state);
}

function ensureSource(): void {
  if (source) return;
  source = new EventSource(apiUrl('api/live'));
  source.addEventListener('open', () => setLiveState('live'));
  source.addEventListener('error', () => setLiveState('reconnecting'));
  source.addEventListener('chain', (event) => {
    let parsed: LiveChainEvent;
    try {
      parsed = JSON.parse((event as MessageEvent<string>).data) as LiveChainEvent;
    } catch {
      return;
    }
    if (!parsed || typeof parsed !== 'object' || !parsed.chain) return;
    for (const listener of listeners) listener(parsed);
  });
}

export function subscribeLive(
  onEvent: (event: LiveChainEvent) => void,
  onState?: (state: LiveState) => void,
): () => void {
  ensureSource();
  listeners.add(onEvent);
  if (onState) {
    stateListeners.add(onState);
    onState(liveState);
  }
  return () => {
    listeners.delete(onEvent);
    if (onState) stateListeners.delete(onState);
  };
}

let configPromise: Promise<UiConfig | undefined> | undefined;

/** The collector's UI config, fetched once; `undefined` when it can't be had (the UI works without it). */
export function loadConfig(): Promise<UiConfig | undefined> {
  configPromise ??= api.config().catch(() => undefined);
  return configPromise;
}
