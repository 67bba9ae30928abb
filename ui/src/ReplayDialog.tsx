/**
 * Replay, asked for carefully: a dry run first says how many messages would
 * move (and from where to where), the person confirms, then each message's
 * outcome is listed. With an admin token on the collector, the dialog asks
 * for it (kept for this page's life only).
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import type { ReplayConfig, ReplayMessageResult, ReplayResult } from '../../collector/api-types.ts';
import { api, ApiError } from './api.ts';
import { exchangeLabel, plural } from './format.ts';
import { chainHref } from './router.ts';

/** The admin token typed in this page's life (never stored beyond it). */
let rememberedToken: string | undefined;

type Step =
  | { step: 'token'; error?: string }
  | { step: 'planning' }
  | { step: 'confirm'; plan: ReplayResult }
  | { step: 'running'; plan: ReplayResult }
  | { step: 'done'; result: ReplayResult }
  | { step: 'error'; error: Error };

const OUTCOME_LABEL: Record<ReplayMessageResult['outcome'], string> = {
  'would-replay': 'would be replayed',
  replayed: 'replayed',
  'not-found': 'not in its dead-letter queue',
  'already-replayed': 'already replayed',
  unroutable: 'unroutable: left in place',
  rejected: 'broker refused: left in place',
  'no-dead-letter-queue': 'dead-letter queue unknown',
  'not-dead-lettered': 'not dead-lettered',
  error: 'failed: left in place',
};

const OUTCOME_TONE: Record<ReplayMessageResult['outcome'], string> = {
  'would-replay': '',
  replayed: 'tone-good',
  'not-found': 'tone-warn',
  'already-replayed': '',
  unroutable: 'tone-bad',
  rejected: 'tone-bad',
  'no-dead-letter-queue': 'tone-warn',
  'not-dead-lettered': 'tone-warn',
  error: 'tone-bad',
};

export interface ReplayTarget {
  group?: string;
  messageIds?: string[];
  /** What the person is replaying, in words ("UnknownDrinkError in barista"). */
  label: string;
}

