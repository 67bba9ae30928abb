/**
 * Export a chain in the formats other tools read: Jaeger's JSON trace format
 * (what Jaeger UI's "JSON file" upload reads) and OTLP JSON (what the
 * collector's own `POST /v1/traces`, an OpenTelemetry Collector or Jaeger's
 * OTLP receiver read).
 *
 * Both are rendered from one span model built from the chain's hops, with
 * the span names and attributes of `src/contract/span-model.ts` (the same
 * the wrappers' own spans have):
 * - each publish (`send`, with its `confirm` / `return`) is a PRODUCER span;
 * - each delivery (`receive` … `process`) is a CONSUMER span, child of the
 *   producer span (FOLLOWS_FROM / a link when the producer is in another trace);
 * - each `settle` is a short CLIENT span, child of its consumer span, as the
 *   current messaging conventions model ack / nack / reject.
 * Timestamps are the raw ones the services recorded: hoptrace never rewrites
 * them; each service's estimated clock offset travels along as a process tag
 * / resource attribute (`hoptrace.clock_offset_ms`).
 */
import { createHash } from 'node:crypto';
import type { ChainDetail, ChainHop } from './api-types.ts';
import { Attr, SpanEvents } from '../src/contract/semconv.ts';
import { JaegerTags } from './settings.ts';
import { type SpanModel, deliverySpan, publishSpan, settleSpan } from '../src/contract/span-model.ts';
import { CHAIN_EXPORT_SCOPE } from './otlp-hops.ts';
import { VERSION } from '../src/contract/version.ts';

/** A Jaeger key/value (tag, log field, process tag). */
export interface JaegerKeyValue {
  key: string;
  type: 'string' | 'bool' | 'int64' | 'float64';
  value: string | number | boolean;
}

export interface JaegerReference {
  refType: 'CHILD_OF' | 'FOLLOWS_FROM';
  traceID: string;
  spanID: string;
}

export interface JaegerLog {
  /** Epoch microseconds. */
  timestamp: number;
  fields: JaegerKeyValue[];
}

export interface JaegerSpan {
  traceID: string;
  spanID: string;
  /** Kept for old Jaeger UIs; `references` is what current ones read. */
  flags: number;
  operationName: string;
  references: JaegerReference[];
  /** Epoch microseconds. */
  startTime: number;
  /** Microseconds. */
  duration: number;
  tags: JaegerKeyValue[];
  logs: JaegerLog[];
  processID: string;
  warnings: string[] | null;
}

export interface JaegerProcess {
  serviceName: string;
  tags: JaegerKeyValue[];
}

/** One entry of `data`: what Jaeger's `/api/traces/{id}` answers and its UI uploads. */
export interface JaegerTrace {
  traceID: string;
  spans: JaegerSpan[];
  processes: Record<string, JaegerProcess>;
  warnings: string[] | null;
}

/** OTLP/JSON pieces (lowerCamelCase, hex ids, int64 as decimal strings). */
export type OtlpJsonAnyValue = { stringValue: string } | { boolValue: boolean } | { intValue: string } | { doubleValue: number };
export interface OtlpJsonKeyValue {
  key: string;
  value: OtlpJsonAnyValue;
}
export interface OtlpJsonSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: OtlpJsonKeyValue[];
  events: { timeUnixNano: string; name: string; attributes: OtlpJsonKeyValue[] }[];
  links: { traceId: string; spanId: string; attributes: OtlpJsonKeyValue[] }[];
  status: { code: number; message?: string };
}
export interface OtlpJsonResourceSpans {
  resource: { attributes: OtlpJsonKeyValue[] };
  scopeSpans: { scope: { name: string; version: string }; spans: OtlpJsonSpan[] }[];
}

type Scalar = string | number | boolean;
type Attrs = [key: string, value: Scalar][];

type Role = 'producer' | 'consumer' | 'settle';

interface ExportEvent {
  ts: number;
  name: string;
  attrs: Attrs;
}

interface ExportSpan {
  role: Role;
  traceId: string;
  spanId: string;
  parent?: { traceId: string; spanId: string; resolved: boolean };
  followsFrom?: { traceId: string; spanId: string };
  name: string;
  service: string;
  instance: string;
  start: number;
  end: number;
  attrs: Attrs;
  events: ExportEvent[];
  error?: string;
}

