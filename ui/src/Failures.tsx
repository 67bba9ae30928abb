/**
 * Failures: problem deliveries grouped by fingerprint (same status, service,
 * queue and error, variable parts masked), most recent or largest first, each
 * with a sparkline; new groups arrive live. A group's page lists its chains
 * (each opens on its first failing hop) and replays its dead letters.
 */
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { PROBLEM_STATUSES, type ChainSummary, type FailureGroup, type FailureGroupList, type LiveChainEvent, type ReplayConfig, type UiConfig } from '../../collector/api-types.ts';
import { api, type FailureQuery } from './api.ts';
import { formatAgo, formatClock, formatDateTime, plural, shortId } from './format.ts';
import { useLive } from './live.ts';
import { ReplayDialog, type ReplayTarget } from './ReplayDialog.tsx';
import { chainHref, failureHref, failuresHref, replaceHash } from './router.ts';
import { Sparkline } from './Sparkline.tsx';
import { ErrorBox, LiveIndicator, Loading, NotFound } from './states.tsx';
import { StatusBadge, statusLabel } from './status.tsx';

const RANGES: Array<{ value: string; label: string; ms?: number }> = [
  { value: '', label: 'any time' },
  { value: '15m', label: 'last 15 minutes', ms: 15 * 60_000 },
  { value: '1h', label: 'last hour', ms: 3_600_000 },
  { value: '24h', label: 'last 24 hours', ms: 86_400_000 },
  { value: '7d', label: 'last 7 days', ms: 7 * 86_400_000 },
];

interface Filters {
  sort: 'recent' | 'count';
  status: string;
  service: string;
  range: string;
}

function filtersFrom(params: URLSearchParams): Filters {
  return {
    sort: params.get('sort') === 'count' ? 'count' : 'recent',
    status: params.get('status') ?? '',
    service: params.get('service') ?? '',
    range: params.get('range') ?? '',
  };
}

function toParams(f: Filters): URLSearchParams {
  const p = new URLSearchParams();
  if (f.sort !== 'recent') p.set('sort', f.sort);
  if (f.status) p.set('status', f.status);
  if (f.service) p.set('service', f.service);
  if (f.range) p.set('range', f.range);
  return p;
}

function toQuery(f: Filters, now: number): FailureQuery {
  const range = RANGES.find((r) => r.value === f.range);
  return { sort: f.sort, status: f.status || undefined, service: f.service || undefined, from: range?.ms ? now - range.ms : undefined };
}

/** Chain events that can change failure groups: a chain with failures, or one replayed. */
const touchesFailures = (chain: ChainSummary) => (chain.failureTally?.length ?? 0) > 0 || chain.replayed === true;

/** Refetch after live events, at most this often. */
const REFETCH_MS = 700;

/** Call `refetch` once shortly after chain events that touch failures, however many arrive. */
function useFailureEvents(refetch: () => void): ReturnType<typeof useLive> {
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  const latest = useRef(refetch);
  latest.current = refetch;
  useEffect(() => () => clearTimeout(timer.current), []);
  const onLive = useCallback((event: LiveChainEvent) => {
    if (!touchesFailures(event.chain) || timer.current) return;
    timer.current = setTimeout(() => {
      timer.current = undefined;
      latest.current();
    }, REFETCH_MS);
  }, []);
  return useLive(onLive);
}

/** When a minute bucket was, for people: "this minute", else how long ago it ended. */
function minuteAgo(minute: number, now: number): string {
  const end = minute + 60_000;
  return end > now ? 'this minute' : formatAgo(end, now);
}

/** What a problem without an error (or a reply text) is, in words. */
const STATUS_STORY: Record<string, string> = {
  lost: 'sent and never received',
  stuck: 'received and never settled',
  discarded: 'rejected without requeue, and the queue has no dead-letter exchange',
  'redelivery-loop': 'redelivered again and again',
  'dead-lettered': 'rejected into the dead-letter queue',
  unroutable: 'returned by the broker as unroutable',
  failed: 'the handler failed',
};

/** What a group is, in one line: `UnknownDrinkError: "…" is not on the menu (order …)`. */
export function groupTitle(g: Pick<FailureGroup, 'errorType' | 'pattern' | 'status'>): string {
  if (g.errorType && g.pattern) return `${g.errorType}: ${g.pattern}`;
  if (g.status === 'unroutable' && g.pattern) return `${STATUS_STORY.unroutable}: ${g.pattern}`;
  return g.errorType || g.pattern || STATUS_STORY[g.status] || statusLabel(g.status);
}

