/**
 * Everything recorded about one hop. Every value here came from a message or
 * a service and is rendered as text.
 */
import type { ComponentChildren } from 'preact';
import { useMemo, useState } from 'preact/hooks';
import type { ChainHop, ChainMessage, MessageDelivery, ServiceSkew, UiConfig } from '../../collector/api-types.ts';
import { deliveryKey, type ChainModel } from './chain-model.ts';
import { exchangeLabel, formatDateTime, formatDuration, formatIsoUtc, formatOffset, plural } from './format.ts';
import { hopLogLine, summarizeHop } from './hop-text.ts';
import { jaegerTraceUrl } from './jaeger.ts';
import { isProblem, StatusBadge } from './status.tsx';
import { describeSkew } from './Timeline.tsx';

interface Props {
  hop: ChainHop;
  message: ChainMessage | undefined;
  model: ChainModel;
  skew: ServiceSkew | undefined;
  config: UiConfig | undefined;
  onSelectHop: (hopId: number) => void;
}

export function HopDetail({ hop, message, model, skew, config, onSelectHop }: Props) {
  const unsettled = hop.kind === 'process' && model.unsettled.has(deliveryKey(hop.messageId, hop.service, hop.queue));
  const summary = useMemo(() => summarizeHop(hop, { unsettled }), [hop, unsettled]);
  const logLine = useMemo(() => hopLogLine(hop), [hop]);
  const jaeger = jaegerTraceUrl(config, hop.traceId);
  const hopAt = (id: number | undefined) => (id === undefined ? undefined : model.hops[model.indexById.get(id) ?? -1]);
  const firstHopOf = (messageId: string) => model.hops.find((h) => h.messageId === messageId);
  const waitSince = hop.kind === 'receive' ? hopAt(hop.waitSinceHopId) : undefined;
  const delivery = model.deliveryOfHop.get(hop.id);
  const reasonTone = message ? (isProblem(message.status) ? 'bad' : message.status === 'in-flight' ? 'info' : undefined) : undefined;
  return (
    <div class="detail" data-testid="hop-detail" data-seq={hop.seq}>
      <div class="detail-title">
        <span class={`kind k-${summary.kind}`}>{summary.kind}</span>
        <span class="detail-svc">{hop.service}</span>
        <span class="muted">#{hop.seq}</span>
        {message && <StatusBadge status={message.status} small />}
      </div>
      <p class={`detail-summary tone-${summary.tone}`} data-testid="hop-summary">
        {summary.text}
      </p>
      {summary.marks.length > 0 && (
        <p>
          {summary.marks.map((mark) => (
            <span class={`chip tone-${mark.tone}`} key={mark.label}>
              {mark.label}
            </span>
          ))}
        </p>
      )}
      {message?.statusReason && reasonTone && (
        <p class={`detail-reason reason-${reasonTone}`} data-testid="status-reason" data-tone={reasonTone}>
          {message.statusReason}
        </p>
      )}
      {waitSince && delivery && (
        <p class="detail-wait" data-testid="wait-since">
          waited {delivery.delivery.queueWaitApprox && waitSince.service !== hop.service ? '≈ ' : ''}
          {formatDuration(hop.adjustedTs - waitSince.adjustedTs)} in {hop.queue ?? 'the queue'} since{' '}
          <button type="button" class="linklike" onClick={() => onSelectHop(waitSince.id)}>
            #{waitSince.seq} {waitSince.kind} in {waitSince.service}
          </button>
          {waitSince.kind === 'settle' ? (hop.death?.length ? ' (dead-lettered there)' : ' (requeued there)') : ''}
        </p>
      )}

      {hop.error && (
        <Section title="Error" open tone="bad">
          <p class="error-line" data-testid="hop-error">
            <strong>{hop.error.type}</strong>: {hop.error.message}
            {hop.error.code && <span class="muted"> ({hop.error.code})</span>}
          </p>
          {hop.error.stack && <pre class="stack">{hop.error.stack}</pre>}
        </Section>
      )}

      {message && message.deliveries.length > 0 && (
        <Section title={`Deliveries (${message.deliveries.length})`} open={message.deliveries.length > 1}>
          <Deliveries message={message} model={model} current={delivery?.index} onSelectHop={onSelectHop} />
        </Section>
      )}

      <Section title="When" open>
        <Fields
          rows={[
            ['time (raw)', formatDateTime(hop.ts)],
            ['ts (raw)', `${hop.ts}  ${formatIsoUtc(hop.ts)}`],
            ['time (adjusted)', hop.adjustedTs === hop.ts ? 'same as raw' : `${formatDateTime(hop.adjustedTs)}  (${formatOffset(hop.adjustedTs - hop.ts)})`],
            ['clock skew', describeSkew(skew).long],
            ['duration', hop.durationMs !== undefined ? formatDuration(hop.durationMs) : undefined],
            ['received by collector', formatDateTime(hop.receivedAt)],
          ]}
        />
      </Section>

      <Section title="Where" open>
        <Fields
          rows={[
            ['service', hop.service],
            ['instance', hop.instance],
            ['exchange', hop.exchange !== undefined ? exchangeLabel(hop.exchange) : undefined],
            ['routing key', hop.routingKey],
            ['queue', hop.queue],
            ['consumer tag', hop.consumerTag],
            ['delivery tag', hop.deliveryTag],
            ['redelivered', hop.redelivered === undefined ? undefined : String(hop.redelivered)],
          ]}
        />
      </Section>

      <Section title="Ids" open>
        <div class="ids" data-testid="ids">
          <IdField label="message id" value={hop.messageId} />
          <IdField label="correlation id" value={hop.correlationId} />
          <IdField
            label="causation id"
            value={hop.causationId}
            link={hop.causationId && firstHopOf(hop.causationId) ? () => onSelectHop(firstHopOf(hop.causationId!)!.id) : undefined}
          />
          <IdField label="trace id" value={hop.traceId} />
          <IdField label="span id" value={hop.spanId} />
          <IdField label="parent span id" value={hop.parentSpanId} />
        </div>
        {jaeger && (
          <p>
            <a href={jaeger} target="_blank" rel="noopener noreferrer" class="ext-link">
              view trace in Jaeger ↗
            </a>
          </p>
        )}
      </Section>

      {(hop.outcome !== undefined || hop.replyCode !== undefined) && (
        <Section title="Outcome" open>
          <Fields
            rows={[
              ['outcome', hop.outcome],
              ['requeue', hop.requeue === undefined ? undefined : String(hop.requeue)],
              ['multiple', hop.multiple === undefined ? undefined : String(hop.multiple)],
              ['reply code', hop.replyCode],
              ['reply text', hop.replyText],
            ]}
          />
        </Section>
      )}

      {hop.death && hop.death.length > 0 && (
        <Section title={`Dead-letter history (${hop.deathCount ?? hop.death.length})`} open tone="bad">
          <div class="deaths" data-testid="death-history">
            {hop.death.map((d, i) => (
              <div class="death" key={i}>
                <Fields
                  rows={[
                    ['from queue', d.queue],
                    ['reason', d.reason],
                    ['count', d.count],
                    ['exchange', exchangeLabel(d.exchange)],
                    ['routing keys', d.routingKeys.join(', ')],
                    ['first', d.time !== undefined ? formatDateTime(d.time) : undefined],
                  ]}
                />
              </div>
            ))}
          </div>
        </Section>
      )}

      {message && (
        <Section title="Message" open>
          <dl class="fields">
            <Field label="status">{message.status}</Field>
            {message.statusReason && <Field label="why">{message.statusReason}</Field>}
            {message.messageType && <Field label="type">{message.messageType}</Field>}
            {message.parentMessageId && (
              <Field label="parent message">
                {firstHopOf(message.parentMessageId) ? (
                  <button type="button" class="linklike id-link" data-testid="parent-link" title={message.parentMessageId} onClick={() => onSelectHop(firstHopOf(message.parentMessageId!)!.id)}>
                    {model.messages.get(message.parentMessageId)?.messageType ?? message.parentMessageId}
                  </button>
                ) : (
                  <span title="not part of this chain">{message.parentMessageId} (not in this chain)</span>
                )}
              </Field>
            )}
            <Field label="caused">
              {message.childMessageIds.length === 0
                ? 'nothing'
                : message.childMessageIds.map((id, i) => {
                    const first = firstHopOf(id);
                    const label = model.messages.get(id)?.messageType ?? model.messages.get(id)?.publisher?.routingKey ?? id;
                    return (
                      <span key={id}>
                        {i > 0 && ', '}
                        {first ? (
                          <button type="button" class="linklike" data-testid="child-link" title={id} onClick={() => onSelectHop(first.id)}>
                            {label}
                          </button>
                        ) : (
                          label
                        )}
                      </span>
                    );
                  })}
            </Field>
            <Field label="redeliveries">{message.redeliveryCount}</Field>
          </dl>
        </Section>
      )}

      <Section title={`Headers (${Object.keys(hop.headers ?? {}).length})`} open={Boolean(hop.headers && Object.keys(hop.headers).length)}>
        {hop.headers && Object.keys(hop.headers).length ? (
          <Fields rows={Object.entries(hop.headers).map(([key, value]) => [key, readableHeader(value)])} />
        ) : (
          // Hops leave out the headers that only repeat their own ids (traceparent,
          // x-correlation-id, x-causation-id): those are under Ids.
          <p class="muted">no headers besides hoptrace's own ids (shown under Ids)</p>
        )}
      </Section>

      <Section title="Properties" open={false}>
        <Fields
          rows={[
            ...Object.entries(hop.properties ?? {}).map(([key, value]): [string, unknown] => [key, readableProperty(key, value)]),
            ['content type', hop.contentType],
            ['body size', hop.bodySize !== undefined ? `${hop.bodySize} bytes` : undefined],
          ]}
        />
      </Section>

      <Section title={`Payload${hop.payloadTruncated ? ' (truncated)' : ''}`} open={hop.payload !== undefined}>
        {hop.payload !== undefined ? (
          <pre class="payload" data-testid="hop-payload">
            {prettyPayload(hop.payload)}
          </pre>
        ) : (
          <p class="muted">not captured (payload capture is off for this service)</p>
        )}
      </Section>

      <Section title="Log line" open={false}>
        <CopyButton text={logLine} label="log line" class="copy-corner" />
        <pre class="logline" data-testid="hop-logline">
          {logLine}
        </pre>
      </Section>
    </div>
  );
}

