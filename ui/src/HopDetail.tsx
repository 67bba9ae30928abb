/**
 * Everything recorded about one hop. Every value here came from a message or
 * a service and is rendered as text.
 */
import type { ComponentChildren } from 'preact';
import { useMemo, useState } from 'preact/hooks';
import type { ChainHop, ChainMessage, ServiceSkew, UiConfig } from '../../collector/api-types.ts';
import { exchangeLabel, formatDateTime, formatDuration, formatIsoUtc, formatOffset } from './format.ts';
import { hopLogLine, summarizeHop } from './hop-text.ts';
import { jaegerTraceUrl } from './jaeger.ts';
import { StatusBadge } from './status.tsx';

interface Props {
  hop: ChainHop;
  message: ChainMessage | undefined;
  skew: ServiceSkew | undefined;
  config: UiConfig | undefined;
}

export function HopDetail({ hop, message, skew, config }: Props) {
  const summary = useMemo(() => summarizeHop(hop), [hop]);
  const logLine = useMemo(() => hopLogLine(hop), [hop]);
  const jaeger = jaegerTraceUrl(config, hop.traceId);
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
      {message?.statusReason && message.status !== 'ok' && <p class="detail-reason">{message.statusReason}</p>}

      {hop.error && (
        <Section title="Error" open tone="bad">
          <p class="error-line" data-testid="hop-error">
            <strong>{hop.error.type}</strong>: {hop.error.message}
            {hop.error.code && <span class="muted"> ({hop.error.code})</span>}
          </p>
          {hop.error.stack && <pre class="stack">{hop.error.stack}</pre>}
        </Section>
      )}

      <Section title="When" open>
        <Fields
          rows={[
            ['time (raw)', formatDateTime(hop.ts)],
            ['ts (raw)', `${hop.ts}  ${formatIsoUtc(hop.ts)}`],
            ['time (adjusted)', hop.adjustedTs === hop.ts ? 'same as raw' : `${formatDateTime(hop.adjustedTs)}  (${formatOffset(hop.adjustedTs - hop.ts)})`],
            [
              'clock skew',
              skew
                ? skew.reference
                  ? 'reference clock'
                  : `${formatOffset(skew.offsetMs)} (from ${skew.samples} sample${skew.samples === 1 ? '' : 's'})`
                : 'no estimate',
            ],
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
        <Fields
          rows={[
            ['message id', hop.messageId],
            ['correlation id', hop.correlationId],
            ['causation id', hop.causationId],
            ['trace id', hop.traceId],
            ['span id', hop.spanId],
            ['parent span id', hop.parentSpanId],
          ]}
        />
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
          <table class="kv-table">
            <thead>
              <tr>
                <th>queue</th>
                <th>reason</th>
                <th>count</th>
                <th>exchange</th>
                <th>routing keys</th>
                <th>first</th>
              </tr>
            </thead>
            <tbody>
              {hop.death.map((d, i) => (
                <tr key={i}>
                  <td>{d.queue}</td>
                  <td>{d.reason}</td>
                  <td>{d.count}</td>
                  <td>{exchangeLabel(d.exchange)}</td>
                  <td>{d.routingKeys.join(', ')}</td>
                  <td>{d.time !== undefined ? formatDateTime(d.time) : ''}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </Section>
      )}

      {message && (
        <Section title="Message" open={message.status !== 'ok'}>
          <Fields
            rows={[
              ['status', message.status],
              ['why', message.statusReason],
              ['type', message.messageType],
              ['parent message', message.parentMessageId],
              ['caused', message.childMessageIds.length ? `${message.childMessageIds.length} message(s)` : 'nothing'],
              ['queue wait', message.queueWaitMs !== undefined ? formatDuration(message.queueWaitMs) : undefined],
              ['handling', message.handlingMs !== undefined ? formatDuration(message.handlingMs) : undefined],
              ['redeliveries', message.redeliveryCount],
            ]}
          />
        </Section>
      )}

      <Section title={`Headers (${Object.keys(hop.headers ?? {}).length})`} open={Boolean(hop.headers && Object.keys(hop.headers).length)}>
        {hop.headers && Object.keys(hop.headers).length ? (
          <Fields rows={Object.entries(hop.headers).map(([key, value]) => [key, value])} />
        ) : (
          // Hops leave out the headers that only repeat their own ids (traceparent,
          // x-correlation-id, x-causation-id): those are under Ids.
          <p class="muted">no headers besides hoptrace's own ids (shown under Ids)</p>
        )}
      </Section>

      <Section title="Properties" open={false}>
        <Fields
          rows={[
            ...Object.entries(hop.properties ?? {}).map(([key, value]): [string, unknown] => [key, value]),
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
        <CopyButton text={logLine} />
        <pre class="logline" data-testid="hop-logline">
          {logLine}
        </pre>
      </Section>
    </div>
  );
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
        <div class="field" key={key}>
          <dt>{key}</dt>
          <dd>{typeof value === 'object' ? JSON.stringify(value) : String(value)}</dd>
        </div>
      ))}
    </dl>
  );
}

function CopyButton({ text }: { text: string }) {
  const [copied, setCopied] = useState(false);
  return (
    <button
      type="button"
      class="btn btn-small copy"
      onClick={() => {
        navigator.clipboard?.writeText(text).then(
          () => {
            setCopied(true);
            setTimeout(() => setCopied(false), 1500);
          },
          () => undefined,
        );
      }}
    >
      {copied ? 'copied' : 'copy'}
    </button>
  );
}