/** OTLP span kinds. */
const KIND = { producer: 4, consumer: 5, settle: 3 } as const;
const JAEGER_KIND = { producer: 'producer', consumer: 'consumer', settle: 'client' } as const;

/**
 * Not the wrappers' scope (`hoptrace`): these spans follow semconv to the letter
 * (`messaging.destination.name` composed as in `src/contract/destination.ts`).
 */
const SCOPE_NAME = CHAIN_EXPORT_SCOPE;

/** The exchange the hops name (`''`: the default exchange), undefined when none says. */
function exchangeOf(hops: ChainHop[]): string | undefined {
  return firstOf(hops, (h) => h.exchange) ?? (hops.some((h) => h.exchange === '') ? '' : undefined);
}

function firstOf<T>(hops: ChainHop[], pick: (h: ChainHop) => T | undefined): T | undefined {
  for (const h of hops) {
    const v = pick(h);
    if (v !== undefined && v !== '') return v;
  }
  return undefined;
}

function push(attrs: Attrs, key: string, value: Scalar | undefined): void {
  if (value !== undefined) attrs.push([key, value]);
}

/** A span id derived from another, for the spans hoptrace adds (settle) or ids that collide. */
function deriveSpanId(traceId: string, spanId: string, salt: string): string {
  return createHash('sha256').update(`${traceId}/${spanId}/${salt}`).digest('hex').slice(0, 16);
}

/** What the span model says about the message the hops are about. */
function messageFields(hops: ChainHop[]) {
  const first = hops[0];
  return {
    exchange: exchangeOf(hops),
    routingKey: firstOf(hops, (h) => h.routingKey) ?? '',
    messageId: first.messageId,
    correlationId: first.correlationId,
    causationId: firstOf(hops, (h) => h.causationId),
    bodySize: firstOf(hops, (h) => h.bodySize),
    messageType: firstOf(hops, (h) => h.messageType),
  };
}

const attrsOf = (model: SpanModel): Attrs => Object.entries(model.attributes) as Attrs;

/** Group the chain's hops into publishes and deliveries, in causal order. */
function groupHops(detail: ChainDetail): { role: 'producer' | 'consumer'; hops: ChainHop[] }[] {
  const groups: { role: 'producer' | 'consumer'; hops: ChainHop[] }[] = [];
  const openPublish = new Map<string, ChainHop[]>();
  const openDelivery = new Map<string, ChainHop[]>();
  const hops = [...detail.hops].sort((a, b) => a.seq - b.seq);
  for (const h of hops) {
    // A replay that republished is its new message's publish; one that moved nothing has no span.
    if (h.kind === 'replay' && h.outcome !== 'ack') continue;
    if (h.kind === 'send' || h.kind === 'confirm' || h.kind === 'return' || h.kind === 'replay') {
      const key = `${h.messageId}\0${h.service}`;
      let g = openPublish.get(key);
      if (h.kind === 'send' || h.kind === 'replay' || !g) {
        g = [];
        openPublish.set(key, g);
        groups.push({ role: 'producer', hops: g });
      }
      g.push(h);
    } else {
      const key = `${h.messageId}\0${h.service}\0${h.queue ?? ''}`;
      let g = openDelivery.get(key);
      // A receive starts a delivery; so does a second process or settle for the same one (a redelivery whose receive went missing).
      if (h.kind === 'receive' || !g || g.some((x) => x.kind === h.kind)) {
        g = [];
        openDelivery.set(key, g);
        groups.push({ role: 'consumer', hops: g });
      }
      g.push(h);
    }
  }
  return groups;
}

