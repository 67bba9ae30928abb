import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChainDetail } from '../collector/api-types.ts';
import { chainToJaeger, chainToOtlpJson, type JaegerTrace } from '../collector/chain-export.ts';
import { decodeOtlpTraces } from '../collector/otlp-decode.ts';
import type { HopRecord } from '../src/contract/hop.ts';
import { getJson, postHops, spanId, startTestCollector, traceId, type TestCollector } from './helpers/collector.ts';

/**
 * One business flow with every kind of hop, the way the wrappers record it:
 * orders publishes an order (confirmed); billing handles it, publishes an
 * invoice request from inside the handler and acks; mailer's handler throws
 * on the invoice and nacks it into a dead-letter queue; a late audit message
 * in a second trace comes back unroutable.
 */
function flow() {
  const correlationId = randomUUID();
  const t1 = traceId();
  const t2 = traceId();
  const order = randomUUID();
  const invoice = randomUUID();
  const audit = randomUUID();
  const s = { orderSend: spanId(), billingRecv: spanId(), billingProc: spanId(), billingSettle: spanId(), invoiceSend: spanId(), mailerRecv: spanId(), mailerProc: spanId(), mailerSettle: spanId(), auditSend: spanId() };
  const t0 = 1_750_000_000_000.25;
  const base = { v: 1 as const, correlationId, exchange: 'shop' };
  const hops: HopRecord[] = [
    { ...base, kind: 'send', ts: t0, service: 'orders', instance: 'box/1', traceId: t1, spanId: s.orderSend, messageId: order, routingKey: 'order.created', bodySize: 42 },
    { ...base, kind: 'confirm', ts: t0 + 1.5, service: 'orders', instance: 'box/1', traceId: t1, spanId: s.orderSend, messageId: order, routingKey: 'order.created', outcome: 'ack', durationMs: 1.5 },
    { ...base, kind: 'receive', ts: t0 + 3, service: 'billing', instance: 'box/2', traceId: t1, spanId: s.billingRecv, parentSpanId: s.orderSend, messageId: order, routingKey: 'order.created', queue: 'billing.orders', deliveryTag: 1, redelivered: false },
    { ...base, kind: 'send', ts: t0 + 4, service: 'billing', instance: 'box/2', traceId: t1, spanId: s.invoiceSend, parentSpanId: s.billingProc, messageId: invoice, causationId: order, exchange: 'billing', routingKey: 'invoice.requested' },
    { ...base, kind: 'process', ts: t0 + 5, service: 'billing', instance: 'box/2', traceId: t1, spanId: s.billingProc, parentSpanId: s.orderSend, messageId: order, routingKey: 'order.created', queue: 'billing.orders', outcome: 'ok', durationMs: 2 },
    { ...base, kind: 'settle', ts: t0 + 5.5, service: 'billing', instance: 'box/2', traceId: t1, spanId: s.billingSettle, parentSpanId: s.orderSend, messageId: order, routingKey: 'order.created', queue: 'billing.orders', outcome: 'ack', requeue: false },
    { ...base, kind: 'receive', ts: t0 + 7, service: 'mailer', instance: 'box/3', traceId: t1, spanId: s.mailerRecv, parentSpanId: s.invoiceSend, messageId: invoice, causationId: order, exchange: 'billing', routingKey: 'invoice.requested', queue: 'mailer.invoices', deliveryTag: 9 },
    {
      ...base, kind: 'process', ts: t0 + 9, service: 'mailer', instance: 'box/3', traceId: t1, spanId: s.mailerProc, parentSpanId: s.invoiceSend, messageId: invoice, causationId: order, exchange: 'billing', routingKey: 'invoice.requested', queue: 'mailer.invoices',
      outcome: 'error', durationMs: 1.75, error: { type: 'TypeError', message: 'no address', stack: 'TypeError: no address\n    at send (mailer.ts:1:1)' },
    },
    { ...base, kind: 'settle', ts: t0 + 9.5, service: 'mailer', instance: 'box/3', traceId: t1, spanId: s.mailerSettle, parentSpanId: s.invoiceSend, messageId: invoice, causationId: order, exchange: 'billing', routingKey: 'invoice.requested', queue: 'mailer.invoices', outcome: 'nack', requeue: false },
    { ...base, kind: 'send', ts: t0 + 20, service: 'orders', instance: 'box/1', traceId: t2, spanId: s.auditSend, messageId: audit, causationId: order, exchange: 'audit', routingKey: 'nowhere' },
    { ...base, kind: 'return', ts: t0 + 21, service: 'orders', instance: 'box/1', traceId: t2, spanId: s.auditSend, messageId: audit, causationId: order, exchange: 'audit', routingKey: 'nowhere', outcome: 'returned', replyCode: 312, replyText: 'NO_ROUTE' },
  ];
  return { correlationId, t1, t2, order, invoice, audit, s, hops };
}

