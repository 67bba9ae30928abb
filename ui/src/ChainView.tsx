/**
 * One chain: header (status, problems, first failure, exports), the timeline,
 * the causal tree and the selected hop's detail, with step-through.
 */
import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { ChainDetail, LiveChainEvent, UiConfig } from '../../collector/api-types.ts';
import { api, ApiError, type LiveState } from './api.ts';
import { useLive } from './live.ts';
import { CausalTree } from './CausalTree.tsx';
import { buildChainModel, focusIndex, type ChainModel } from './chain-model.ts';
import { formatDateTime, formatDuration, plural, shortId, times } from './format.ts';
import { CopyButton, HopDetail } from './HopDetail.tsx';
import { jaegerTraceUrl } from './jaeger.ts';
import { ReplayDialog } from './ReplayDialog.tsx';
import { chainHref, failureHref, replaceHash } from './router.ts';
import { StatusBadge } from './status.tsx';
import { describeSkew, skewRange, Timeline } from './Timeline.tsx';
import { layoutTimeline } from './timeline-layout.ts';
import { ErrorBox, LiveIndicator, Loading, NotFound } from './states.tsx';

type Load = { state: 'loading' } | { state: 'error'; error: Error } | { state: 'ready'; detail: ChainDetail; loadedAt: number };

interface Props {
  correlationId: string;
  seq: number | undefined;
  /** A search term to open on (a message, span or trace id), when the URL names no hop. */
  focus: string | undefined;
  /** Bumped by every followed link or edited URL (see useRoute). */
  navigation: number;
  config: UiConfig | undefined;
}

export function ChainView({ correlationId, seq, focus, navigation, config }: Props) {
  const [load, setLoad] = useState<Load>({ state: 'loading' });
  const [reloadToken, setReloadToken] = useState(0);

  useEffect(() => {
    const controller = new AbortController();
    api.chain(correlationId, controller.signal).then(
      (detail) => setLoad({ state: 'ready', detail, loadedAt: Date.now() }),
      (error: Error) => {
        if (error.name !== 'AbortError') setLoad((prev) => (prev.state === 'ready' ? prev : { state: 'error', error }));
      },
    );
    return () => controller.abort();
  }, [correlationId, reloadToken]);

  // A chain still in flight grows: refetch when the collector says it changed,
  // batching a burst of hops into one request.
  const refetchTimer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  const onLive = useCallback(
    (event: LiveChainEvent) => {
      if (event.chain.correlationId !== correlationId || refetchTimer.current) return;
      refetchTimer.current = setTimeout(() => {
        refetchTimer.current = undefined;
        setReloadToken((n) => n + 1);
      }, 400);
    },
    [correlationId],
  );
  useEffect(() => () => clearTimeout(refetchTimer.current), []);
  const liveState = useLive(onLive);

  if (load.state === 'loading') return <Loading what={`chain ${correlationId}`} />;
  if (load.state === 'error') {
    return (
      <div class="page">
        <BackLink />
        {load.error instanceof ApiError && load.error.status === 404 ? (
          <NotFound what="chain" id={correlationId} />
        ) : (
          <ErrorBox error={load.error} onRetry={() => setReloadToken((n) => n + 1)} />
        )}
      </div>
    );
  }
  return (
    <ChainLoaded
      detail={load.detail}
      loadedAt={load.loadedAt}
      seq={seq}
      focus={focus}
      navigation={navigation}
      config={config}
      liveState={liveState}
    />
  );
}

function BackLink() {
  return (
    <a class="back" href="#/">
      ← all chains
    </a>
  );
}

interface LoadedProps {
  detail: ChainDetail;
  loadedAt: number;
  seq: number | undefined;
  focus: string | undefined;
  navigation: number;
  config: UiConfig | undefined;
  liveState: LiveState;
}

/** Milliseconds since `since`, ticking once a second while `active`. */
function useSince(since: number, active: boolean): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!active) return;
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, [active]);
  return Math.max(0, now - since);
}