/** The chain as spans, with ids unique per trace and parents resolved where the chain holds them. */
function buildSpans(detail: ChainDetail): ExportSpan[] {
  const spans: ExportSpan[] = [];
  const used = new Set<string>();
  /** `trace/spanId of any hop` → the exported span that hop became part of. */
  const alias = new Map<string, ExportSpan>();
  /** messageId → its producer spans, in causal order. */
  const producers = new Map<string, ExportSpan[]>();
  const pending: { span: ExportSpan; hop: ChainHop; message?: string }[] = [];

  const claim = (traceId: string, wanted: string, salt: string): string => {
    let id = wanted;
    for (let n = 0; used.has(`${traceId}/${id}`); n++) id = deriveSpanId(traceId, wanted, `${salt}/${n}`);
    used.add(`${traceId}/${id}`);
    return id;
  };
  const remember = (span: ExportSpan, hops: ChainHop[]): void => {
    for (const h of hops) {
      const key = `${h.traceId}/${h.spanId}`;
      if (!alias.has(key)) alias.set(key, span);
    }
  };

  for (const group of groupHops(detail)) {
    const hops = group.hops;
    const first = hops[0];
    if (group.role === 'producer') {
      const send = hops.find((h) => h.kind === 'send' || h.kind === 'replay');
      const confirm = hops.find((h) => h.kind === 'confirm');
      const ret = hops.find((h) => h.kind === 'return');
      const anchor = send ?? first;
      const start = anchor.ts;
      const end = confirm ? Math.max(confirm.ts, start) : start;
      const model = publishSpan(messageFields(hops));
      const attrs = attrsOf(model);
      const events: ExportEvent[] = [];
      let error: string | undefined;
      if (confirm) {
        const ev: Attrs = [[Attr.HOPTRACE_OUTCOME, confirm.outcome === 'nack' ? 'nack' : 'ack']];
        push(ev, Attr.HOPTRACE_DURATION_MS, confirm.durationMs);
        events.push({ ts: confirm.ts, name: SpanEvents.HOPTRACE_CONFIRM, attrs: ev });
        if (confirm.outcome === 'nack') error = 'the broker nacked the publish';
      }
      if (ret) {
        const ev: Attrs = [];
        push(ev, Attr.HOPTRACE_REPLY_CODE, ret.replyCode);
        push(ev, Attr.HOPTRACE_REPLY_TEXT, ret.replyText);
        events.push({ ts: ret.ts, name: SpanEvents.HOPTRACE_RETURN, attrs: ev });
        error = `returned unroutable${ret.replyText ? `: ${ret.replyText}` : ''}`;
      }
      const span: ExportSpan = {
        role: 'producer',
        traceId: anchor.traceId,
        spanId: claim(anchor.traceId, anchor.spanId, 'producer'),
        name: model.name,
        service: anchor.service,
        instance: anchor.instance,
        start,
        end,
        attrs,
        events,
        error,
      };
      spans.push(span);
      remember(span, hops);
      const list = producers.get(anchor.messageId) ?? [];
      list.push(span);
      producers.set(anchor.messageId, list);
      if (anchor.parentSpanId) pending.push({ span, hop: anchor });
      continue;
    }

    const receive = hops.find((h) => h.kind === 'receive');
    const process = hops.find((h) => h.kind === 'process');
    const settle = hops.find((h) => h.kind === 'settle');
    const body = receive ?? process ?? settle ?? first;
    const start = receive?.ts ?? (process ? process.ts - (process.durationMs ?? 0) : body.ts);
    const end = process ? Math.max(process.ts, start) : start;
    const queue = firstOf(hops, (h) => h.queue);
    const delivery = {
      ...messageFields(hops),
      queue,
      deliveryTag: firstOf(hops, (h) => h.deliveryTag),
      consumerTag: firstOf(hops, (h) => h.consumerTag),
      redelivered: receive?.redelivered,
      deathCount: receive?.deathCount,
      death: receive?.death,
      handled: process !== undefined,
    };
    const model = deliverySpan(delivery);
    const attrs = attrsOf(model);
    const events: ExportEvent[] = [];
    let error: string | undefined;
    if (process?.outcome === 'error') {
      const e = process.error;
      error = e ? `${e.type}: ${e.message}` : 'handler failed';
      const ev: Attrs = [
        [Attr.EXCEPTION_TYPE, e?.type ?? 'Error'],
        [Attr.EXCEPTION_MESSAGE, e?.message ?? ''],
      ];
      push(ev, Attr.EXCEPTION_STACKTRACE, e?.stack);
      events.push({ ts: process.ts, name: SpanEvents.EXCEPTION, attrs: ev });
      attrs.push([Attr.ERROR_TYPE, e?.type ?? 'Error']);
    }
    const consumer: ExportSpan = {
      role: 'consumer',
      traceId: body.traceId,
      spanId: claim(body.traceId, body.spanId, 'consumer'),
      name: model.name,
      service: body.service,
      instance: body.instance,
      start,
      end,
      attrs,
      events,
      error,
    };
    spans.push(consumer);
    remember(consumer, hops.filter((h) => h !== settle || settle.spanId === body.spanId));
    pending.push({ span: consumer, hop: body, message: body.messageId });

    if (settle) {
      const outcome = settle.outcome === 'nack' || settle.outcome === 'reject' ? settle.outcome : 'ack';
      const settleModel = settleSpan({ ...delivery, outcome, requeue: settle.requeue, multiple: settle.multiple });
      const sAttrs = attrsOf(settleModel);
      const own = settle.spanId !== body.spanId && !used.has(`${settle.traceId}/${settle.spanId}`);
      const span: ExportSpan = {
        role: 'settle',
        traceId: consumer.traceId,
        spanId: own ? claim(consumer.traceId, settle.spanId, 'settle') : claim(consumer.traceId, deriveSpanId(consumer.traceId, consumer.spanId, 'settle'), 'settle'),
        parent: { traceId: consumer.traceId, spanId: consumer.spanId, resolved: true },
        name: settleModel.name,
        service: settle.service,
        instance: settle.instance,
        start: settle.ts,
        end: settle.ts,
        attrs: sAttrs,
        events: [],
        error: settle.outcome === 'nack' || settle.outcome === 'reject' ? `${settle.outcome}${settle.requeue ? ' with requeue' : ''}` : undefined,
      };
      spans.push(span);
      if (own) remember(span, [settle]);
    }
  }

  // Parents: whatever span a hop's parent span id ended up in; a consumer
  // without one in the chain hangs off its message's producer span.
  for (const { span, hop, message } of pending) {
    const parent = hop.parentSpanId ? alias.get(`${hop.traceId}/${hop.parentSpanId}`) : undefined;
    if (parent && parent !== span && parent.traceId === span.traceId) {
      span.parent = { traceId: parent.traceId, spanId: parent.spanId, resolved: true };
      continue;
    }
    const producer = message ? producers.get(message)?.findLast((p) => p.start <= span.start) ?? producers.get(message)?.[0] : undefined;
    if (producer && producer.traceId === span.traceId) span.parent = { traceId: producer.traceId, spanId: producer.spanId, resolved: true };
    else {
      if (hop.parentSpanId) span.parent = { traceId: hop.traceId, spanId: hop.parentSpanId, resolved: false };
      if (producer) span.followsFrom = { traceId: producer.traceId, spanId: producer.spanId };
    }
  }
  return spans;
}

