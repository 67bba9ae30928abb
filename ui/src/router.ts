/**
 * Hash routing, so deep links work from the collector's static file server:
 *   #/                          chains list (filters in the query: #/?status=failed&q=…)
 *   #/chains/:id                one chain, opened on its first failure (or first hop)
 *   #/chains/:id?focus=ID       …opened on the first hop of a message, span or trace with that id (a search hit)
 *   #/chains/:id/hops/:seq      one chain with hop `seq` selected
 *   #/topology                  the observed topology
 *   #/failures                  failure groups (filters in the query: #/failures?sort=count&status=…)
 *   #/failures/:fingerprint     one group: its chains, its replay
 */
import { useEffect, useState } from 'preact/hooks';

export type Route =
  | { name: 'list'; params: URLSearchParams }
  | { name: 'chain'; correlationId: string; seq: number | undefined; focus: string | undefined }
  | { name: 'topology'; params: URLSearchParams }
  | { name: 'failures'; params: URLSearchParams }
  | { name: 'failure'; fingerprint: string; params: URLSearchParams }
  | { name: 'not-found'; path: string };

export function parseHash(hash: string): Route {
  const raw = hash.replace(/^#/, '') || '/';
  const queryAt = raw.indexOf('?');
  const path = queryAt === -1 ? raw : raw.slice(0, queryAt);
  const params = new URLSearchParams(queryAt === -1 ? '' : raw.slice(queryAt + 1));
  const parts = path.split('/').filter(Boolean);
  if (parts.length === 0) return { name: 'list', params };
  if (parts[0] === 'topology' && parts.length === 1) return { name: 'topology', params };
  if (parts[0] === 'failures' && parts.length === 1) return { name: 'failures', params };
  if (parts[0] === 'failures' && parts.length === 2 && /^[0-9a-f]{16}$/.test(parts[1])) return { name: 'failure', fingerprint: parts[1], params };
  if (parts[0] === 'chains' && parts.length >= 2) {
    let correlationId: string;
    try {
      correlationId = decodeURIComponent(parts[1]);
    } catch {
      return { name: 'not-found', path };
    }
    const focus = params.get('focus') || undefined;
    if (parts.length === 2) return { name: 'chain', correlationId, seq: undefined, focus };
    if (parts.length === 4 && parts[2] === 'hops' && /^\d+$/.test(parts[3])) {
      return { name: 'chain', correlationId, seq: Number(parts[3]), focus };
    }
  }
  return { name: 'not-found', path };
}

export function chainHref(correlationId: string, seq?: number, focus?: string): string {
  const base = `#/chains/${encodeURIComponent(correlationId)}`;
  const path = seq === undefined ? base : `${base}/hops/${seq}`;
  return focus ? `${path}?focus=${encodeURIComponent(focus)}` : path;
}

export function failuresHref(params?: URLSearchParams): string {
  const query = params?.toString();
  return query ? `#/failures?${query}` : '#/failures';
}

export function failureHref(fingerprint: string): string {
  return `#/failures/${fingerprint}`;
}

export function listHref(params?: URLSearchParams): string {
  const query = params?.toString();
  return query ? `#/?${query}` : '#/';
}

/** Change the URL without adding a history entry (step-through, filter typing). */
export function replaceHash(hash: string): void {
  if (location.hash === hash) return;
  history.replaceState(history.state, '', hash);
}

/**
 * The current route and a counter of navigations. Pages the app rewrites with
 * replaceHash (no hashchange) keep their state; a followed link or an edited
 * URL bumps `navigation`, which pages use as a key to start afresh.
 */
export function useRoute(): Route & { navigation: number } {
  const [route, setRoute] = useState(() => ({ ...parseHash(location.hash), navigation: 0 }));
  useEffect(() => {
    const onChange = () => setRoute((prev) => ({ ...parseHash(location.hash), navigation: prev.navigation + 1 }));
    addEventListener('hashchange', onChange);
    return () => removeEventListener('hashchange', onChange);
  }, []);
  return route;
}