/** Each consumer's own figures (deliveries to several queues run in parallel: never added up), each a link to its first hop. */
function Deliveries({ message, model, current, onSelectHop }: { message: ChainMessage; model: ChainModel; current: number | undefined; onSelectHop: (hopId: number) => void }) {
  return (
    <ul class="deliveries" data-testid="deliveries">
      {message.deliveries.map((d: MessageDelivery, i) => {
        const first = d.hopIds?.[0];
        const firstHop = first === undefined ? undefined : model.hops[model.indexById.get(first) ?? -1];
        const critical = message.deliveries.length > 1 && message.criticalDelivery === i;
        return (
          <li class={`delivery${i === current ? ' current' : ''}`} key={`${d.service}-${d.queue}`} data-delivery={`${d.service} ${d.queue}`}>
            <div class="delivery-who">
              {firstHop ? (
                <button type="button" class="linklike" onClick={() => onSelectHop(firstHop.id)} title={`go to #${firstHop.seq}`}>
                  {d.service}
                </button>
              ) : (
                d.service
              )}
              <span class="muted"> ← </span>
              <span class="delivery-queue" title={d.queue}>
                {d.queue || '(queue not recorded)'}
              </span>
              {critical && (
                <span class="chip" title="the longest queue wait plus handling of this message's deliveries">
                  slowest
                </span>
              )}
            </div>
            <div class="delivery-figures muted">
              {deliveryFigures(d)}
            </div>
          </li>
        );
      })}
    </ul>
  );
}