// ---------------------------------------------------------------------------
// Jaeger

function jaegerValue(key: string, value: Scalar): JaegerKeyValue {
  if (typeof value === 'boolean') return { key, type: 'bool', value };
  if (typeof value === 'number') return Number.isInteger(value) ? { key, type: 'int64', value } : { key, type: 'float64', value };
  return { key, type: 'string', value };
}

const micros = (ms: number): number => Math.round(ms * 1000);

/** `{ data: [...] }`, one Jaeger trace per trace id in the chain, as Jaeger UI's "JSON file" upload reads it. */
export function chainToJaeger(detail: ChainDetail): { data: JaegerTrace[] } {
  const offsets = new Map(detail.skew.map((s) => [s.service, s.offsetMs]));
  const traces = new Map<string, JaegerTrace>();
  const processKeys = new Map<string, Map<string, string>>();
  for (const s of buildSpans(detail)) {
    let trace = traces.get(s.traceId);
    if (!trace) {
      trace = { traceID: s.traceId, spans: [], processes: {}, warnings: null };
      traces.set(s.traceId, trace);
      processKeys.set(s.traceId, new Map());
    }
    const keys = processKeys.get(s.traceId)!;
    const pk = `${s.service}\0${s.instance}`;
    let processID = keys.get(pk);
    if (!processID) {
      processID = `p${keys.size + 1}`;
      keys.set(pk, processID);
      const tags = [jaegerValue(Attr.SERVICE_INSTANCE_ID, s.instance), jaegerValue(Attr.HOPTRACE_VERSION, VERSION)];
      const offset = offsets.get(s.service);
      if (offset) tags.push(jaegerValue(Attr.HOPTRACE_CLOCK_OFFSET_MS, offset));
      trace.processes[processID] = { serviceName: s.service, tags };
    }

    const references: JaegerReference[] = [];
    const warnings: string[] = [];
    const tags = [jaegerValue(JaegerTags.SPAN_KIND, JAEGER_KIND[s.role]), ...s.attrs.map(([k, v]) => jaegerValue(k, v))];
    if (s.parent?.resolved) references.push({ refType: 'CHILD_OF', traceID: s.parent.traceId, spanID: s.parent.spanId });
    else if (s.parent) {
      tags.push(jaegerValue(Attr.HOPTRACE_PARENT_SPAN_ID, s.parent.spanId));
      warnings.push(`parent span ${s.parent.spanId} is not part of this hoptrace chain`);
    }
    if (s.followsFrom) references.push({ refType: 'FOLLOWS_FROM', traceID: s.followsFrom.traceId, spanID: s.followsFrom.spanId });
    if (s.error) {
      tags.push(
        jaegerValue(JaegerTags.ERROR, true),
        jaegerValue(JaegerTags.OTEL_STATUS_CODE, 'ERROR'),
        jaegerValue(JaegerTags.OTEL_STATUS_DESCRIPTION, s.error),
      );
    }
    const logs: JaegerLog[] = s.events.map((e) => ({
      timestamp: micros(e.ts),
      fields: [
        // Jaeger's own convention names an error log `event: error`.
        jaegerValue(JaegerTags.EVENT, e.name === SpanEvents.EXCEPTION ? JaegerTags.EVENT_ERROR : e.name),
        ...e.attrs.map(([k, v]) => jaegerValue(k, v)),
      ],
    }));
    trace.spans.push({
      traceID: s.traceId,
      spanID: s.spanId,
      flags: 1,
      operationName: s.name,
      references,
      startTime: micros(s.start),
      duration: Math.max(0, micros(s.end) - micros(s.start)),
      tags,
      logs,
      processID,
      warnings: warnings.length ? warnings : null,
    });
  }
  const data = [...traces.values()];
  for (const t of data) t.spans.sort((a, b) => a.startTime - b.startTime);
  return { data };
}