function ChainLoaded({ detail, loadedAt, seq, focus, navigation, config, liveState }: LoadedProps) {
  const model = useMemo(() => buildChainModel(detail), [detail]);
  const layout = useMemo(
    () =>
      layoutTimeline({
        hops: model.hops,
        serviceOrder: detail.services,
        indexById: model.indexById,
        open: detail.open,
        openUntilMs: model.openUntilMs,
        approxWaits: new Set(
          [...model.messages.values()].flatMap((m) => m.deliveries.filter((d) => d.queueWaitApprox).map((d) => d.hopIds?.[0] ?? -1)),
        ),
      }),
    [model, detail.services, detail.open],
  );
  const count = model.hops.length;
  const sinceLoadMs = useSince(loadedAt, (detail.open ?? []).length > 0);

  // Where to open: the hop the URL names, else what a search named, else the first failure (or first hop).
  const missingSeq = seq !== undefined && !model.indexBySeq.has(seq) ? seq : undefined;
  const focused = focus !== undefined && seq === undefined ? focusIndex(model, focus) : undefined;
  const initialIndex = seq !== undefined ? (model.indexBySeq.get(seq) ?? model.initialIndex) : (focused ?? model.initialIndex);
  // The selection is a hop id, so a refreshed chain (live update) keeps the hop the person was looking at.
  const [selectedId, setSelectedId] = useState<number | undefined>(() => model.hops[initialIndex]?.id);
  const selected = (selectedId !== undefined ? model.indexById.get(selectedId) : undefined) ?? initialIndex;
  const [centerToken, setCenterToken] = useState(0);
  // Keys can arrive faster than renders: steps count from the latest selection, not the last render's.
  const current = useRef(selected);
  current.current = selected;

  const select = useCallback(
    (index: number) => {
      if (!count) return;
      const clamped = Math.max(0, Math.min(count - 1, index));
      current.current = clamped;
      setSelectedId(model.hops[clamped].id);
      replaceHash(chainHref(detail.correlationId, model.hops[clamped].seq));
    },
    [model, count, detail.correlationId],
  );

  // The URL names the hop: opening on a first failure or a search hit, it says so. A hop number
  // the chain does not have stays in the URL (and the notice says so) until the person moves.
  useEffect(() => {
    if (count && selected < count && missingSeq === undefined) replaceHash(chainHref(detail.correlationId, model.hops[selected].seq));
    // Only on open; later moves go through select().
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [detail.correlationId]);

  // Back/forward or an edited URL inside the same chain.
  useEffect(() => {
    if (seq === undefined) return;
    const index = model.indexBySeq.get(seq);
    if (index !== undefined && index !== selected) {
      setSelectedId(model.hops[index].id);
      setCenterToken((n) => n + 1);
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [seq, navigation]);

  const step = useCallback((delta: number) => select(current.current + delta), [select]);

  const failureIndex = detail.firstFailure ? model.indexById.get(detail.firstFailure.hopId) : undefined;
  const goToFailure = useCallback(() => {
    if (failureIndex !== undefined) {
      select(failureIndex);
      setCenterToken((n) => n + 1);
    }
  }, [failureIndex, select]);

  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
      const target = event.target as HTMLElement | null;
      if (target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName))) return;
      let handled = true;
      switch (event.key) {
        case 'j':
        case 'ArrowDown':
        case 'ArrowRight':
          step(1);
          break;
        case 'k':
        case 'ArrowUp':
        case 'ArrowLeft':
          step(-1);
          break;
        case 'Home':
        case 'g':
          select(0);
          break;
        case 'End':
        case 'G':
          select(count - 1);
          break;
        case 'f':
          goToFailure();
          break;
        case 'Escape':
          location.hash = '#/';
          break;
        default:
          handled = false;
      }
      if (handled) event.preventDefault();
    };
    addEventListener('keydown', onKey);
    return () => removeEventListener('keydown', onKey);
  }, [select, step, count, goToFailure]);

  const hop = model.hops[selected];
  const message = hop ? model.messages.get(hop.messageId) : undefined;
  // Each hop's detail starts at its top (kind, summary, error), not where the last one was scrolled to.
  const detailScroller = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (detailScroller.current) detailScroller.current.scrollTop = 0;
  }, [hop?.id]);
  const onSelectMessage = useCallback(
    (messageId: string) => {
      const row = model.treeRows[model.treeIndex.get(messageId) ?? -1];
      const index = row?.firstSeq !== undefined ? model.indexBySeq.get(row.firstSeq) : undefined;
      if (index !== undefined) select(index);
    },
    [model, select],
  );
  const onSelectHop = useCallback(
    (hopId: number) => {
      const index = model.indexById.get(hopId);
      if (index !== undefined) {
        select(index);
        setCenterToken((n) => n + 1);
      }
    },
    [model, select],
  );

  return (
    <div class="chain-page" data-testid="chain-view" data-correlation-id={detail.correlationId}>
      <ChainHeader detail={detail} model={model} config={config} onFailure={goToFailure} onSelectHop={onSelectHop} sinceLoadMs={sinceLoadMs} />
      {missingSeq !== undefined && (
        <p class="notice" data-testid="missing-hop" role="status">
          This chain has no hop #{missingSeq} (it has #0–#{count - 1}); showing {detail.firstFailure ? 'its first failure' : 'its first hop'}, #{model.hops[selected]?.seq}.
        </p>
      )}
      {focus !== undefined && seq === undefined && focused === undefined && (
        <p class="notice" data-testid="missing-focus" role="status">
          No hop of this chain carries the id “{focus}”; showing {detail.firstFailure ? 'its first failure' : 'its first hop'}.
        </p>
      )}
      <div class="stepbar" role="toolbar" aria-label="Step through hops">
        <button type="button" class="btn" onClick={() => step(-1)} disabled={selected <= 0} data-testid="prev-hop" title="previous hop (k or ↑)">
          ◀ previous
        </button>
        <span class="step-pos" data-testid="step-position">
          hop <strong>#{hop?.seq ?? '–'}</strong> <span class="muted">({count ? selected + 1 : 0} of {count})</span>
        </span>
        <button type="button" class="btn" onClick={() => step(1)} disabled={selected >= count - 1} data-testid="next-hop" title="next hop (j or ↓)">
          next ▶
        </button>
        {failureIndex !== undefined && (
          <button type="button" class="btn btn-bad" onClick={goToFailure} data-testid="goto-failure" title="first failure (f)">
            ⚑ first failure
          </button>
        )}
        <LiveIndicator state={liveState} title="Hops that arrive for this chain are added without reloading" />
        <span class="keys muted" data-testid="keyboard-help" title="j/↓ next · k/↑ previous · g/G first/last · f first failure · Esc back to list">
          <kbd>j</kbd>/<kbd>↓</kbd> next · <kbd>k</kbd>/<kbd>↑</kbd> previous · <kbd>g</kbd>/<kbd>G</kbd> first/last · <kbd>f</kbd> first failure · <kbd>Esc</kbd> back to list
        </span>
        <span class="keys-short muted" title="j/↓ next · k/↑ previous · g/G first/last · f first failure · Esc back to list">
          keys: <kbd>j</kbd> <kbd>k</kbd> <kbd>g</kbd> <kbd>G</kbd> <kbd>f</kbd> <kbd>Esc</kbd>
        </span>
      </div>
      {count === 0 ? (
        <p class="empty">This chain has no hops.</p>
      ) : (
        <div class="chain-body">
          <Timeline model={model} layout={layout} selected={selected} onSelect={select} centerToken={centerToken} sinceLoadMs={sinceLoadMs} />
          <aside class="side">
            <div class="side-head">
              Causal tree <span class="muted">({plural(model.treeRows.length, 'message')})</span>
            </div>
            <CausalTree model={model} selectedMessageId={hop?.messageId} onSelectMessage={onSelectMessage} onSelectHop={onSelectHop} />
            <div class="side-head">Hop detail</div>
            <div class="detail-scroll" ref={detailScroller}>
              {hop && <HopDetail hop={hop} message={message} model={model} skew={model.skewByService.get(hop.service)} config={config} onSelectHop={onSelectHop} />}
            </div>
          </aside>
        </div>
      )}
    </div>
  );
}

