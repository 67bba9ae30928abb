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
  return (
    <div class="state state-error" data-testid="error" role="alert">
      <strong>Something went wrong.</strong>
      <p class="error-message">{error.message}</p>
      {status && <p class="muted">collector answered {status}</p>}
      {onRetry && (
        <button type="button" class="btn" onClick={onRetry}>
          try again
        </button>
      )}
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
