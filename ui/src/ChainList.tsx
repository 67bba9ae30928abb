/**
 * The chains list: newest first, filters in the URL, live updates over SSE,
 * older pages with the collector's cursor.
 */
import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { PROBLEM_STATUSES, type ChainSummary, type LiveChainEvent } from '../../collector/api-types.ts';
import { api, type ChainQuery } from './api.ts';
import { formatAgo, formatClock, formatDuration, shortId } from './format.ts';
import { chainHref, listHref, replaceHash } from './router.ts';
import { ErrorBox, LiveIndicator, Loading } from './states.tsx';
import { FILTER_STATUSES, isProblem, StatusBadge, statusLabel } from './status.tsx';
import { useLive } from './live.ts';

const PAGE_SIZE = 50;

const RANGES: Array<{ value: string; label: string; ms?: number }> = [
  { value: '', label: 'any time' },
  { value: '15m', label: 'last 15 minutes', ms: 15 * 60_000 },
  { value: '1h', label: 'last hour', ms: 3_600_000 },
  { value: '6h', label: 'last 6 hours', ms: 6 * 3_600_000 },
  { value: '24h', label: 'last 24 hours', ms: 86_400_000 },
  { value: '7d', label: 'last 7 days', ms: 7 * 86_400_000 },
  { value: 'custom', label: 'between…' },
];

interface Filters {
  q: string;
  /** Comma-separated statuses, any of which matches (`redelivered` among them: any redelivery). */
  status: string;
  service: string;
  /** From the topology's nodes: chains that used this exchange ('' is the default exchange) / queue. */
  exchange: string | undefined;
  queue: string;
  range: string;
  /** datetime-local strings, only with range=custom. */
  from: string;
  to: string;
}

function filtersFrom(params: URLSearchParams): Filters {
  return {
    q: params.get('q') ?? '',
    status: params.get('status') ?? '',
    service: params.get('service') ?? '',
    exchange: params.has('exchange') ? (params.get('exchange') ?? '') : undefined,
    queue: params.get('queue') ?? '',
    range: params.get('range') ?? '',
    from: params.get('from') ?? '',
    to: params.get('to') ?? '',
  };
}

const EMPTY_FILTERS: Filters = { q: '', status: '', service: '', exchange: undefined, queue: '', range: '', from: '', to: '' };

const statusList = (filters: Filters): string[] => filters.status.split(',').filter(Boolean);

/** True when the selection is exactly every problem status. */
const isAnyProblem = (selected: readonly string[]): boolean =>
  selected.length === PROBLEM_STATUSES.length && PROBLEM_STATUSES.every((s) => selected.includes(s));

function filtersToParams(filters: Filters): URLSearchParams {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(filters)) {
    // `exchange` '' is the default exchange, a filter; undefined is none.
    if (key === 'exchange' ? value === undefined : !value) continue;
    if ((key === 'from' || key === 'to') && filters.range !== 'custom') continue;
    params.set(key, value);
  }
  return params;
}

function timeWindow(filters: Filters, now: number): { from?: number; to?: number } {
  if (filters.range === 'custom') {
    const from = filters.from ? new Date(filters.from).getTime() : NaN;
    const to = filters.to ? new Date(filters.to).getTime() : NaN;
    return { from: Number.isFinite(from) ? from : undefined, to: Number.isFinite(to) ? to : undefined };
  }
  const range = RANGES.find((r) => r.value === filters.range);
  return range?.ms ? { from: now - range.ms } : {};
}

/** A W3C traceparent names a span of a trace: the collector is searched for its trace id, the chain opens on the span. */
const TRACEPARENT = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/i;

function toQuery(filters: Filters, now: number): ChainQuery {
  const q = filters.q.trim();
  return {
    q: (TRACEPARENT.exec(q)?.[1] ?? q) || undefined,
    // `status=redelivered` is the collector's filter for chains with any redelivery.
    status: filters.status || undefined,
    service: filters.service || undefined,
    exchange: filters.exchange,
    queue: filters.queue || undefined,
    ...timeWindow(filters, now),
    limit: PAGE_SIZE,
  };
}

