/**
 * The causal tree of a chain's messages: parent → the messages its handler
 * published. Flattened and virtualized like the timeline (a deep chain is a
 * long list, not a wide one: indentation stops growing after a few levels).
 */
import { useEffect, useMemo, useRef } from 'preact/hooks';
import type { ChainMessage } from '../../collector/api-types.ts';
import type { ChainModel } from './chain-model.ts';
import { exchangeLabel, formatDuration, shortId } from './format.ts';
import { deliveryFigures } from './HopDetail.tsx';
import { StatusBadge } from './status.tsx';
import { scrollIntoRange, useScrollWindow } from './use-scroll-window.ts';

/** A message row: its label line, then one line for a single delivery or one per delivery. */
const LINE1 = 26;
const LINE = 18;
const PAD = 6;
/** Deliveries listed per message before "and N more". */
const MAX_DELIVERY_LINES = 4;
const INDENT = 14;
const MAX_INDENT_LEVELS = 10;
const OVERSCAN = 300;

function deliveryLines(message: ChainMessage | undefined): number {
  const n = message?.deliveries.length ?? 0;
  if (n <= 1) return 1;
  return Math.min(n, MAX_DELIVERY_LINES) + (n > MAX_DELIVERY_LINES ? 1 : 0);
}

interface Props {
  model: ChainModel;
  selectedMessageId: string | undefined;
  onSelectMessage: (messageId: string) => void;
  onSelectHop: (hopId: number) => void;
}

export function CausalTree({ model, selectedMessageId, onSelectMessage, onSelectHop }: Props) {
  const scroller = useRef<HTMLDivElement>(null);
  const { scrollTop, clientHeight } = useScrollWindow(scroller);
  const rows = model.treeRows;
  // Rows differ in height (one line per delivery): tops as prefix sums, found by binary search.
  const tops = useMemo(() => {
    const out = new Float64Array(rows.length + 1);
    rows.forEach((row, i) => (out[i + 1] = out[i] + PAD * 2 + LINE1 + LINE * deliveryLines(model.messages.get(row.messageId))));
    return out;
  }, [rows, model]);
  const rowAt = (y: number) => {
    let lo = 0;
    let hi = rows.length;
    while (lo < hi) {
      const m = (lo + hi) >> 1;
      if (tops[m + 1] <= y) lo = m + 1;
      else hi = m;
    }
    return lo;
  };

  const selectedRow = selectedMessageId === undefined ? -1 : (model.treeIndex.get(selectedMessageId) ?? -1);
  useEffect(() => {
    if (selectedRow >= 0 && scroller.current) scrollIntoRange(scroller.current, tops[selectedRow], tops[selectedRow + 1], 0);
  }, [selectedRow, tops]);

  const first = rowAt(Math.max(0, scrollTop - OVERSCAN));
  const last = Math.min(rows.length, rowAt(scrollTop + clientHeight + OVERSCAN) + 1);
  const visible = [];
  for (let i = first; i < last; i++) {
    const row = rows[i];
    const message = model.messages.get(row.messageId);
    if (!message) continue;
    visible.push(
      <TreeRowView
        key={row.messageId}
        message={message}
        model={model}
        depth={row.depth}
        top={tops[i]}
        height={tops[i + 1] - tops[i]}
        selected={row.messageId === selectedMessageId}
        onSelect={onSelectMessage}
        onSelectHop={onSelectHop}
      />,
    );
  }

  return (
    <div class="tree" ref={scroller} data-testid="causal-tree">
      {rows.length === 0 ? (
        <p class="muted pad">No messages.</p>
      ) : (
        <div class="tree-body" style={{ height: `${tops[rows.length]}px` }} role="tree">
          {visible}
        </div>
      )}
    </div>
  );
}

function messageLabel(message: ChainMessage): string {
  if (message.messageType) return message.messageType;
  const publisher = message.publisher;
  if (publisher?.routingKey) return publisher.routingKey;
  if (publisher) return exchangeLabel(publisher.exchange);
  return shortId(message.messageId, 8);
}

interface RowProps {
  message: ChainMessage;
  model: ChainModel;
  depth: number;
  top: number;
  height: number;
  selected: boolean;
  onSelect: (messageId: string) => void;
  onSelectHop: (hopId: number) => void;
}

function TreeRowView({ message, model, depth, top, height, selected, onSelect, onSelectHop }: RowProps) {
  const levels = Math.min(depth, MAX_INDENT_LEVELS);
  const deliveries = message.deliveries;
  // Dead letters that reached a dead-letter queue; a discarded reject is said by the status.
  const deadLettered = message.deadLetters.filter((d) => d.deadLetterQueue !== undefined).length;
  return (
    <div
      class={`tree-row${selected ? ' selected' : ''}`}
      style={{ top: `${top}px`, height: `${height}px`, paddingLeft: `${8 + levels * INDENT}px` }}
      onClick={() => onSelect(message.messageId)}
      data-msg-row
      data-message-id={message.messageId}
      aria-selected={selected}
      role="treeitem"
      aria-level={depth + 1}
    >
      <div class="tree-line1">
        {depth > 0 && (
          <span class="tree-elbow" aria-hidden="true">
            └
          </span>
        )}
        {depth > MAX_INDENT_LEVELS && <span class="tree-depth">depth {depth}</span>}
        <StatusBadge status={message.status} small />
        <span class="tree-label" title={`${messageLabel(message)} · message id ${message.messageId}`}>
          {messageLabel(message)}
        </span>
        {message.redeliveryCount > 0 && <span class="chip tone-warn">↻ {message.redeliveryCount}</span>}
        {deadLettered > 0 && <span class="chip tone-bad">☠ {deadLettered}</span>}
      </div>
      {deliveries.length <= 1 ? (
        <div class="tree-line2 muted" data-delivery-line={deliveries[0] ? `${deliveries[0].service} ${deliveries[0].queue}` : undefined}>
          <span>{message.publisher?.service ?? '?'}</span>
          <span aria-hidden="true"> → </span>
          <span>{deliveries[0]?.service ?? (message.status === 'ok' ? '' : 'no consumer seen')}</span>
          {deliveries[0] && deliveryFigures(deliveries[0]) && <span> · {deliveryFigures(deliveries[0])}</span>}
        </div>
      ) : (
        <>
          {deliveries.slice(0, MAX_DELIVERY_LINES).map((d, i) => {
            const first = d.hopIds?.[0];
            return (
              <div
                class="tree-line2 tree-delivery muted"
                key={`${d.service}-${d.queue}`}
                data-delivery-line={`${d.service} ${d.queue}`}
                title={`${d.service} ← ${d.queue}: ${deliveryFigures(d)}`}
                onClick={(event) => {
                  if (first === undefined || model.indexById.get(first) === undefined) return;
                  event.stopPropagation();
                  onSelectHop(first);
                }}
              >
                <span class="tree-consumer">{d.service}</span>
                {message.criticalDelivery === i && <span class="tree-critical" title="slowest delivery: longest queue wait plus handling"> ▲</span>}
                <span> · {deliveryFigures(d)}</span>
              </div>
            );
          })}
          {deliveries.length > MAX_DELIVERY_LINES && (
            <div class="tree-line2 muted">and {deliveries.length - MAX_DELIVERY_LINES} more deliveries (see the hop detail)</div>
          )}
        </>
      )}
    </div>
  );
}
