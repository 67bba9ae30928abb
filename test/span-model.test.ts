/**
 * The span model (src/contract/span-model.ts) and its inverse: a hop's
 * fields → the span the model names and attributes → collector/otlp-hops.ts
 * → the same hop fields.
 */
import { describe, expect, it } from 'vitest';
import { HOPTRACE_SCOPE, spansToHops } from '../collector/otlp-hops.ts';
import type { OtlpAttributes, OtlpResourceSpans, OtlpSpan } from '../collector/otlp-model.ts';
import type { HopRecord } from '../src/contract/hop.ts';
import { type SpanModel, deliverySpan, publishSpan, settleSpan } from '../src/contract/span-model.ts';

const TRACE = '0af7651916cd43dd8448eb211c80319c';
const T0 = 1_750_000_000_000n * 1_000_000n;

function span(model: SpanModel, spanId: string, parentSpanId: string, startMs: number, endMs = startMs): OtlpSpan {
  return {
    traceId: TRACE,
    spanId,
    parentSpanId,
    name: model.name,
    kind: model.kind + 1, // OTLP's wire value is the API's kind + 1
    startTimeUnixNano: T0 + BigInt(startMs) * 1_000_000n,
    endTimeUnixNano: T0 + BigInt(endMs) * 1_000_000n,
    attributes: new Map(Object.entries(model.attributes)) as OtlpAttributes,
    events: [],
    links: [],
    status: { code: 0, message: '' },
  };
}

function decode(spans: OtlpSpan[]): HopRecord[] {
  const request: OtlpResourceSpans[] = [
    {
      resource: new Map<string, string>([
        ['service.name', 'billing'],
        ['service.instance.id', 'vm/42'],
      ]) as OtlpAttributes,
      scopeSpans: [{ scopeName: HOPTRACE_SCOPE, scopeVersion: '0.1.0', spans }],
    },
  ];
  return spansToHops(request);
}

/** The fields of a hop the span model carries. */
function carried(h: HopRecord): Partial<HopRecord> {
  const keys = [
    'kind',
    'messageId',
    'correlationId',
    'causationId',
    'exchange',
    'routingKey',
    'queue',
    'bodySize',
    'messageType',
    'deliveryTag',
    'consumerTag',
    'redelivered',
    'deathCount',
    'outcome',
    'requeue',
    'multiple',
  ] as const;
  const out: Record<string, unknown> = {};
  for (const k of keys) if (h[k] !== undefined) out[k] = h[k];
  return out as Partial<HopRecord>;
}

describe('the span model and its inverse', () => {
  it('a publish, its delivery and a nack come back as the send, receive, process and settle hops they describe', () => {
    const message = {
      exchange: 'shop',
      routingKey: 'order.placed',
      messageId: 'm-1',
      correlationId: 'flow-1',
      causationId: 'm-0',
      bodySize: 120,
      messageType: 'order.placed',
    };
    const delivery = {
      ...message,
      queue: 'billing.orders',
      deliveryTag: 7,
      consumerTag: 'billing-worker',
      redelivered: true,
      deathCount: 2,
    };
    const hops = decode([
      span(publishSpan(message), 'a000000000000001', '', 0),
      span(deliverySpan(delivery), 'a000000000000002', 'a000000000000001', 5, 9),
      span(settleSpan({ ...delivery, outcome: 'nack', requeue: false, multiple: true }), 'a000000000000003', 'a000000000000002', 8),
    ]);
    expect(hops.map(carried)).toEqual([
      { kind: 'send', ...message },
      { kind: 'receive', ...delivery },
      { kind: 'process', ...delivery, outcome: 'ok', redelivered: undefined, deathCount: undefined },
      { kind: 'settle', ...delivery, outcome: 'nack', requeue: false, multiple: true, redelivered: undefined, deathCount: undefined },
    ].map((h) => JSON.parse(JSON.stringify(h)) as Partial<HopRecord>));
    expect(hops.map((h) => h.service)).toEqual(['billing', 'billing', 'billing', 'billing']);
    expect(hops[1]!.parentSpanId).toBe('a000000000000001');
  });

  it('names spans {operation} {destination}, with the default exchange and a queue named by its routing key', () => {
    const message = { exchange: '', routingKey: 'orders', messageId: 'm-2', correlationId: 'm-2' };
    expect(publishSpan(message).name).toBe('send orders');
    expect(deliverySpan({ ...message, queue: 'orders' }).name).toBe('process orders');
    expect(settleSpan({ ...message, queue: 'orders', outcome: 'ack' }).name).toBe('ack orders');
    expect(deliverySpan({ ...message, queue: 'orders', pull: true }).name).toBe('receive orders');
    const hops = decode([
      span(publishSpan(message), 'b000000000000001', '', 0),
      span(deliverySpan({ ...message, queue: 'orders', pull: true }), 'b000000000000002', 'b000000000000001', 3),
      span(settleSpan({ ...message, queue: 'orders', outcome: 'ack' }), 'b000000000000003', 'b000000000000002', 4),
    ]);
    expect(hops.map(carried)).toEqual([
      { kind: 'send', ...message },
      { kind: 'receive', ...message, queue: 'orders' },
      { kind: 'settle', ...message, queue: 'orders', outcome: 'ack' },
    ]);
  });

  it('leaves the exchange unsaid when it is not known, and the inverse does not invent one', () => {
    const model = publishSpan({ exchange: undefined, routingKey: 'k', messageId: 'm-3', correlationId: 'm-3' });
    expect(model.attributes['hoptrace.exchange']).toBeUndefined();
    expect(model.attributes['messaging.destination.name']).toBeUndefined();
    const [send] = decode([span(model, 'c000000000000001', '', 0)]);
    expect(send).toMatchObject({ kind: 'send', routingKey: 'k' });
    expect(send!.exchange).toBeUndefined();
  });
});
