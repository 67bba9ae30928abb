/** One-line descriptions of hops, as plain strings (rendered as text, never HTML). */
import type { ChainHop } from '../../collector/api-types.ts';
import { exchangeLabel, formatDuration } from './format.ts';

export type HopTone = 'normal' | 'bad' | 'warn' | 'good';

export interface HopSummary {
  /** `send`, `receive`, … */
  kind: string;
  text: string;
  tone: HopTone;
  /** Short markers shown as chips: `redelivered`, `dead-lettered ×2`, … */
  marks: Array<{ label: string; tone: HopTone }>;
}

function destination(hop: ChainHop): string {
  const exchange = exchangeLabel(hop.exchange);
  return hop.routingKey !== undefined && hop.routingKey !== '' ? `${exchange} / ${hop.routingKey}` : exchange;
}

/**
 * @param context.unsettled the hop's delivery was received and never settled:
 *   its handler's return is no success
 */
export function summarizeHop(hop: ChainHop, context: { unsettled?: boolean } = {}): HopSummary {
  const marks: HopSummary['marks'] = [];
  if (hop.redelivered) marks.push({ label: '↻ redelivered', tone: 'warn' });
  const deaths = hop.deathCount ?? hop.death?.reduce((sum, d) => sum + d.count, 0) ?? 0;
  if (deaths > 0) {
    const reason = hop.death?.[0]?.reason;
    marks.push({ label: `☠ dead-lettered ×${deaths}${reason ? ` (${reason})` : ''}`, tone: 'bad' });
  }
  const type = hop.messageType ? ` [${hop.messageType}]` : '';
  switch (hop.kind) {
    case 'send':
      return { kind: 'send', text: `→ ${destination(hop)}${type}`, tone: 'normal', marks };
    case 'confirm':
      return {
        kind: 'confirm',
        text: `broker ${hop.outcome ?? '?'}${hop.durationMs !== undefined ? ` after ${formatDuration(hop.durationMs)}` : ''}`,
        tone: hop.outcome === 'nack' ? 'bad' : 'normal',
        marks,
      };
    case 'return':
      return {
        kind: 'return',
        text: `returned by broker: ${hop.replyCode ?? ''} ${hop.replyText ?? ''} (${destination(hop)})`.replace(/\s+/g, ' '),
        tone: 'bad',
        marks,
      };
    case 'receive':
      return { kind: 'receive', text: `← ${hop.queue ?? '?'}${hop.routingKey ? ` (${hop.routingKey})` : ''}${type}`, tone: 'normal', marks };
    case 'process': {
      const took = hop.durationMs !== undefined ? ` in ${formatDuration(hop.durationMs)}` : '';
      if (hop.outcome === 'error') {
        const error = hop.error ? `${hop.error.type}: ${hop.error.message}` : 'handler failed';
        return { kind: 'process', text: `✕ ${error}${took}`, tone: 'bad', marks };
      }
      if (context.unsettled) return { kind: 'process', text: `handler returned${took}, message never settled`, tone: 'warn', marks };
      return { kind: 'process', text: `handler ${hop.outcome ?? 'done'}${took}`, tone: 'good', marks };
    }
    case 'settle': {
      const requeue = hop.outcome === 'ack' ? '' : hop.requeue ? ', requeue' : ', no requeue';
      return {
        kind: 'settle',
        text: `${hop.outcome ?? '?'}${requeue}${hop.multiple ? ' (multiple)' : ''}`,
        tone: hop.outcome === 'ack' ? 'good' : 'warn',
        marks,
      };
    }
    case 'replay': {
      const by = hop.requestedBy ? ` (asked by ${hop.requestedBy})` : '';
      const from = hop.queue ? ` from ${hop.queue}` : '';
      if (hop.outcome === 'ack') {
        const count = hop.headers?.['x-replay-count'];
        return {
          kind: 'replay',
          text: `↺ replayed${from} → ${destination(hop)} as a new message${count && count !== '1' ? ` (replay ${count})` : ''}${by}`,
          tone: 'good',
          marks,
        };
      }
      const why =
        hop.outcome === 'returned'
          ? `returned by broker: ${hop.replyCode ?? ''} ${hop.replyText ?? ''}`.trim()
          : hop.error?.code === 'HOPTRACE_ERR_REPLAY_NOT_FOUND'
            ? `not in ${hop.queue ?? 'the dead-letter queue'}`
            : hop.outcome === 'nack'
              ? 'the broker nacked the republish'
              : (hop.error?.message ?? 'failed');
      return { kind: 'replay', text: `↺ replay failed${from}: ${why}${by}`, tone: 'bad', marks };
    }
    default:
      return { kind: String((hop as { kind: unknown }).kind), text: '', tone: 'normal', marks };
  }
}

/** The hop as its log line carried it: the record without the collector's bookkeeping. */
export function hopLogLine(hop: ChainHop): string {
  const { id, receivedAt, seq, adjustedTs, ...record } = hop;
  void id;
  void receivedAt;
  void seq;
  void adjustedTs;
  return JSON.stringify(record, null, 2);
}
