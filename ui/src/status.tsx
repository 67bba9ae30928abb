/** Status badges: one colour per status, the word always written out (never colour alone). */
import { PROBLEM_STATUSES, STATUS_SEVERITY, type MessageStatus } from '../../collector/api-types.ts';

export type BadgeStatus = MessageStatus | 'redelivered' | 'replayed';

/** Every status the filters offer, worst first: the collector's severity order, the `redelivered` and `replayed` flags before the healthy ones. */
export const FILTER_STATUSES: readonly BadgeStatus[] = [
  ...STATUS_SEVERITY.filter((status) => status !== 'in-flight' && status !== 'ok'),
  'redelivered',
  'replayed',
  'in-flight',
  'ok',
];

const LABELS: Record<BadgeStatus, string> = {
  discarded: 'discarded',
  'dead-lettered': 'dead-lettered',
  failed: 'failed',
  'redelivery-loop': 'redelivery loop',
  unroutable: 'unroutable',
  lost: 'lost',
  stuck: 'stuck',
  redelivered: 'redelivered',
  replayed: 'replayed',
  'in-flight': 'in flight',
  ok: 'ok',
};

const ICONS: Record<BadgeStatus, string> = {
  discarded: '∅',
  'dead-lettered': '☠',
  failed: '✕',
  'redelivery-loop': '⟳',
  unroutable: '⊘',
  lost: '?',
  stuck: '‖', // U+2016: in every common font (U+23F8 ⏸ is missing from DejaVu, the Linux default)
  redelivered: '↻',
  replayed: '↺',
  'in-flight': '…',
  ok: '✓',
};

/** A status that is a problem (not `ok`, `in-flight` or the `redelivered` flag). */
export function isProblem(status: string): boolean {
  return (PROBLEM_STATUSES as readonly string[]).includes(status);
}

export function statusLabel(status: string): string {
  return LABELS[status as BadgeStatus] ?? status;
}

/** CSS class for a status; unknown statuses (a newer collector) get a neutral one. */
export function statusClass(status: string): string {
  return status in LABELS ? `st-${status}` : 'st-unknown';
}

/**
 * A status badge. `replayed` on an `ok` status reads "ok (replayed)": the chain
 * is fine now because a dead-lettered message was replayed.
 */
export function StatusBadge({ status, small, replayed }: { status: string; small?: boolean; replayed?: boolean }) {
  const asReplayed = replayed === true && status === 'ok';
  return (
    <span class={`badge ${statusClass(status)}${small ? ' badge-sm' : ''}${asReplayed ? ' badge-replayed' : ''}`} data-status={status} data-replayed={asReplayed ? 'true' : undefined}>
      <span class="badge-icon" aria-hidden="true">
        {asReplayed ? ICONS.replayed : (ICONS[status as BadgeStatus] ?? '•')}
      </span>
      {asReplayed ? 'ok (replayed)' : statusLabel(status)}
    </span>
  );
}