/** Would the collector have returned this chain for these filters? (For live events.) */
function matches(chain: ChainSummary, filters: Filters, now: number): boolean {
  const statuses = statusList(filters);
  if (statuses.length > 0) {
    const ok = statuses.some((status) =>
      status === 'redelivered'
        ? chain.redelivered
        : status === 'replayed'
          ? chain.replayed === true
          : chain.status === status || chain.problems.includes(status as ChainSummary['status']),
    );
    if (!ok) return false;
  }
  if (filters.service && !chain.services.includes(filters.service)) return false;
  // A live summary does not list exchanges and queues; such a filtered list picks new chains up on its next query.
  if (filters.exchange !== undefined || filters.queue) return false;
  const term = filters.q.trim();
  const q = TRACEPARENT.exec(term)?.[1] ?? term;
  // A live summary has no message ids; a search by message id finds its chain on the next query.
  if (q && chain.correlationId !== q && !chain.traceIds.includes(q) && !chain.correlationId.includes(q)) return false;
  const { from, to } = timeWindow(filters, now);
  if (from !== undefined && chain.startTs < from) return false;
  if (to !== undefined && chain.startTs > to) return false;
  return true;
}

type Load = { state: 'loading' } | { state: 'error'; error: Error } | { state: 'ready' };

export function ChainList({ params }: { params: URLSearchParams }) {
  const [filters, setFilters] = useState<Filters>(() => filtersFrom(params));
  const [search, setSearch] = useState(filters.q);
  const [items, setItems] = useState<ChainSummary[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [load, setLoad] = useState<Load>({ state: 'loading' });
  const [loadingMore, setLoadingMore] = useState(false);
  const [moreError, setMoreError] = useState<Error | undefined>();
  const [fresh, setFresh] = useState<Map<string, number>>(new Map());
  const [services, setServices] = useState<string[]>([]);
  const [now, setNow] = useState(() => Date.now());
  // The selected row is a chain, not a position: rows arriving live above it must not move the selection.
  const [activeId, setActiveId] = useState<string | undefined>(undefined);
  // Keys can arrive faster than renders: a move starts from the latest selection, not the last render's.
  const activeRef = useRef(activeId);
  activeRef.current = activeId;
  const choose = (id: string | undefined) => {
    activeRef.current = id;
    setActiveId(id);
  };
  const [reload, setReload] = useState(0);
  const searchBox = useRef<HTMLInputElement>(null);
  const filtersRef = useRef(filters);
  filtersRef.current = filters;
  const cursorRef = useRef(cursor);
  cursorRef.current = cursor;

  // Relative times ("3 m ago") stay true.
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 15_000);
    return () => clearInterval(timer);
  }, []);

  // The service filter offers every service the collector has seen.
  useEffect(() => {
    api.topology({ from: 0 }).then(
      (topology) => setServices(topology.nodes.filter((n) => n.kind === 'service').map((n) => n.label)),
      () => undefined,
    );
  }, []);

  useEffect(() => {
    replaceHash(listHref(filtersToParams(filters)));
    const controller = new AbortController();
    setLoad({ state: 'loading' });
    choose(undefined);
    api.chains(toQuery(filters, Date.now()), controller.signal).then(
      (list) => {
        setItems(list.items);
        setCursor(list.nextCursor);
        setMoreError(undefined);
        setLoad({ state: 'ready' });
      },
      (error: Error) => {
        if (error.name !== 'AbortError') setLoad({ state: 'error', error });
      },
    );
    return () => controller.abort();
  }, [filters, reload]);

  // Typing searches after a short pause; Enter searches at once.
  useEffect(() => {
    if (search === filters.q) return;
    const timer = setTimeout(() => setFilters((f) => ({ ...f, q: search })), 300);
    return () => clearTimeout(timer);
  }, [search, filters.q]);

  const onLive = useCallback((event: LiveChainEvent) => {
    const chain = event.chain;
    const stamp = Date.now();
    setItems((current) => {
      const at = current.findIndex((c) => c.correlationId === chain.correlationId);
      if (at !== -1) {
        const next = current.slice();
        next[at] = chain;
        return next;
      }
      if (!matches(chain, filtersRef.current, stamp)) return current;
      // Newest first by start time; an older chain beyond the loaded page arrives with "load more".
      const last = current.at(-1);
      if (last && cursorRef.current !== null && chain.startTs < last.startTs) return current;
      const next = current.slice();
      let insertAt = next.findIndex((c) => c.startTs < chain.startTs);
      if (insertAt === -1) insertAt = next.length;
      next.splice(insertAt, 0, chain);
      return next;
    });
    setFresh((current) => {
      // Only recent updates flash; older marks are dropped so the map stays small.
      const next = new Map([...current].filter(([, at]) => stamp - at < 10_000));
      next.set(chain.correlationId, stamp);
      return next;
    });
    setServices((current) => {
      const missing = chain.services.filter((s) => !current.includes(s));
      return missing.length ? [...current, ...missing] : current;
    });
  }, []);
  const liveState = useLive(onLive);

  const loadMore = () => {
    if (!cursor || loadingMore) return;
    setLoadingMore(true);
    api.chains({ ...toQuery(filters, Date.now()), cursor }).then(
      (list) => {
        setItems((current) => {
          const seen = new Set(current.map((c) => c.correlationId));
          return [...current, ...list.items.filter((c) => !seen.has(c.correlationId))];
        });
        setCursor(list.nextCursor);
        setMoreError(undefined);
        setLoadingMore(false);
      },
      (error: Error) => {
        setMoreError(error);
        setLoadingMore(false);
      },
    );
  };

  // `/` focuses the search; j/k move through the rows; Enter opens one.
  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      if (event.ctrlKey || event.metaKey || event.altKey) return;
      const target = event.target as HTMLElement | null;
      if (target && /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName)) {
        if (event.key === 'Escape') target.blur();
        return;
      }
      if (event.key === '/') {
        event.preventDefault();
        searchBox.current?.focus();
      } else if (event.key === 'j' || event.key === 'ArrowDown' || event.key === 'k' || event.key === 'ArrowUp') {
        event.preventDefault();
        if (!items.length) return;
        const current = activeRef.current;
        const at = current === undefined ? -1 : items.findIndex((c) => c.correlationId === current);
        const down = event.key === 'j' || event.key === 'ArrowDown';
        const next = at === -1 ? (down ? 0 : items.length - 1) : Math.max(0, Math.min(items.length - 1, at + (down ? 1 : -1)));
        choose(items[next].correlationId);
      } else if (event.key === 'Enter' && activeRef.current !== undefined) {
        const chain = items.find((c) => c.correlationId === activeRef.current);
        if (chain) location.hash = rowHref(chain, filtersRef.current);
      }
    };
    addEventListener('keydown', onKey);
    return () => removeEventListener('keydown', onKey);
  }, [items]);

  useEffect(() => {
    if (activeId !== undefined) document.querySelector(`[data-chain-row][data-correlation-id="${CSS.escape(activeId)}"]`)?.scrollIntoView({ block: 'nearest' });
  }, [activeId]);

  const serviceOptions = useMemo(() => {
    const all = new Set(services);
    for (const item of items) for (const s of item.services) all.add(s);
    if (filters.service) all.add(filters.service);
    return [...all].sort();
  }, [services, items, filters.service]);

  const filtered = Boolean(filters.q || filters.status || filters.service || filters.exchange !== undefined || filters.queue || filters.range);
  const set = (patch: Partial<Filters>) => setFilters((f) => ({ ...f, ...patch }));

  return (
    <div class="page list-page" data-testid="chain-list">
      <form
        class="filters"
        role="search"
        onSubmit={(event) => {
          event.preventDefault();
          set({ q: search });
        }}
      >
        <input
          ref={searchBox}
          type="search"
          class="search"
          placeholder="Search by correlation, message or trace id, or a traceparent   ( / )"
          value={search}
          onInput={(event) => setSearch((event.target as HTMLInputElement).value)}
          aria-label="Search by correlation id, message id or trace id"
          data-testid="search"
          spellcheck={false}
          autocomplete="off"
        />
        <StatusFilter selected={statusList(filters)} onChange={(statuses) => set({ status: statuses.join(',') })} />
        <select value={filters.service} onChange={(e) => set({ service: (e.target as HTMLSelectElement).value })} aria-label="Service" data-testid="filter-service">
          <option value="">any service</option>
          {serviceOptions.map((service) => (
            <option value={service} key={service}>
              {service}
            </option>
          ))}
        </select>
        <select value={filters.range} onChange={(e) => set({ range: (e.target as HTMLSelectElement).value })} aria-label="Time range" data-testid="filter-range">
          {RANGES.map((range) => (
            <option value={range.value} key={range.value}>
              {range.label}
            </option>
          ))}
        </select>
        {filters.exchange !== undefined && (
          <span class="filter-chip" data-testid="filter-exchange" title={`chains that used exchange ${filters.exchange || '(default)'}`}>
            exchange <strong>{filters.exchange || '(default)'}</strong>
            <button type="button" class="linklike" aria-label="remove the exchange filter" onClick={() => set({ exchange: undefined })}>
              ✕
            </button>
          </span>
        )}
        {filters.queue && (
          <span class="filter-chip" data-testid="filter-queue" title={`chains that used queue ${filters.queue}`}>
            queue <strong>{filters.queue}</strong>
            <button type="button" class="linklike" aria-label="remove the queue filter" onClick={() => set({ queue: '' })}>
              ✕
            </button>
          </span>
        )}
        {filters.range === 'custom' && (
          <span class="custom-range">
            <input type="datetime-local" value={filters.from} onChange={(e) => set({ from: (e.target as HTMLInputElement).value })} aria-label="From" />
            <span class="muted">to</span>
            <input type="datetime-local" value={filters.to} onChange={(e) => set({ to: (e.target as HTMLInputElement).value })} aria-label="To" />
          </span>
        )}
        {filtered && (
          <button
            type="button"
            class="btn btn-small"
            onClick={() => {
              setSearch('');
              setFilters(EMPTY_FILTERS);
            }}
          >
            clear filters
          </button>
        )}
        <LiveIndicator state={liveState} title="New and changed chains appear here without reloading" />
      </form>

      {load.state === 'loading' && items.length === 0 && <Loading what="chains" />}
      {load.state === 'error' && <ErrorBox error={load.error} onRetry={() => setReload((n) => n + 1)} />}
      {load.state !== 'error' && !(load.state === 'loading' && items.length === 0) && items.length === 0 && (
        <EmptyList filtered={filtered} />
      )}
      {load.state !== 'error' && items.length > 0 && (
        <table class={`chains${load.state === 'loading' ? ' stale' : ''}`} data-testid="chains-table">
          <colgroup>
            <col class="c-status" />
            <col class="c-when" />
            <col class="c-what" />
            <col class="c-svcs" />
            <col class="c-hops" />
            <col class="c-duration" />
          </colgroup>
          <thead>
            <tr>
              <th>status</th>
              <th>started</th>
              <th>chain</th>
              <th>services</th>
              <th class="num">hops</th>
              <th class="num">duration</th>
            </tr>
          </thead>
          <tbody>
            {items.map((chain, index) => (
              <ChainRow
                key={chain.correlationId}
                chain={chain}
                index={index}
                now={now}
                href={rowHref(chain, filters)}
                active={chain.correlationId === activeId}
                freshAt={fresh.get(chain.correlationId)}
              />
            ))}
          </tbody>
        </table>
      )}
      {load.state === 'ready' && items.length > 0 && (
        <div class="more">
          {cursor ? (
            <button type="button" class="btn" onClick={loadMore} disabled={loadingMore} data-testid="load-more">
              {loadingMore ? 'loading…' : 'load older chains'}
            </button>
          ) : (
            <span class="muted">{items.length} chain{items.length === 1 ? '' : 's'} · that's all</span>
          )}
          {moreError && <p class="error-message">{moreError.message}</p>}
        </div>
      )}
      <p class="keys muted">
        <kbd>/</kbd> search · <kbd>j</kbd>/<kbd>k</kbd> move · <kbd>Enter</kbd> open
      </p>
    </div>
  );
}