export function ReplayDialog({ target, config, onClose, onReplayed }: { target: ReplayTarget; config: ReplayConfig; onClose: () => void; onReplayed?: (result: ReplayResult) => void }) {
  const [state, setState] = useState<Step>(() => (config.adminToken && !rememberedToken ? { step: 'token' } : { step: 'planning' }));
  const [token, setToken] = useState(rememberedToken ?? '');
  const tokenBox = useRef<HTMLInputElement>(null);
  const body = target.group !== undefined ? { group: target.group } : { messageIds: target.messageIds };

  const plan = () => {
    setState({ step: 'planning' });
    api.replay({ ...body, dryRun: true, requestedBy: 'ui' }, config.adminToken ? rememberedToken : undefined).then(
      (result) => setState({ step: 'confirm', plan: result }),
      (error: Error) => {
        if (error instanceof ApiError && error.status === 401 && config.adminToken) {
          rememberedToken = undefined;
          setState({ step: 'token', error: error.message });
        } else setState({ step: 'error', error });
      },
    );
  };

  useEffect(() => {
    if (state.step === 'planning') plan();
    // Once, on open (later plans come from the token form).
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);
  useEffect(() => {
    if (state.step === 'token') tokenBox.current?.focus();
  }, [state.step]);
  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      if (event.key === 'Escape' && state.step !== 'running') onClose();
    };
    addEventListener('keydown', onKey);
    return () => removeEventListener('keydown', onKey);
  }, [state.step, onClose]);

  const run = (p: ReplayResult) => {
    setState({ step: 'running', plan: p });
    api.replay({ ...body, requestedBy: 'ui' }, config.adminToken ? rememberedToken : undefined).then(
      (result) => {
        setState({ step: 'done', result });
        onReplayed?.(result);
      },
      (error: Error) => setState({ step: 'error', error }),
    );
  };

  const moving = (r: ReplayResult) => r.messages.filter((m) => m.outcome === 'would-replay');
  return (
    <div class="modal-backdrop" onClick={(e) => e.target === e.currentTarget && state.step !== 'running' && onClose()}>
      <div class="modal" role="dialog" aria-modal="true" aria-labelledby="replay-title" data-testid="replay-dialog" data-step={state.step}>
        <h2 id="replay-title" class="modal-title">
          Replay {target.group !== undefined ? 'failure group' : plural(target.messageIds?.length ?? 0, 'message')}
        </h2>
        <p class="muted modal-sub" title={target.label}>
          {target.label}
        </p>

        {state.step === 'token' && (
          <form
            class="modal-form"
            onSubmit={(e) => {
              e.preventDefault();
              rememberedToken = token;
              plan();
            }}
          >
            <label>
              Replay moves messages: this collector asks for its admin token.
              <input ref={tokenBox} type="password" value={token} onInput={(e) => setToken((e.target as HTMLInputElement).value)} autocomplete="off" data-testid="replay-token" />
            </label>
            {state.error && <p class="error-message">{state.error}</p>}
            <div class="modal-actions">
              <button type="button" class="btn" onClick={onClose}>
                cancel
              </button>
              <button type="submit" class="btn btn-primary" disabled={!token} data-testid="replay-token-submit">
                continue
              </button>
            </div>
          </form>
        )}

        {state.step === 'planning' && (
          <p role="status">
            <span class="spinner" aria-hidden="true" /> Finding the messages (dry run)…
          </p>
        )}

        {(state.step === 'confirm' || state.step === 'running') && (
          <>
            <p class="replay-count" data-testid="replay-count">
              {moving(state.plan).length === 0 ? (
                <strong>Nothing to replay.</strong>
              ) : (
                <>
                  <strong>{plural(moving(state.plan).length, 'message')}</strong> will be taken from {describeQueues(moving(state.plan))} and published again to{' '}
                  {describeTargets(moving(state.plan))}, at most {config.ratePerSec} a second. Each keeps its body, properties and chain; the dead-lettered copy is removed only
                  after the broker confirms the new one.
                </>
              )}
              {state.plan.truncated && <span class="muted"> (more than that: run it again for the rest)</span>}
            </p>
            <Outcomes messages={state.plan.messages} />
            <div class="modal-actions">
              <button type="button" class="btn" onClick={onClose} disabled={state.step === 'running'}>
                cancel
              </button>
              <button
                type="button"
                class="btn btn-primary"
                onClick={() => run(state.plan)}
                disabled={state.step === 'running' || moving(state.plan).length === 0}
                data-testid="replay-confirm"
              >
                {state.step === 'running' ? 'replaying…' : `replay ${plural(moving(state.plan).length, 'message')}`}
              </button>
            </div>
          </>
        )}

        {state.step === 'done' && (
          <>
            <p data-testid="replay-summary" role="status">
              {Object.entries(state.result.counts)
                .map(([outcome, n]) => `${n} ${OUTCOME_LABEL[outcome as ReplayMessageResult['outcome']] ?? outcome}`)
                .join(' · ') || 'nothing was replayed'}
            </p>
            <Outcomes messages={state.result.messages} />
            <div class="modal-actions">
              <button type="button" class="btn btn-primary" onClick={onClose} data-testid="replay-close">
                close
              </button>
            </div>
          </>
        )}

        {state.step === 'error' && (
          <>
            <p class="error-message" role="alert" data-testid="replay-error">
              {state.error.message}
            </p>
            <div class="modal-actions">
              <button type="button" class="btn" onClick={onClose}>
                close
              </button>
            </div>
          </>
        )}
      </div>
    </div>
  );
}

function describeQueues(messages: readonly ReplayMessageResult[]): string {
  const queues = [...new Set(messages.map((m) => m.deadLetterQueue ?? '?'))];
  return queues.length === 1 ? queues[0] : `${queues.length} dead-letter queues`;
}

function describeTargets(messages: readonly ReplayMessageResult[]): string {
  const targets = [...new Set(messages.map((m) => `${exchangeLabel(m.exchange)} / ${m.routingKey ?? '?'}`))];
  return targets.length === 1 ? targets[0] : `${targets.length} destinations (each its own)`;
}

/** Per message: what happened (or would), with a link to its chain. */
function Outcomes({ messages }: { messages: readonly ReplayMessageResult[] }) {
  if (messages.length === 0) return null;
  return (
    <div class="replay-outcomes">
      <table data-testid="replay-outcomes">
        <tbody>
          {messages.map((m) => (
            <tr key={m.messageId} data-outcome={m.outcome}>
              <td class={`replay-outcome ${OUTCOME_TONE[m.outcome]}`}>{OUTCOME_LABEL[m.outcome] ?? m.outcome}</td>
              <td class="mono">
                {m.correlationId ? (
                  <a href={chainHref(m.correlationId, undefined, m.replayMessageId ?? m.messageId)} title={m.messageId}>
                    {m.messageId}
                  </a>
                ) : (
                  m.messageId
                )}
              </td>
              <td class="muted replay-detail" title={m.detail}>
                {m.detail}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