// ---------------------------------------------------------------------------
// OTLP JSON

function otlpValue(value: Scalar): OtlpJsonAnyValue {
  if (typeof value === 'boolean') return { boolValue: value };
  if (typeof value === 'number') return Number.isInteger(value) ? { intValue: String(value) } : { doubleValue: value };
  return { stringValue: value };
}

const otlpAttrs = (attrs: Attrs): OtlpJsonKeyValue[] => attrs.map(([key, v]) => ({ key, value: otlpValue(v) }));

/** Epoch ms (fractional) → unix nanoseconds as a decimal string, without losing the microseconds to float rounding. */
function nanos(ms: number): string {
  const whole = Math.floor(ms);
  return (BigInt(whole) * 1_000_000n + BigInt(Math.round((ms - whole) * 1e6))).toString();
}

/** An OTLP/JSON `ExportTraceServiceRequest`: resource spans per service instance, hex ids, nanosecond strings. */
export function chainToOtlpJson(detail: ChainDetail): { resourceSpans: OtlpJsonResourceSpans[] } {
  const offsets = new Map(detail.skew.map((s) => [s.service, s.offsetMs]));
  const resources = new Map<string, OtlpJsonResourceSpans>();
  for (const s of buildSpans(detail)) {
    const key = `${s.service}\0${s.instance}`;
    let rs = resources.get(key);
    if (!rs) {
      const attrs: Attrs = [
        [Attr.SERVICE_NAME, s.service],
        [Attr.SERVICE_INSTANCE_ID, s.instance],
      ];
      const offset = offsets.get(s.service);
      if (offset) attrs.push([Attr.HOPTRACE_CLOCK_OFFSET_MS, offset]);
      rs = { resource: { attributes: otlpAttrs(attrs) }, scopeSpans: [{ scope: { name: SCOPE_NAME, version: VERSION }, spans: [] }] };
      resources.set(key, rs);
    }
    const span: OtlpJsonSpan = {
      traceId: s.traceId,
      spanId: s.spanId,
      name: s.name,
      kind: KIND[s.role],
      startTimeUnixNano: nanos(s.start),
      endTimeUnixNano: nanos(s.end),
      attributes: otlpAttrs(s.attrs),
      events: s.events.map((e) => ({ timeUnixNano: nanos(e.ts), name: e.name, attributes: otlpAttrs(e.attrs) })),
      links: s.followsFrom ? [{ traceId: s.followsFrom.traceId, spanId: s.followsFrom.spanId, attributes: [] }] : [],
      status: s.error ? { code: 2, message: s.error } : { code: 0 },
    };
    if (s.parent && s.parent.traceId === s.traceId) span.parentSpanId = s.parent.spanId;
    rs.scopeSpans[0].spans.push(span);
  }
  return { resourceSpans: [...resources.values()] };
}