function EmptyList({ filtered }: { filtered: boolean }) {
  if (filtered) {
    return (
      <div class="state state-empty" data-testid="empty">
        <strong>No chains match these filters.</strong>
      </div>
    );
  }
  const ingest = new URL('v1/hops', document.baseURI).href;
  const origin = new URL('.', document.baseURI).href.replace(/\/$/, '');
  return (
    <div class="state state-empty" data-testid="empty">
      <strong>No chains yet — point your services' transport at this collector.</strong>
      <p>
        Hop records go to <code>{ingest}</code>. In each service:
      </p>
      <pre class="snippet">{`HOPTRACE_URL=${origin} node your-service.js`}</pre>
      <p class="muted">Chains show up here as soon as the first hop arrives.</p>
    </div>
  );
}

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A row's link: a search hit opens the chain on the hop that carries the searched id. */
function rowHref(chain: ChainSummary, filters: Filters): string {
  const q = filters.q.trim();
  return chainHref(chain.correlationId, undefined, q && q !== chain.correlationId ? q : undefined);
}

/** Statuses to filter by, several at once, with "any problem" for every problem status. */
function StatusFilter({ selected, onChange }: { selected: string[]; onChange: (statuses: string[]) => void }) {
  const summary =
    selected.length === 0 ? 'any status' : isAnyProblem(selected) ? 'any problem' : selected.length <= 2 ? selected.map(statusLabel).join(', ') : `${selected.length} statuses`;
  const toggle = (status: string) => onChange(selected.includes(status) ? selected.filter((s) => s !== status) : [...selected, status]);
  const ref = useRef<HTMLDetailsElement>(null);
  // A click elsewhere closes it, as a select would.
  useEffect(() => {
    const close = (event: MouseEvent) => {
      if (ref.current?.open && !ref.current.contains(event.target as Node)) ref.current.open = false;
    };
    addEventListener('click', close);
    return () => removeEventListener('click', close);
  }, []);
  return (
    <details class="multi" ref={ref} data-testid="filter-status">
      <summary aria-label="Status filter" data-testid="filter-status-summary">
        {summary}
      </summary>
      <div class="multi-menu" role="group" aria-label="Statuses">
        <label class="multi-any">
          <input type="checkbox" checked={isAnyProblem(selected)} onChange={() => onChange(isAnyProblem(selected) ? [] : [...PROBLEM_STATUSES])} data-status-option="problems" />
          any problem
        </label>
        {FILTER_STATUSES.map((status) => (
          <label key={status}>
            <input type="checkbox" checked={selected.includes(status)} onChange={() => toggle(status)} data-status-option={status} />
            <StatusBadge status={status} small />
          </label>
        ))}
        <button type="button" class="btn btn-small" onClick={() => onChange([])} disabled={selected.length === 0}>
          any status
        </button>
      </div>
    </details>
  );
}