const HEX32 = /^[0-9a-f]{32}$/;
const HEX16 = /^[0-9a-f]{16}$/;
const TAG_TYPES = new Set(['string', 'bool', 'int64', 'float64', 'binary']);

/** What Jaeger UI's trace upload reads (jaeger-ui `TraceData` / `SpanData`): fail on anything it would trip over. */
function expectJaegerShape(trace: JaegerTrace): void {
  expect(trace.traceID).toMatch(HEX32);
  expect(trace.warnings).toBeNull();
  const ids = new Set(trace.spans.map((s) => s.spanID));
  expect(ids.size).toBe(trace.spans.length);
  for (const [pid, p] of Object.entries(trace.processes)) {
    expect(pid).toMatch(/^p\d+$/);
    expect(typeof p.serviceName).toBe('string');
    expect(p.serviceName.length).toBeGreaterThan(0);
    expect(Array.isArray(p.tags)).toBe(true);
  }
  for (const span of trace.spans) {
    expect(span.traceID).toBe(trace.traceID);
    expect(span.spanID).toMatch(HEX16);
    expect(span.operationName.length).toBeGreaterThan(0);
    expect(Number.isInteger(span.startTime)).toBe(true);
    expect(Number.isInteger(span.duration)).toBe(true);
    expect(span.duration).toBeGreaterThanOrEqual(0);
    expect(trace.processes[span.processID]).toBeDefined();
    expect(Array.isArray(span.references)).toBe(true);
    for (const ref of span.references) {
      expect(['CHILD_OF', 'FOLLOWS_FROM']).toContain(ref.refType);
      expect(ref.traceID).toMatch(HEX32);
      expect(ref.spanID).toMatch(HEX16);
      if (ref.refType === 'CHILD_OF') expect(ids.has(ref.spanID)).toBe(true);
    }
    for (const tag of [...span.tags, ...span.logs.flatMap((l) => l.fields)]) {
      expect(typeof tag.key).toBe('string');
      expect(TAG_TYPES.has(tag.type)).toBe(true);
      expect(typeof tag.value).toBe(tag.type === 'bool' ? 'boolean' : tag.type === 'string' ? 'string' : 'number');
    }
    for (const log of span.logs) expect(Number.isInteger(log.timestamp)).toBe(true);
  }
}

function tag(span: JaegerTrace['spans'][number], key: string): unknown {
  return span.tags.find((t) => t.key === key)?.value;
}

