/** Loading and error states shared by the pages. */
import { ApiError, type LiveState } from './api.ts';

export function Loading({ what }: { what: string }) {
  return (
    <div class="state state-loading" data-testid="loading" role="status">
      <span class="spinner" aria-hidden="true" /> Loading {what}…
    </div>
  );
}

export function ErrorBox({ error, onRetry }: { error: Error; onRetry?: () => void }) {
  const status = error instanceof ApiError && error.status ? `${error.status}${error.code ? ` ${error.code}` : ''}` : undefined;
  // Retrying cannot help a request the collector understood and refused (4xx); it can help the rest.
  const retryable = !(error instanceof ApiError) || error.status === 0 || error.status >= 500;
  return (
    <div class="state state-error" data-testid="error" role="alert">
      <strong>Something went wrong.</strong>
      <p class="error-message">{error.message}</p>
      {status && <p class="muted">collector answered {status}</p>}
      {onRetry && retryable && (
        <button type="button" class="btn" onClick={onRetry}>
          try again
        </button>
      )}
    </div>
  );
}

/** What the collector does not have: said plainly, with the way back. */
export function NotFound({ what, id }: { what: string; id: string }) {
  return (
    <div class="state state-empty" data-testid="not-found" role="alert">
      <strong>
        No {what} with id <code class="nf-id">{id}</code>.
      </strong>
      <p class="muted">It may have been removed by retention, or the link is mistyped.</p>
      <p>
        <a href="#/">Back to the chains</a> · <a href={`#/?q=${encodeURIComponent(id)}`}>search for “{id.length > 40 ? `${id.slice(0, 40)}…` : id}”</a>
      </p>
    </div>
  );
}

/** Whether live updates (`GET /api/live`) are flowing. */
export function LiveIndicator({ state, title }: { state: LiveState; title: string }) {
  return (
    <span class={`live live-${state}`} data-testid="live-state" data-state={state} title={title}>
      <span class="live-dot" aria-hidden="true" />
      {state === 'live' ? 'live' : state === 'connecting' ? 'connecting…' : 'reconnecting…'}
    </span>
  );
}