/** `wait ≈ 756 ms · handling 34 ms · nack, no requeue · 1 error · 2 redeliveries` */
export function deliveryFigures(d: MessageDelivery): string {
  const parts: string[] = [];
  if (d.queueWaitMs !== undefined) parts.push(`wait ${d.queueWaitApprox ? '≈ ' : ''}${formatDuration(d.queueWaitMs)}`);
  if (d.handlingMs !== undefined) parts.push(`handling ${formatDuration(d.handlingMs)}`);
  if (d.settle) parts.push(d.settle.outcome === 'ack' ? 'ack' : `${d.settle.outcome}${d.settle.requeue ? ', requeue' : ', no requeue'}`);
  else if (d.receivedTs !== undefined) parts.push('not settled');
  if (d.errors) parts.push(plural(d.errors, 'error'));
  if (d.redeliveries) parts.push(plural(d.redeliveries, 'redelivery', 'redeliveries'));
  return parts.join(' · ');
}

/** AMQP `timestamp` (seconds) as a date, `deliveryMode` by name. */
function readableProperty(key: string, value: unknown): unknown {
  if (key === 'timestamp' && typeof value === 'number' && Number.isFinite(value)) {
    // AMQP timestamps are seconds; some clients write milliseconds.
    const ms = value > 1e11 ? value : value * 1000;
    return `${formatDateTime(ms)}  (${value})`;
  }
  if (key === 'deliveryMode' && (value === 1 || value === 2)) return `${value} (${value === 2 ? 'persistent' : 'transient'})`;
  return value;
}