function groupWhere(g: FailureGroup): string {
  const place = g.queue !== undefined ? `queue ${g.queue}` : g.exchange !== undefined ? `exchange ${g.exchange || '(default)'} / ${g.routingKey ?? ''}` : '';
  return place ? `${g.service} · ${place}` : g.service;
}

function ReplayOff({ config }: { config: ReplayConfig | undefined }) {
  if (!config || config.enabled) return null;
  return (
    <p class="notice replay-off" data-testid="replay-off" role="note">
      {config.reason}
    </p>
  );
}

type Load<T> = { state: 'loading' } | { state: 'error'; error: Error } | { state: 'ready'; value: T };

export function FailuresPage({ params, config }: { params: URLSearchParams; config: UiConfig | undefined }) {
  const [filters, setFilters] = useState<Filters>(() => filtersFrom(params));
  const [load, setLoad] = useState<Load<FailureGroupList>>({ state: 'loading' });
  const [fresh, setFresh] = useState<Set<string>>(new Set());
  const [reload, setReload] = useState(0);
  const [replaying, setReplaying] = useState<ReplayTarget | undefined>();
  const [now, setNow] = useState(() => Date.now());
  const known = useRef<Set<string> | undefined>(undefined);

  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 15_000);
    return () => clearInterval(t);
  }, []);

  useEffect(() => {
    replaceHash(failuresHref(toParams(filters)));
    const controller = new AbortController();
    api.failures(toQuery(filters, Date.now()), controller.signal).then(
      (list) => {
        // Groups that were not there before this (live) refetch flash as new.
        const before = known.current;
        const ids = new Set(list.items.map((g) => g.fingerprint));
        if (before !== undefined) setFresh(new Set([...ids].filter((id) => !before.has(id))));
        known.current = ids;
        setNow(Date.now());
        setLoad({ state: 'ready', value: list });
      },
      (error: Error) => {
        if (error.name !== 'AbortError') setLoad({ state: 'error', error });
      },
    );
    return () => controller.abort();
  }, [filters, reload]);

  const liveState = useFailureEvents(() => setReload((n) => n + 1));
  const set = (patch: Partial<Filters>) => {
    known.current = undefined;
    setFilters((f) => ({ ...f, ...patch }));
  };
  const list = load.state === 'ready' ? load.value : undefined;
  const services = [...new Set([...(list?.items.map((g) => g.service) ?? []), ...(filters.service ? [filters.service] : [])])].sort();

  return (
    <div class="page failures-page" data-testid="failures-page">
      <div class="filters">
        <h1 class="page-title">Failures</h1>
        <select value={filters.sort} onChange={(e) => set({ sort: (e.target as HTMLSelectElement).value as Filters['sort'] })} aria-label="Sort" data-testid="failures-sort">
          <option value="recent">most recent first</option>
          <option value="count">largest first</option>
        </select>
        <select value={filters.status} onChange={(e) => set({ status: (e.target as HTMLSelectElement).value })} aria-label="Status" data-testid="failures-status">
          <option value="">any problem</option>
          {PROBLEM_STATUSES.map((s) => (
            <option value={s} key={s}>
              {statusLabel(s)}
            </option>
          ))}
        </select>
        <select value={filters.service} onChange={(e) => set({ service: (e.target as HTMLSelectElement).value })} aria-label="Service" data-testid="failures-service">
          <option value="">any service</option>
          {services.map((s) => (
            <option value={s} key={s}>
              {s}
            </option>
          ))}
        </select>
        <select value={filters.range} onChange={(e) => set({ range: (e.target as HTMLSelectElement).value })} aria-label="Time range">
          {RANGES.map((r) => (
            <option value={r.value} key={r.value}>
              {r.label}
            </option>
          ))}
        </select>
        <LiveIndicator state={liveState} title="New failure groups and new occurrences appear here without reloading" />
      </div>
      <ReplayOff config={config?.replay} />
      {load.state === 'loading' && <Loading what="failure groups" />}
      {load.state === 'error' && <ErrorBox error={load.error} onRetry={() => setReload((n) => n + 1)} />}
      {list && list.items.length === 0 && (
        <div class="state state-empty" data-testid="failures-empty">
          <strong>{filters.status || filters.service || filters.range ? 'No failures match these filters.' : 'No failures. Every delivery so far went fine.'}</strong>
        </div>
      )}
      {list && list.items.length > 0 && (
        <table class="chains failures" data-testid="failures-table">
          <colgroup>
            <col class="f-status" />
            <col class="f-what" />
            <col class="f-count" />
            <col class="f-spark" />
            <col class="f-seen" />
            <col class="f-action" />
          </colgroup>
          <thead>
            <tr>
              <th>status</th>
              <th>failure</th>
              <th class="num">count</th>
              <th title={`occurrences from ${formatDateTime(list.sparklineFrom)}, ${plural(Math.round(list.binMs / 60_000), 'minute')} a bar`}>over time</th>
              <th>seen</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {list.items.map((g) => (
              <GroupRow
                key={g.fingerprint}
                group={g}
                now={now}
                fresh={fresh.has(g.fingerprint)}
                replay={config?.replay?.enabled && g.replayable ? () => setReplaying({ group: g.fingerprint, label: `${groupTitle(g)} · ${groupWhere(g)}` }) : undefined}
              />
            ))}
          </tbody>
        </table>
      )}
      {replaying && config?.replay && (
        <ReplayDialog target={replaying} config={config.replay} onClose={() => setReplaying(undefined)} onReplayed={() => setReload((n) => n + 1)} />
      )}
    </div>
  );
}