function ChainRow({
  chain,
  index,
  now,
  href,
  active,
  freshAt,
}: {
  chain: ChainSummary;
  index: number;
  now: number;
  href: string;
  active: boolean;
  freshAt: number | undefined;
}) {
  const label = chain.rootRoutingKey ?? chain.rootMessageType;
  const extra = chain.problems.filter((p) => p !== chain.status && p !== 'in-flight');
  // A replayed chain keeps its old failure in view (the chain's status follows the replay).
  const failure = isProblem(chain.status) || chain.failure?.replayed ? chain.failure : undefined;
  const duration = chain.open ? `≥ ${formatDuration(Math.max(chain.durationMs, now - chain.startTs))}` : formatDuration(chain.durationMs);
  const open = () => (location.hash = href);
  // A reason that starts with the service's name does not need it twice.
  const failureText = failure ? (failure.error ?? failure.reason.replace(new RegExp(`^${escapeRegExp(failure.service)} `), '')) : '';
  return (
    <>
      <tr
        class={`chain-row${active ? ' active' : ''}${freshAt ? ' fresh' : ''}${failure ? ' has-failure' : ''}`}
        // Re-keying the animation restarts the flash for every update.
        key={freshAt}
        onClick={(event) => {
          if ((event.target as HTMLElement).closest('a')) return;
          open();
        }}
        data-chain-row
        data-index={index}
        data-correlation-id={chain.correlationId}
        data-status={chain.status}
        aria-selected={active}
      >
        <td rowSpan={failure ? 2 : 1}>
          <div class="badges">
            <StatusBadge status={chain.status} replayed={chain.replayed} />
            {extra.map((p) => (
              <StatusBadge status={p} small key={p} />
            ))}
            {chain.redelivered && <StatusBadge status="redelivered" small />}
            {chain.replayed && chain.status !== 'ok' && <StatusBadge status="replayed" small />}
          </div>
        </td>
        <td class="when" title={new Date(chain.startTs).toString()}>
          <span class="mono">{formatClock(chain.startTs)}</span>
          <span class="muted small">{formatAgo(chain.startTs, now)}</span>
        </td>
        <td class="what">
          {label && (
            <span class="root-key" title={chain.rootMessageType ? `${label} · type ${chain.rootMessageType}` : label}>
              {label}
            </span>
          )}
          <a href={href} class="cid mono" title={chain.correlationId} data-testid="chain-link">
            {shortId(chain.correlationId, 18)}
          </a>
        </td>
        <td class="svcs">
          {chain.services.map((s) => (
            <span class="svc-chip" key={s} title={s}>
              {s}
            </span>
          ))}
        </td>
        <td class="num">{chain.hopCount}</td>
        <td class={`num${chain.open ? ' still-open' : ''}`} data-testid="row-duration" title={chain.open ? 'still open: something in this chain is still waiting' : undefined}>
          {duration}
          {chain.open && <span class="muted small open-note">still open</span>}
        </td>
      </tr>
      {failure && (
        <tr class={`failure-row${active ? ' active' : ''}`} onClick={open} data-failure-for={chain.correlationId}>
          <td colSpan={5}>
            <span class={`row-failure${failure.replayed ? ' replayed' : ''}`} data-testid="row-failure" title={`${failure.replayed ? 'replayed since: ' : ''}${failure.service}: ${failure.error ?? failure.reason}`}>
              {failure.replayed && <span class="row-failure-replayed">replayed</span>}
              <span class="row-failure-svc">{failure.service}</span>
              {failureText}
            </span>
          </td>
        </tr>
      )}
    </>
  );
}
