/**
 * The collector's HTTP API as the UI uses it. URLs are relative to the page so
 * the UI works wherever the collector is mounted (hash routing keeps the
 * document path fixed).
 */
import type {
  ChainDetail,
  ChainList,
  FailureGroup,
  FailureGroupList,
  LiveChainEvent,
  ReplayConfig,
  ReplayRequest,
  ReplayResult,
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
    if (response.status === 401) signInNeeded();
    throw new ApiError(message, response.status, code);
  }
  return (await response.json()) as T;
}

/**
 * Sign-in: a collector with a token answers 401 until the browser holds its
 * session cookie (HttpOnly, so this code never sees it). A 401 anywhere tells
 * the listeners (the app shows the sign-in form); {@link signIn} sends the
 * token once, and the app starts over with the cookie.
 */
const signInListeners = new Set<() => void>();
let signInShown = false;

function signInNeeded(): void {
  if (signInShown) return;
  signInShown = true;
  for (const listener of signInListeners) listener();
}

/** Called when the collector asks for its token; returns the unsubscribe function. */
export function onSignInNeeded(listener: () => void): () => void {
  signInListeners.add(listener);
  if (signInShown) listener();
  return () => signInListeners.delete(listener);
}

/** Trade the token for a session cookie. @throws ApiError (401 for a wrong token) */
export async function signIn(token: string): Promise<void> {
  let response: Response;
  try {
    response = await fetch(apiUrl('api/session'), {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ token }),
      credentials: 'same-origin',
    });
  } catch (cause) {
    throw new ApiError(`Cannot reach the collector (${(cause as Error).message}).`, 0);
  }
  if (!response.ok) {
    const body = (await response.json().catch(() => ({}))) as { message?: string; code?: string };
    throw new ApiError(body.message ?? `${response.status} ${response.statusText}`, response.status, body.code);
  }
  signInShown = false;
  // What failed without the cookie starts over with it.
  configPromise = undefined;
  restartLive();
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

/** Read an error answer: the collector's `message` and `code` when it sent its error body. */
async function errorOf(response: Response): Promise<ApiError> {
  let message = `${response.status} ${response.statusText}`;
  let code: string | undefined;
  try {
    const body = (await response.json()) as { message?: unknown; code?: unknown };
    if (typeof body.message === 'string' && body.message) message = body.message;
    if (typeof body.code === 'string') code = body.code;
  } catch {
    // not JSON
  }
  return new ApiError(message, response.status, code);
}

/**
 * `POST /api/replay`. The admin token, when the collector has one, goes as a
 * bearer header (the session cookie carries only the reads token). A 401 here
 * is about that token, not the sign-in: it does not show the sign-in form.
 */
async function postReplay(body: ReplayRequest, adminToken: string | undefined): Promise<ReplayResult> {
  let response: Response;
  try {
    response = await fetch(apiUrl('api/replay'), {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json', ...(adminToken ? { authorization: `Bearer ${adminToken}` } : {}) },
      body: JSON.stringify(body),
      credentials: 'same-origin',
    });
  } catch (cause) {
    throw new ApiError(`Cannot reach the collector (${(cause as Error).message}).`, 0);
  }
  if (!response.ok) throw await errorOf(response);
  return (await response.json()) as ReplayResult;
}

export interface FailureQuery {
  status?: string;
  service?: string;
  from?: number;
  to?: number;
  sort?: 'recent' | 'count';
  limit?: number;
}

export const api = {
  failures: (query: FailureQuery, signal?: AbortSignal) => getJson<FailureGroupList>('api/failures', { ...query }, signal),
  failure: (fingerprint: string, query: { from?: number; to?: number }, signal?: AbortSignal) =>
    getJson<FailureGroup>(`api/failures/${encodeURIComponent(fingerprint)}`, query, signal),
  failureChains: (fingerprint: string, query: { limit?: number; cursor?: string }, signal?: AbortSignal) =>
    getJson<ChainList>(`api/failures/${encodeURIComponent(fingerprint)}/chains`, query, signal),
  replayConfig: () => getJson<ReplayConfig>('api/replay'),
  replay: postReplay,
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
  // The collector cut this stream because it fell too far behind: what it shows is stale, start over.
  source.addEventListener('reload', () => window.location.reload());
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

/** A new stream (after sign-in: the one refused without the cookie does not retry by itself). */
function restartLive(): void {
  source?.close();
  source = undefined;
  if (listeners.size > 0) {
    setLiveState('connecting');
    ensureSource();
  }
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