function GroupRow({ group: g, now, fresh, replay }: { group: FailureGroup; now: number; fresh: boolean; replay: (() => void) | undefined }) {
  const open = () => (location.hash = failureHref(g.fingerprint));
  return (
    <tr
      class={`chain-row group-row${fresh ? ' fresh' : ''}`}
      onClick={(e) => {
        if ((e.target as HTMLElement).closest('a, button')) return;
        open();
      }}
      data-group-row
      data-fingerprint={g.fingerprint}
    >
      <td>
        <div class="badges">
          <StatusBadge status={g.status} />
          {g.ongoing && (
            <span class="chip tone-bad ongoing" title="an occurrence in the last 5 minutes" data-testid="ongoing">
              still happening
            </span>
          )}
        </div>
      </td>
      <td class="what group-what">
        <a href={failureHref(g.fingerprint)} class="group-title" title={g.example ?? groupTitle(g)} data-testid="group-link">
          {groupTitle(g)}
        </a>
        <span class="muted small" title={[...g.services, ...g.queues].join(' · ')}>
          {groupWhere(g)}
          {g.queues.length > 1 && ` → ${g.queues.slice(1).join(', ')}`}
        </span>
      </td>
      <td class="num" data-testid="group-count">
        <strong>{g.count}</strong>
        {g.unresolved !== g.count && (
          <span class="muted small block" title="not replayed since">
            {g.unresolved} left
          </span>
        )}
      </td>
      <td>
        <Sparkline bins={g.sparkline} title={`${g.count} occurrences`} />
      </td>
      <td class="when" title={`first seen ${formatDateTime(g.firstSeen)}, last seen ${formatDateTime(g.lastSeen)} (to the minute)`}>
        <span class="small">last {minuteAgo(g.lastSeen, now)}</span>
        <span class="muted small">first {minuteAgo(g.firstSeen, now)}</span>
      </td>
      <td class="num">
        {replay && (
          <button type="button" class="btn btn-small" onClick={replay} data-testid="replay-group">
            ↺ replay…
          </button>
        )}
      </td>
    </tr>
  );
}

const CHAIN_PAGE = 50;

