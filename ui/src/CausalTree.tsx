/**
 * The causal tree of a chain's messages: parent → the messages its handler
 * published. Flattened and virtualized like the timeline (a deep chain is a
 * long list, not a wide one: indentation stops growing after a few levels).
 */
import { useEffect, useRef } from 'preact/hooks';
import type { ChainMessage } from '../../collector/api-types.ts';
import type { ChainModel } from './chain-model.ts';
import { exchangeLabel, formatDuration, shortId } from './format.ts';
import { StatusBadge } from './status.tsx';
import { scrollIntoRange, useScrollWindow } from './use-scroll-window.ts';

const ROW = 46;
const INDENT = 14;
const MAX_INDENT_LEVELS = 10;
const OVERSCAN = 300;

interface Props {
  model: ChainModel;
  selectedMessageId: string | undefined;
  onSelectMessage: (messageId: string) => void;
}

export function CausalTree({ model, selectedMessageId, onSelectMessage }: Props) {
  const scroller = useRef<HTMLDivElement>(null);
  const { scrollTop, clientHeight } = useScrollWindow(scroller);
  const rows = model.treeRows;

  const selectedRow = selectedMessageId === undefined ? -1 : (model.treeIndex.get(selectedMessageId) ?? -1);
  useEffect(() => {
    if (selectedRow >= 0 && scroller.current) scrollIntoRange(scroller.current, selectedRow * ROW, selectedRow * ROW + ROW, 0);
  }, [selectedRow]);

  const first = Math.max(0, Math.floor((scrollTop - OVERSCAN) / ROW));
  const last = Math.min(rows.length, Math.ceil((scrollTop + clientHeight + OVERSCAN) / ROW));
  const visible = [];
  for (let i = first; i < last; i++) {
    const row = rows[i];
    const message = model.messages.get(row.messageId);
    if (!message) continue;
    visible.push(
      <TreeRowView
        key={row.messageId}
        message={message}
        depth={row.depth}
        top={i * ROW}
        selected={row.messageId === selectedMessageId}
        onSelect={onSelectMessage}
      />,
    );
  }

  return (
    <div class="tree" ref={scroller} data-testid="causal-tree">
      {rows.length === 0 ? (
        <p class="muted pad">No messages.</p>
      ) : (
        <div class="tree-body" style={{ height: `${rows.length * ROW}px` }} role="tree">
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
  depth: number;
  top: number;
  selected: boolean;
  onSelect: (messageId: string) => void;
}

function TreeRowView({ message, depth, top, selected, onSelect }: RowProps) {
  const levels = Math.min(depth, MAX_INDENT_LEVELS);
  const consumers = [...new Set(message.deliveries.map((d) => d.service))];
  return (
    <div
      class={`tree-row${selected ? ' selected' : ''}`}
      style={{ top: `${top}px`, height: `${ROW}px`, paddingLeft: `${8 + levels * INDENT}px` }}
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
        <span class="tree-label" title={message.messageId}>
          {messageLabel(message)}
        </span>
        {message.redeliveryCount > 0 && <span class="chip tone-warn">↻ {message.redeliveryCount}</span>}
        {message.deadLetters.length > 0 && <span class="chip tone-bad">☠ {message.deadLetters.length}</span>}
      </div>
      <div class="tree-line2 muted">
        <span>{message.publisher?.service ?? '?'}</span>
        <span aria-hidden="true"> → </span>
        <span>{consumers.length ? consumers.join(', ') : message.status === 'ok' ? '' : 'no consumer seen'}</span>
        {message.queueWaitMs !== undefined && <span> · wait {formatDuration(message.queueWaitMs)}</span>}
        {message.handlingMs !== undefined && <span> · handling {formatDuration(message.handlingMs)}</span>}
      </div>
    </div>
  );
}