describe('chain export', () => {
  let collector: TestCollector;
  let other: TestCollector;
  let f: ReturnType<typeof flow>;
  let detail: ChainDetail;

  beforeAll(async () => {
    collector = await startTestCollector();
    other = await startTestCollector();
    f = flow();
    const posted = await postHops(collector.url, f.hops);
    expect(posted.status).toBe(202);
    const got = await getJson(collector.url, `/api/chains/${f.correlationId}`);
    expect(got.status).toBe(200);
    detail = got.body;
  });

  afterAll(async () => {
    await collector?.stop();
    await other?.stop();
  });

  it('gives Jaeger one trace per trace id with the fields Jaeger UI reads', () => {
    const { data } = chainToJaeger(detail);
    expect(data.map((t) => t.traceID).sort()).toEqual([f.t1, f.t2].sort());
    for (const trace of data) expectJaegerShape(trace);
    const t1 = data.find((t) => t.traceID === f.t1)!;
    expect(Object.values(t1.processes).map((p) => p.serviceName).sort()).toEqual(['billing', 'mailer', 'orders']);
  });

  it('makes producer spans parents of their consumer spans, handlers parents of what they publish, consumer spans parents of settles', () => {
    const t1 = chainToJaeger(detail).data.find((t) => t.traceID === f.t1)!;
    const byId = new Map(t1.spans.map((s) => [s.spanID, s]));
    const parentOf = (s: (typeof t1.spans)[number]) => byId.get(s.references.find((r) => r.refType === 'CHILD_OF')?.spanID ?? '');
    const kind = (s: (typeof t1.spans)[number]) => tag(s, 'span.kind');

    const orderSend = byId.get(f.s.orderSend)!;
    expect(orderSend).toMatchObject({ operationName: 'send shop:order.created', references: [], startTime: Math.round(1_750_000_000_000.25 * 1000), duration: 1500 });
    expect(kind(orderSend)).toBe('producer');
    expect(orderSend.logs[0].fields).toContainEqual({ key: 'event', type: 'string', value: 'hoptrace.confirm' });

    const billing = t1.spans.find((s) => s.operationName === 'process shop:order.created:billing.orders')!;
    expect(kind(billing)).toBe('consumer');
    expect(parentOf(billing)).toBe(orderSend);
    expect(billing.duration).toBe(2000);
    expect(tag(billing, 'messaging.message.id')).toBe(f.order);
    expect(tag(billing, 'messaging.rabbitmq.message.delivery_tag')).toBe(1);
    // semconv 1.30+ composite destination, and the parts on their own.
    expect(tag(orderSend, 'messaging.destination.name')).toBe('shop:order.created');
    expect(tag(orderSend, 'hoptrace.exchange')).toBe('shop');
    expect(tag(billing, 'messaging.destination.name')).toBe('shop:order.created:billing.orders');
    expect(tag(billing, 'hoptrace.exchange')).toBe('shop');
    expect(tag(billing, 'hoptrace.queue')).toBe('billing.orders');

    const invoiceSend = byId.get(f.s.invoiceSend)!;
    expect(parentOf(invoiceSend)).toBe(billing);
    expect(tag(invoiceSend, 'hoptrace.causation_id')).toBe(f.order);

    const billingAck = t1.spans.find((s) => s.operationName === 'ack shop:order.created:billing.orders')!;
    expect(kind(billingAck)).toBe('client');
    expect(parentOf(billingAck)).toBe(billing);
    expect(tag(billingAck, 'error')).toBeUndefined();

    const mailer = t1.spans.find((s) => s.operationName === 'process billing:invoice.requested:mailer.invoices')!;
    expect(parentOf(mailer)).toBe(invoiceSend);
    expect(tag(mailer, 'error')).toBe(true);
    const errorLog = mailer.logs.find((l) => l.fields.some((x) => x.key === 'event' && x.value === 'error'))!;
    expect(errorLog.fields).toContainEqual({ key: 'exception.message', type: 'string', value: 'no address' });
    const nack = t1.spans.find((s) => s.operationName === 'nack billing:invoice.requested:mailer.invoices')!;
    expect(tag(nack, 'error')).toBe(true);
    expect(tag(nack, 'hoptrace.settle.requeue')).toBe(false);
  });

  it('marks an unroutable publish in another trace as an error', () => {
    const t2 = chainToJaeger(detail).data.find((t) => t.traceID === f.t2)!;
    expect(t2.spans).toHaveLength(1);
    const [audit] = t2.spans;
    expect(tag(audit, 'error')).toBe(true);
    expect(audit.logs[0].fields).toContainEqual({ key: 'hoptrace.reply_code', type: 'int64', value: 312 });
  });

  it('serves both formats from GET /api/chains/:id/export as a download', async () => {
    const jaeger = await fetch(`${collector.url}/api/chains/${f.correlationId}/export?format=jaeger`);
    expect(jaeger.status).toBe(200);
    expect(jaeger.headers.get('content-disposition')).toContain('attachment');
    const body = (await jaeger.json()) as { data: JaegerTrace[] };
    expect(body.data).toHaveLength(2);
    for (const t of body.data) expectJaegerShape(t);
    const otlp = await getJson(collector.url, `/api/chains/${f.correlationId}/export?format=otlp`);
    expect(otlp.status).toBe(200);
    expect(otlp.body.resourceSpans.length).toBe(3);
  });

  it('writes OTLP JSON with hex ids, nanosecond strings and int kinds, grouped by service', () => {
    const { resourceSpans } = chainToOtlpJson(detail);
    const services = resourceSpans.map((rs) => rs.resource.attributes.find((a) => a.key === 'service.name')?.value);
    expect(services).toEqual(expect.arrayContaining([{ stringValue: 'orders' }, { stringValue: 'billing' }, { stringValue: 'mailer' }]));
    const spans = resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans));
    for (const s of spans) {
      expect(s.traceId).toMatch(HEX32);
      expect(s.spanId).toMatch(HEX16);
      expect(s.startTimeUnixNano).toMatch(/^\d{19}$/);
      expect([3, 4, 5]).toContain(s.kind);
    }
    const orderSend = spans.find((s) => s.spanId === f.s.orderSend)!;
    expect(orderSend.startTimeUnixNano).toBe('1750000000000250000');
    expect(orderSend.kind).toBe(4);
  });

  it('round-trips the OTLP JSON export through decodeOtlpTraces to the same hops', () => {
    const body = Buffer.from(JSON.stringify(chainToOtlpJson(detail)));
    const decoded = decodeOtlpTraces(body, 'application/json');
    const key = (h: HopRecord) => [h.kind, h.messageId, h.correlationId, h.traceId, h.service, h.outcome ?? '', h.queue ?? '', h.exchange ?? ''].join('|');
    expect(decoded.map(key).sort()).toEqual(f.hops.map(key).sort());
    // Times survive to the microsecond.
    const times = (hs: HopRecord[]) => hs.map((h) => `${h.kind}|${h.messageId}|${h.ts.toFixed(3)}`).sort();
    expect(times(decoded)).toEqual(times(f.hops));
    const mailerProcess = decoded.find((h) => h.kind === 'process' && h.messageId === f.invoice)!;
    expect(mailerProcess.error).toMatchObject({ type: 'TypeError', message: 'no address' });
    expect(decoded.find((h) => h.kind === 'settle' && h.messageId === f.invoice)).toMatchObject({ outcome: 'nack', requeue: false });
    expect(decoded.find((h) => h.kind === 'return')).toMatchObject({ replyCode: 312, replyText: 'NO_ROUTE' });
    expect(decoded.find((h) => h.kind === 'confirm')).toMatchObject({ outcome: 'ack', durationMs: 1.5 });
  });

  it('round-trips without the hoptrace.exchange / hoptrace.queue attributes, from the composite destination alone', () => {
    const otlp = chainToOtlpJson(detail);
    for (const rs of otlp.resourceSpans) {
      for (const ss of rs.scopeSpans) {
        ss.scope.name = 'some-other-instrumentation';
        for (const span of ss.spans) span.attributes = span.attributes.filter((a) => a.key !== 'hoptrace.exchange' && a.key !== 'hoptrace.queue');
      }
    }
    const decoded = decodeOtlpTraces(Buffer.from(JSON.stringify(otlp)), 'application/json');
    const key = (h: HopRecord) => [h.kind, h.messageId, h.service, h.queue ?? '', h.exchange ?? ''].join('|');
    expect(decoded.map(key).sort()).toEqual(f.hops.map(key).sort());
  });

  it('is accepted by another collector on POST /v1/traces and rebuilds the same chain there', async () => {
    const res = await fetch(`${other.url}/v1/traces`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(chainToOtlpJson(detail)),
    });
    expect(res.status).toBe(200);
    const again = await getJson(other.url, `/api/chains/${f.correlationId}`);
    expect(again.status).toBe(200);
    const chain = again.body as ChainDetail;
    expect(chain.messages.map((m) => m.messageId).sort()).toEqual([f.order, f.invoice, f.audit].sort());
    expect(chain.hopCount).toBe(f.hops.length);
    expect(chain.status).toBe(detail.status);
    expect(chain.messages.find((m) => m.messageId === f.invoice)?.parentMessageId).toBe(f.order);
  });
});