/** One group: what it is, its sparkline, its replay, its chains. */
export function FailureGroupPage({ fingerprint, config }: { fingerprint: string; config: UiConfig | undefined }) {
  const [group, setGroup] = useState<Load<FailureGroup>>({ state: 'loading' });
  const [chains, setChains] = useState<ChainSummary[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [reload, setReload] = useState(0);
  const [replaying, setReplaying] = useState(false);
  const [now, setNow] = useState(() => Date.now());

  useEffect(() => {
    const controller = new AbortController();
    Promise.all([api.failure(fingerprint, {}, controller.signal), api.failureChains(fingerprint, { limit: CHAIN_PAGE }, controller.signal)]).then(
      ([g, list]) => {
        setGroup({ state: 'ready', value: g });
        setChains(list.items);
        setCursor(list.nextCursor);
        setNow(Date.now());
      },
      (error: Error) => {
        if (error.name !== 'AbortError') setGroup((prev) => (prev.state === 'ready' ? prev : { state: 'error', error }));
      },
    );
    return () => controller.abort();
  }, [fingerprint, reload]);
  const liveState = useFailureEvents(() => setReload((n) => n + 1));

  const more = () => {
    if (!cursor) return;
    api.failureChains(fingerprint, { limit: CHAIN_PAGE, cursor }).then((list) => {
      setChains((c) => [...c, ...list.items.filter((x) => !c.some((y) => y.correlationId === x.correlationId))]);
      setCursor(list.nextCursor);
    });
  };

  if (group.state === 'loading') return <Loading what="failure group" />;
  if (group.state === 'error') {
    return (
      <div class="page">
        <a class="back" href="#/failures">
          ← all failures
        </a>
        {group.error.message.includes('no failure group') ? <NotFound what="failure group" id={fingerprint} /> : <ErrorBox error={group.error} onRetry={() => setReload((n) => n + 1)} />}
      </div>
    );
  }
  const g = group.value;
  return (
    <div class="page failure-group-page" data-testid="failure-group" data-fingerprint={fingerprint}>
      <a class="back" href="#/failures">
        ← all failures
      </a>
      <header class="group-head">
        <div class="chain-head-row">
          <StatusBadge status={g.status} />
          <h1 class="page-title group-title-big" title={g.example}>
            {groupTitle(g)}
          </h1>
          {g.ongoing && <span class="chip tone-bad">still happening</span>}
          <LiveIndicator state={liveState} title="New occurrences and replays appear here without reloading" />
        </div>
        <div class="chain-head-row facts">
          <span>
            <span class="muted">where</span> {groupWhere(g)}
          </span>
          {g.queues.length > 1 && (
            <span>
              <span class="muted">dead letters in</span> {g.queues.slice(1).join(', ')}
            </span>
          )}
          <span data-testid="group-counts">
            <strong>{g.count}</strong> {g.count === 1 ? 'occurrence' : 'occurrences'}
            {g.unresolved !== g.count && `, ${g.unresolved} not replayed`}
          </span>
          <span>
            <span class="muted">first</span> {formatDateTime(g.firstSeen).slice(0, -7)} · <span class="muted">last</span> {minuteAgo(g.lastSeen, now)}
          </span>
          <Sparkline bins={g.sparkline} width={200} height={26} title={`${g.count} occurrences over time`} />
          <span class="muted mono" title="fingerprint">
            {fingerprint}
          </span>
        </div>
        {g.example && (
          <p class="group-example">
            <span class="muted">e.g.</span> <code>{g.example}</code>
          </p>
        )}
        <div class="chain-head-row">
          {config?.replay?.enabled && g.status === 'dead-lettered' && (
            <button type="button" class="btn btn-primary" onClick={() => setReplaying(true)} disabled={!g.replayable} data-testid="replay-group" title={g.replayable ? 'take these messages from their dead-letter queue and publish them again' : 'every message of this group was replayed'}>
              ↺ replay {g.replayable ? `${plural(g.unresolved, 'dead-lettered message')}…` : '(all replayed)'}
            </button>
          )}
          {g.status === 'dead-lettered' && <ReplayOff config={config?.replay} />}
        </div>
      </header>
      <table class="chains group-chains" data-testid="group-chains">
        <colgroup>
          <col class="c-status" />
          <col class="c-when" />
          <col class="c-what" />
          <col class="c-svcs" />
        </colgroup>
        <thead>
          <tr>
            <th>status</th>
            <th>started</th>
            <th>chain</th>
            <th>first failure</th>
          </tr>
        </thead>
        <tbody>
          {chains.map((c) => (
            <tr key={c.correlationId} class="chain-row" data-chain-row data-correlation-id={c.correlationId} data-status={c.status} onClick={() => (location.hash = chainHref(c.correlationId))}>
              <td>
                <div class="badges">
                  <StatusBadge status={c.status} replayed={c.replayed} />
                </div>
              </td>
              <td class="when" title={new Date(c.startTs).toString()}>
                <span class="mono">{formatClock(c.startTs)}</span>
                <span class="muted small">{formatAgo(c.startTs, now)}</span>
              </td>
              <td class="what">
                {c.rootRoutingKey && <span class="root-key">{c.rootRoutingKey}</span>}
                <a href={chainHref(c.correlationId)} class="cid mono" title={`${c.correlationId}: opens on its first failing hop`} data-testid="chain-link">
                  {shortId(c.correlationId, 18)}
                </a>
              </td>
              <td>
                {c.failure && (
                  <span class={`row-failure${c.failure.replayed ? ' replayed' : ''}`} title={c.failure.reason}>
                    {c.failure.replayed && <span class="row-failure-replayed">replayed</span>}
                    <span class="row-failure-svc">{c.failure.service}</span>
                    {c.failure.error ?? c.failure.reason}
                  </span>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <div class="more">
        {cursor ? (
          <button type="button" class="btn" onClick={more}>
            load older chains
          </button>
        ) : (
          <span class="muted">
            {plural(chains.length, 'chain')} · that's all
          </span>
        )}
      </div>
      {replaying && config?.replay && (
        <ReplayDialog
          target={{ group: fingerprint, label: `${groupTitle(g)} · ${groupWhere(g)}` }}
          config={config.replay}
          onClose={() => setReplaying(false)}
          onReplayed={() => setReload((n) => n + 1)}
        />
      )}
    </div>
  );
}