interface HeaderProps {
  detail: ChainDetail;
  model: ChainModel;
  config: UiConfig | undefined;
  onFailure: () => void;
  onSelectHop: (hopId: number) => void;
  sinceLoadMs: number;
}

function ChainHeader({ detail, model, config, onFailure, onSelectHop, sinceLoadMs }: HeaderProps) {
  const failure = detail.firstFailure;
  const failureHop = failure ? model.hops[model.indexById.get(failure.hopId) ?? -1] : undefined;
  const skewed = (detail.skew ?? []).filter((s) => !s.reference && describeSkew(s).shifted);
  const open = (detail.open ?? []).length > 0;
  const services = (detail.services ?? []).join(', ');
  const duration = open
    ? `≥ ${formatDuration((model.openUntilMs ?? detail.durationMs) + sinceLoadMs)}, still open`
    : formatDuration(detail.durationMs);
  const hopAt = (hopId: number) => model.hops[model.indexById.get(hopId) ?? -1];
  // Dead letters not replayed yet, where the chain says which queue holds them.
  const replayable = (detail.failures ?? []).filter((f) => f.status === 'dead-lettered' && !f.replayed && f.deadLetterQueue !== undefined);
  const [replaying, setReplaying] = useState(false);
  return (
    <header class="chain-head">
      <div class="chain-head-row head-top">
        <BackLink />
        <StatusBadge status={detail.status} replayed={detail.replayed} />
        <h1 class="chain-id" title={`correlation id ${detail.correlationId}`}>
          {detail.correlationId}
        </h1>
        <CopyButton text={detail.correlationId} label="correlation id" />
        {(detail.problems ?? []).filter((p) => p !== detail.status).length > 0 && (
          <span class="problems" data-testid="problems" title="every problem in this chain">
            {detail.problems.filter((p) => p !== detail.status).map((p) => (
              <StatusBadge status={p} small key={p} />
            ))}
          </span>
        )}
        <span class="exports">
          <a class="btn btn-small" href={api.exportUrl(detail.correlationId, 'jaeger')} download={`${detail.correlationId}.jaeger.json`} title="download as Jaeger JSON">
            ⤓ Jaeger JSON
          </a>
          <a class="btn btn-small" href={api.exportUrl(detail.correlationId, 'otlp')} download={`${detail.correlationId}.otlp.json`} title="download as OTLP JSON">
            ⤓ OTLP JSON
          </a>
        </span>
      </div>
      <div class="chain-head-row facts">
        <span title={formatDateTime(detail.startTs)}>
          <span class="muted">started</span> {formatDateTime(detail.startTs)}
        </span>
        <span class={open ? 'still-open' : undefined} data-testid="chain-duration" title={open ? `the hops span ${formatDuration(detail.durationMs)}; something is still waiting` : undefined}>
          <span class="muted">took</span> {duration}
        </span>
        <span>
          {plural(detail.hopCount, 'hop')} · {plural(detail.messageCount, 'message')}
        </span>
        <span class="fact-services" title={services}>
          <span class="muted">services</span> {services}
        </span>
        {(detail.traceIds ?? []).map((traceId) => {
          const url = jaegerTraceUrl(config, traceId);
          return (
            <span key={traceId} class="trace">
              <span class="muted">trace</span> <code title={traceId}>{shortId(traceId, 8)}</code>
              <CopyButton text={traceId} label="trace id" />
              {url && (
                <a href={url} target="_blank" rel="noopener noreferrer" class="ext-link" data-testid="jaeger-link">
                  Jaeger ↗
                </a>
              )}
            </span>
          );
        })}
        {skewed.length > 0 && (
          <span class="skew-summary" data-testid="skew-summary" title="Timestamps were shifted for layout only; the detail panel shows raw and adjusted times">
            ⚠ clock skew, estimated:{' '}
            {skewed
              .map((s) => {
                const range = skewRange(s);
                return `${s.service} ${describeSkew(s).short.replace(/^skew /, '')}${range && s.basis === 'measured' ? ` (${range})` : s.basis === 'bounded' ? ' (bounded)' : ''}`;
              })
              .join(', ')}
          </span>
        )}
      </div>
      {failure && (
        <div class={`failure-line${failure.replayed ? ' replayed' : ''}`} data-testid="first-failure" data-replayed={failure.replayed ? 'true' : undefined} title={failure.reason}>
          <span class="failure-tag">{failure.replayed ? 'first failure, replayed since' : 'first failure'}</span>
          <button type="button" class="linklike" onClick={onFailure}>
            #{failureHop?.seq ?? '?'} {failure.kind} in {failureHop?.service ?? '?'}
          </button>
          <span class="failure-reason">{failure.reason}</span>
        </div>
      )}
      {(detail.replays ?? []).map((r) => {
        const at = hopAt(r.hopId);
        const outcome =
          r.outcome === 'replayed'
            ? `republished as ${shortId(r.replayMessageId ?? '', 14)}${r.replayStatus ? `, now ${r.replayStatus}` : ''}`
            : r.outcome === 'not-found'
              ? `not found in ${r.deadLetterQueue ?? 'its dead-letter queue'}`
              : `${r.outcome}: ${r.reason ?? 'left in the dead-letter queue'}`;
        return (
          <div class={`replay-line${r.outcome === 'replayed' ? '' : ' failed'}`} data-testid="replay" data-outcome={r.outcome} key={r.hopId}>
            <span class="replay-tag">replay</span>
            <button type="button" class="linklike" onClick={() => onSelectHop(r.hopId)}>
              #{at?.seq ?? '?'}
            </button>
            <span class="failure-reason" title={`${r.requestedBy ? `asked by ${r.requestedBy} ` : ''}at ${formatDateTime(r.ts)}: ${outcome}`}>
              {shortId(r.messageId, 14)} from {r.deadLetterQueue ?? '?'}: {outcome}
              {r.requestedBy && <span class="muted"> · asked by {r.requestedBy}</span>} <span class="muted">· {formatDateTime(r.ts)}</span>
            </span>
          </div>
        );
      })}
      {replayable.length > 0 && config?.replay && (
        <div class="chain-head-row">
          {config.replay.enabled ? (
            <button type="button" class="btn btn-small" onClick={() => setReplaying(true)} data-testid="replay-messages">
              ↺ replay {plural(replayable.length, 'dead-lettered message')}…
            </button>
          ) : (
            <span class="muted small" data-testid="replay-off">
              {config.replay.reason}
            </span>
          )}
          {replayable[0] && (
            <a class="small" href={failureHref(replayable[0].fingerprint)}>
              its failure group
            </a>
          )}
        </div>
      )}
      {replaying && config?.replay && (
        <ReplayDialog
          target={{ messageIds: replayable.map((f) => f.messageId), label: `chain ${detail.correlationId}` }}
          config={config.replay}
          onClose={() => setReplaying(false)}
        />
      )}
      {(detail.recoveries ?? []).map((r) => {
        const at = hopAt(r.hopId);
        const errors = r.errors.map((e) => `${e.text}${e.count > 1 ? ` (${times(e.count)})` : ''}`).join('; ');
        const what = errors
          ? `${r.service} failed ${times(r.errors.reduce((n, e) => n + e.count, 0))} with ${errors}`
          : `${r.service} requeued it ${times(r.requeues)}`;
        return (
          <div class="recovery-line" data-testid="recovery" key={`${r.messageId}-${r.service}-${r.queue}`} title={`${what} on queue ${r.queue}, then succeeded (attempt ${r.attempts})`}>
            <span class="recovery-tag">recovered</span>
            <button type="button" class="linklike" onClick={() => onSelectHop(r.hopId)}>
              #{at?.seq ?? '?'}
            </button>
            <span class="failure-reason">
              {what} on {r.queue}, then succeeded on attempt {r.attempts}
            </span>
          </div>
        );
      })}
    </header>
  );
}