/** Header values with amqplib's typed values (`{"!":"timestamp","value":…}`) as dates, JSON indented. */
function readableHeader(value: unknown): unknown {
  let parsed = value;
  if (typeof value === 'string') {
    const trimmed = value.trim();
    if (!(trimmed.startsWith('{') || trimmed.startsWith('[')) || !trimmed.includes('"!"')) return value;
    try {
      parsed = JSON.parse(trimmed);
    } catch {
      return value;
    }
  }
  if (parsed === null || typeof parsed !== 'object') return value;
  const typed = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(typed);
    if (v === null || typeof v !== 'object') return v;
    const o = v as Record<string, unknown>;
    if (o['!'] === 'timestamp' && typeof o.value === 'number') return formatDateTime(o.value * 1000);
    if (typeof o['!'] === 'string' && 'value' in o) return typed(o.value);
    return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, typed(x)]));
  };
  return JSON.stringify(typed(parsed), null, 1);
}

/** JSON payloads indented for reading; anything else exactly as captured. */
function prettyPayload(payload: string): string {
  const trimmed = payload.trim();
  if ((trimmed.startsWith('{') || trimmed.startsWith('[')) && trimmed.length < 200_000) {
    try {
      return JSON.stringify(JSON.parse(trimmed), null, 2);
    } catch {
      // Truncated or not JSON: show as captured.
    }
  }
  return payload;
}

function Section({ title, open, tone, children }: { title: string; open: boolean; tone?: string; children: ComponentChildren }) {
  return (
    <details class={`section${tone ? ` tone-${tone}` : ''}`} open={open}>
      <summary>{title}</summary>
      <div class="section-body">{children}</div>
    </details>
  );
}

function Fields({ rows }: { rows: Array<[string, unknown]> }) {
  const present = rows.filter(([, value]) => value !== undefined && value !== null && value !== '');
  if (!present.length) return <p class="muted">none recorded</p>;
  return (
    <dl class="fields">
      {present.map(([key, value]) => (
        <Field label={key} key={key}>
          {typeof value === 'object' ? JSON.stringify(value) : String(value)}
        </Field>
      ))}
    </dl>
  );
}

function Field({ label, children }: { label: string; children: ComponentChildren }) {
  return (
    <div class="field">
      <dt>{label}</dt>
      <dd>{children}</dd>
    </div>
  );
}

/** An id on one line (never broken mid-string), the whole of it on hover, with a copy button. */
function IdField({ label, value, link }: { label: string; value: string | undefined; link?: () => void }) {
  if (!value) return null;
  return (
    <div class="id-field" data-id-field={label}>
      <span class="id-label muted">{label}</span>
      <span class="id-row">
        {link ? (
          <button type="button" class="linklike id-value mono" title={`${value} (go to it)`} onClick={link}>
            {value}
          </button>
        ) : (
          <code class="id-value" title={value}>
            {value}
          </code>
        )}
        <CopyButton text={value} label={label} />
      </span>
    </div>
  );
}

/** Copy to the clipboard; falls back to a selection copy where the Clipboard API is missing (plain http). */
async function copyText(text: string): Promise<void> {
  if (navigator.clipboard?.writeText) {
    try {
      await navigator.clipboard.writeText(text);
      return;
    } catch {
      // Permission refused: try the old way.
    }
  }
  const area = document.createElement('textarea');
  area.value = text;
  area.setAttribute('readonly', '');
  area.style.position = 'fixed';
  area.style.opacity = '0';
  document.body.appendChild(area);
  area.select();
  const ok = document.execCommand('copy');
  area.remove();
  if (!ok) throw new Error('copy refused');
}

export function CopyButton({ text, label, class: extra }: { text: string; label: string; class?: string }) {
  const [state, setState] = useState<'idle' | 'copied' | 'failed'>('idle');
  return (
    <button
      type="button"
      class={`btn btn-icon copy${extra ? ` ${extra}` : ''}`}
      title={`copy ${label}`}
      aria-label={`copy ${label}`}
      data-copy={text}
      onClick={(event) => {
        event.stopPropagation();
        copyText(text).then(
          () => setState('copied'),
          () => setState('failed'),
        );
        setTimeout(() => setState('idle'), 1500);
      }}
    >
      {state === 'copied' ? '✓' : state === 'failed' ? '✕' : '❐'}
    </button>
  );
}
