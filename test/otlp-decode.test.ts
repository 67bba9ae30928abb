import { describe, expect, it } from 'vitest';
import { decodeOtlpRequest, decodeOtlpTraces } from '../collector/otlp-decode.ts';
import { checkHopRecord } from '../collector/hop-schema.ts';
import { OtlpLimits } from '../collector/otlp-model.ts';
import { ErrorCodes, ValidationError } from '../collector/errors.ts';
import type { HopRecord } from '../src/contract/hop.ts';
import { extract, inject, jsonOf, protobufOf, ROOT_CONTEXT, SpanKind, SpanStatusCode, spanLab, trace } from './helpers/otel-spans.ts';

const PB = 'application/x-protobuf';
const JSON_TYPE = 'application/json';

/**
 * A three-hop flow in the current semantic conventions, on real SDK spans:
 * orders publishes `order.created`; billing consumes it, publishes
 * `invoice.requested` from inside the handler; a failing consumer; plus a
 * span that has nothing to do with messaging. Destinations are the semconv
 * 1.30+ composites (`{exchange}:{routing key}`, `…:{queue}`), without
 * hoptrace's own `hoptrace.exchange` / `hoptrace.queue`.
 */
function currentSemconvFlow() {
  const orders = spanLab('orders', { 'host.name': 'box', 'process.pid': 42 });
  const billing = spanLab('billing');
  const ot = orders.provider.getTracer('app');
  const bt = billing.provider.getTracer('app');

  const send = ot.startSpan('send shop:order.created', {
    kind: SpanKind.PRODUCER,
    attributes: {
      'messaging.system': 'rabbitmq',
      'messaging.operation.type': 'send',
      'messaging.destination.name': 'shop:order.created',
      'messaging.rabbitmq.destination.routing_key': 'order.created',
      'messaging.message.id': 'msg-1',
      'messaging.message.body.size': 17,
    },
  });
  const headers = inject(send);
  send.end();

  const process = bt.startSpan(
    'process shop:order.created:billing.orders',
    {
      kind: SpanKind.CONSUMER,
      attributes: {
        'messaging.system': 'rabbitmq',
        'messaging.operation.type': 'process',
        'messaging.destination.name': 'shop:order.created:billing.orders',
        'messaging.rabbitmq.destination.routing_key': 'order.created',
        'messaging.message.id': 'msg-1',
        'messaging.rabbitmq.message.delivery_tag': 3,
      },
    },
    extract(headers),
  );
  const db = bt.startSpan('SELECT invoices', { kind: SpanKind.CLIENT, attributes: { 'db.system': 'postgresql' } }, trace.setSpan(ROOT_CONTEXT, process));
  db.end();
  const child = bt.startSpan(
    'send billing:invoice.requested',
    {
      kind: SpanKind.PRODUCER,
      attributes: {
        'messaging.system': 'rabbitmq',
        'messaging.operation.type': 'send',
        'messaging.destination.name': 'billing:invoice.requested',
        'messaging.rabbitmq.destination.routing_key': 'invoice.requested',
        'messaging.message.id': 'msg-2',
      },
    },
    trace.setSpan(ROOT_CONTEXT, process),
  );
  child.end();
  process.end();

  const failing = bt.startSpan(
    'process shop:order.created:billing.orders',
    {
      kind: SpanKind.CONSUMER,
      attributes: { 'messaging.system': 'rabbitmq', 'messaging.operation.type': 'process', 'messaging.message.id': 'msg-1' },
    },
    extract(headers),
  );
  const err = new TypeError('price is not a number');
  failing.recordException(err);
  failing.setStatus({ code: SpanStatusCode.ERROR, message: err.message });
  failing.setAttribute('error.type', 'TypeError');
  failing.end();

  return { spans: [...orders.spans(), ...billing.spans()], traceId: send.spanContext().traceId, send, process, child, failing };
}

function byKind(hops: HopRecord[], kind: HopRecord['kind']): HopRecord[] {
  return hops.filter((h) => h.kind === kind);
}

function expectValidationError(fn: () => unknown, code: string, status = 400): ValidationError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).code).toBe(code);
    expect((err as ValidationError).statusCode).toBe(status);
    return err as ValidationError;
  }
  throw new Error('expected a ValidationError');
}

describe('decodeOtlpTraces', () => {
  it('decodes the protobuf and the JSON an OpenTelemetry exporter sends to the same hops', () => {
    const { spans } = currentSemconvFlow();
    const fromProtobuf = decodeOtlpTraces(protobufOf(spans), PB);
    const fromJson = decodeOtlpTraces(jsonOf(spans), JSON_TYPE);
    expect(fromProtobuf.length).toBeGreaterThan(0);
    for (const hop of fromProtobuf) expect(checkHopRecord(hop)).toMatchObject({ ok: true });
    expect(fromJson).toEqual(fromProtobuf);
    // the model too, attribute for attribute
    expect(decodeOtlpRequest(jsonOf(spans), 'application/json; charset=utf-8')).toEqual(decodeOtlpRequest(protobufOf(spans), PB));
  });

  it('maps a producer span to a send hop and a consumer span to receive at its start and process at its end', () => {
    const { spans, traceId, send, process } = currentSemconvFlow();
    const hops = decodeOtlpTraces(protobufOf(spans), PB);

    const [sendHop] = byKind(hops, 'send').filter((h) => h.messageId === 'msg-1');
    expect(sendHop).toMatchObject({
      v: 1,
      service: 'orders',
      instance: 'box/42', // host/pid, as the wrappers name instances
      traceId,
      spanId: send.spanContext().spanId,
      messageId: 'msg-1',
      exchange: 'shop',
      routingKey: 'order.created',
      bodySize: 17,
    });
    expect(sendHop.parentSpanId).toBeUndefined();

    const consumerHops = hops.filter((h) => h.spanId === process.spanContext().spanId);
    expect(consumerHops.map((h) => h.kind)).toEqual(['receive', 'process']);
    const [receive, processed] = consumerHops;
    expect(receive).toMatchObject({
      service: 'billing',
      instance: 'billing-1', // no host/pid: service.instance.id
      traceId,
      parentSpanId: send.spanContext().spanId,
      messageId: 'msg-1',
      // Both from the composite destination: the flow's spans carry no hoptrace.queue / hoptrace.exchange.
      queue: 'billing.orders',
      deliveryTag: 3,
      exchange: 'shop',
    });
    expect(processed.outcome).toBe('ok');
    expect(processed.ts).toBeGreaterThanOrEqual(receive.ts);
    expect(processed.durationMs).toBeCloseTo(processed.ts - receive.ts, 6);
    // No settle: nothing in a plain semconv process span says how the message was settled.
    expect(consumerHops.some((h) => h.kind === 'settle')).toBe(false);
  });

  it('skips spans that are not messaging spans', () => {
    const { spans } = currentSemconvFlow();
    const hops = decodeOtlpTraces(protobufOf(spans), PB);
    const db = spans.find((s) => s.name === 'SELECT invoices')!;
    expect(hops.some((h) => h.spanId === db.spanContext().spanId)).toBe(false);
    // 2 sends + (receive, process) × 2 consumer spans
    expect(hops).toHaveLength(6);
  });

  it('uses the trace id as the correlation id when no conversation id was seen', () => {
    const { spans, traceId } = currentSemconvFlow();
    const hops = decodeOtlpTraces(protobufOf(spans), PB);
    for (const hop of hops) expect(hop.correlationId).toBe(traceId);
  });

  it('takes the correlation id from hoptrace.correlation_id or messaging.message.conversation_id when present', () => {
    const lab = spanLab('svc');
    const t = lab.provider.getTracer('t');
    t.startSpan('send x', { kind: SpanKind.PRODUCER, attributes: { 'messaging.system': 'rabbitmq', 'messaging.message.conversation_id': 'conv-7' } }).end();
    t.startSpan('send y', {
      kind: SpanKind.PRODUCER,
      attributes: { 'messaging.system': 'rabbitmq', 'messaging.message.conversation_id': 'conv-7', 'hoptrace.correlation_id': 'chain-1' },
    }).end();
    const hops = decodeOtlpTraces(protobufOf(lab.spans()), PB);
    expect(hops.map((h) => h.correlationId)).toEqual(['conv-7', 'chain-1']);
  });

  it('gives a publish made inside a handler the handled message as causation id', () => {
    const { spans, child } = currentSemconvFlow();
    const hops = decodeOtlpTraces(protobufOf(spans), PB);
    const hop = hops.find((h) => h.spanId === child.spanContext().spanId)!;
    expect(hop).toMatchObject({ kind: 'send', messageId: 'msg-2', causationId: 'msg-1', exchange: 'billing' });
  });

  it('records a failed consumer span as a process error with the exception event', () => {
    const { spans, failing } = currentSemconvFlow();
    const hops = decodeOtlpTraces(protobufOf(spans), PB);
    const processed = hops.find((h) => h.spanId === failing.spanContext().spanId && h.kind === 'process')!;
    expect(processed.outcome).toBe('error');
    expect(processed.error).toMatchObject({ type: 'TypeError', message: 'price is not a number' });
    expect(processed.error?.stack).toContain('price is not a number');
  });

  it('links producer and consumer by a made-up message id when the spans carry none', () => {
    const lab = spanLab('p');
    const t = lab.provider.getTracer('t');
    const send = t.startSpan('publish ex', { kind: SpanKind.PRODUCER, attributes: { 'messaging.system': 'rabbitmq' } });
    const headers = inject(send);
    send.end();
    // Serialized in separate requests, as two services would: no shared batch to look things up in.
    const consumerLab = spanLab('c');
    consumerLab.provider
      .getTracer('t')
      .startSpan('q process', { kind: SpanKind.CONSUMER, attributes: { 'messaging.system': 'rabbitmq' } }, extract(headers))
      .end();
    const [sendHop] = decodeOtlpTraces(protobufOf(lab.spans()), PB);
    const consumerHops = decodeOtlpTraces(protobufOf(consumerLab.spans()), PB);
    expect(sendHop.messageId).toMatch(/^otel:/);
    expect(consumerHops.map((h) => h.messageId)).toEqual([sendHop.messageId, sendHop.messageId]);
    // A consumer that only links to the producer (another trace) still names the same message, and its chain.
    const linked = spanLab('l');
    linked.provider
      .getTracer('t')
      .startSpan('q process', {
        kind: SpanKind.CONSUMER,
        attributes: { 'messaging.system': 'rabbitmq', 'messaging.operation.type': 'process' },
        links: [{ context: send.spanContext() }],
      })
      .end();
    const linkedHops = decodeOtlpTraces(jsonOf(linked.spans()), JSON_TYPE);
    expect(linkedHops[0].traceId).not.toBe(sendHop.traceId);
    expect(linkedHops[0].messageId).toBe(sendHop.messageId);
    expect(linkedHops[0].correlationId).toBe(sendHop.correlationId);
  });

  it('reads the legacy attribute names the official amqplib instrumentation writes, and its settle-at-end spans', () => {
    const lab = spanLab('legacy');
    const t = lab.provider.getTracer('@opentelemetry/instrumentation-amqplib', '0.71.0');
    const send = t.startSpan('publish <default>', {
      kind: SpanKind.PRODUCER,
      attributes: {
        'messaging.system': 'rabbitmq',
        'messaging.destination': '',
        'messaging.destination_kind': 'topic',
        'messaging.rabbitmq.routing_key': 'work',
        'messaging.message_id': 'legacy-1',
        'messaging.conversation_id': 'conv-legacy',
      },
    });
    const headers = inject(send);
    send.end();
    const consume = t.startSpan(
      'work process',
      {
        kind: SpanKind.CONSUMER,
        attributes: {
          'messaging.system': 'rabbitmq',
          'messaging.destination': '',
          'messaging.rabbitmq.routing_key': 'work',
          'messaging.operation': 'process',
          'messaging.message_id': 'legacy-1',
          'messaging.conversation_id': 'conv-legacy',
        },
      },
      extract(headers),
    );
    consume.setStatus({ code: SpanStatusCode.ERROR, message: 'nack called on message without requeue' });
    consume.end();
    const hops = decodeOtlpTraces(protobufOf(lab.spans()), PB);
    expect(hops.map((h) => h.kind)).toEqual(['send', 'receive', 'process', 'settle']);
    for (const h of hops) expect(h).toMatchObject({ messageId: 'legacy-1', correlationId: 'conv-legacy', exchange: '', routingKey: 'work' });
    expect(hops[1].queue).toBe('work');
    // The error status only reported the nack: the handler did not fail, the settle says what happened.
    expect(hops[2].outcome).toBe('ok');
    expect(hops[3]).toMatchObject({ outcome: 'nack', requeue: false });
  });

  it('recovers exchange and queue from semconv 1.30+ destinations of the default exchange, with or without a routing key', () => {
    const lab = spanLab('dflt');
    const t = lab.provider.getTracer('some-instrumentation');
    const base = { 'messaging.system': 'rabbitmq' };
    const span = (name: string, kind: SpanKind, attributes: Record<string, string>) => t.startSpan(name, { kind, attributes: { ...base, ...attributes } }).end();
    const key = 'messaging.rabbitmq.destination.routing_key';
    span('send orders', SpanKind.PRODUCER, { 'messaging.operation.type': 'send', 'messaging.destination.name': 'orders', [key]: 'orders', 'messaging.message.id': 'a' });
    span('send amq.default', SpanKind.PRODUCER, { 'messaging.operation.type': 'send', 'messaging.destination.name': 'amq.default', 'messaging.message.id': 'b' });
    span('send logs', SpanKind.PRODUCER, { 'messaging.operation.type': 'send', 'messaging.destination.name': 'logs', 'messaging.message.id': 'c' });
    // key and queue equal: written once
    span('process orders', SpanKind.CONSUMER, { 'messaging.operation.type': 'process', 'messaging.destination.name': 'orders', [key]: 'orders', 'messaging.message.id': 'a' });
    span('process shop:billing', SpanKind.CONSUMER, { 'messaging.operation.type': 'process', 'messaging.destination.name': 'shop:billing', [key]: 'billing', 'messaging.message.id': 'd' });
    span('settle shop:order.created:billing', SpanKind.CLIENT, {
      'messaging.operation.type': 'settle',
      'messaging.operation.name': 'ack',
      'messaging.destination.name': 'shop:order.created:billing',
      [key]: 'order.created',
      'messaging.message.id': 'e',
    });
    const hops = decodeOtlpTraces(protobufOf(lab.spans()), PB);
    const where = (id: string, kind: HopRecord['kind']) => {
      const h = hops.find((x) => x.messageId === id && x.kind === kind)!;
      return { exchange: h.exchange, queue: h.queue };
    };
    expect(where('a', 'send')).toEqual({ exchange: '', queue: undefined });
    expect(where('b', 'send')).toEqual({ exchange: '', queue: undefined });
    expect(where('c', 'send')).toEqual({ exchange: 'logs', queue: undefined });
    expect(where('a', 'receive')).toEqual({ exchange: '', queue: 'orders' });
    expect(where('d', 'process')).toEqual({ exchange: 'shop', queue: 'billing' });
    expect(where('e', 'settle')).toEqual({ exchange: 'shop', queue: 'billing' });
  });

  it('prefers hoptrace.exchange / hoptrace.queue, and reads pre-1.30 and older wrapper spans as before', () => {
    const lab = spanLab('mixed');
    const key = 'messaging.rabbitmq.destination.routing_key';
    const consumer = { 'messaging.system': 'rabbitmq', 'messaging.operation.type': 'process' };
    // A name the composite could not tell apart: the explicit attributes say it.
    lab.provider.getTracer('hoptrace').startSpan('process a:b:c:q', {
      kind: SpanKind.CONSUMER,
      attributes: { ...consumer, 'messaging.destination.name': 'a:b:c:q', [key]: 'c', 'hoptrace.exchange': 'a:b', 'hoptrace.queue': 'q', 'messaging.message.id': 'new' },
    }).end();
    // The wrappers before hoptrace.exchange: the consumer span named the queue, the producer span the exchange.
    lab.provider.getTracer('hoptrace').startSpan('process jobs', {
      kind: SpanKind.CONSUMER,
      attributes: { ...consumer, 'messaging.destination.name': 'jobs', [key]: 'jobs', 'messaging.message.id': 'old' },
    }).end();
    lab.provider.getTracer('hoptrace').startSpan('send shop', {
      kind: SpanKind.PRODUCER,
      attributes: { 'messaging.system': 'rabbitmq', 'messaging.operation.type': 'send', 'messaging.destination.name': 'shop', [key]: 'shop', 'messaging.message.id': 'old-send' },
    }).end();
    // semconv 1.26–1.29: the destination is the bare exchange.
    lab.provider.getTracer('other').startSpan('process shop', {
      kind: SpanKind.CONSUMER,
      attributes: { ...consumer, 'messaging.destination.name': 'shop', [key]: 'order.created', 'messaging.message.id': 'v126' },
    }).end();
    const hops = decodeOtlpTraces(protobufOf(lab.spans()), PB);
    const receive = (id: string) => hops.find((h) => h.messageId === id && h.kind !== 'send')!;
    expect(receive('new')).toMatchObject({ exchange: 'a:b', queue: 'q' });
    expect(receive('old')).toMatchObject({ queue: 'jobs' });
    expect(receive('old').exchange).toBeUndefined();
    expect(hops.find((h) => h.messageId === 'old-send')).toMatchObject({ kind: 'send', exchange: 'shop' });
    expect(receive('v126')).toMatchObject({ exchange: 'shop' });
    expect(receive('v126').queue).toBeUndefined();
  });

  it('maps explicit settle spans and receive spans', () => {
    const lab = spanLab('s');
    const t = lab.provider.getTracer('t');
    const attrs = { 'messaging.system': 'rabbitmq', 'messaging.message.id': 'm' };
    t.startSpan('receive q', { kind: SpanKind.CONSUMER, attributes: { ...attrs, 'messaging.operation.type': 'receive' } }).end();
    t.startSpan('reject q', { kind: SpanKind.CLIENT, attributes: { ...attrs, 'messaging.operation.type': 'settle', 'messaging.operation.name': 'reject' } }).end();
    t.startSpan('weird q', { kind: SpanKind.CLIENT, attributes: { ...attrs, 'messaging.operation.type': 'settle', 'messaging.operation.name': 'peek' } }).end();
    t.startSpan('client q', { kind: SpanKind.CLIENT, attributes: { ...attrs } }).end();
    const hops = decodeOtlpTraces(protobufOf(lab.spans()), PB);
    expect(hops.map((h) => [h.kind, h.outcome])).toEqual([
      ['receive', undefined],
      ['settle', 'reject'],
    ]);
  });

  it('rejects garbage and truncated protobuf with a 400 ValidationError', () => {
    const { spans } = currentSemconvFlow();
    const good = protobufOf(spans);
    expectValidationError(() => decodeOtlpTraces(good.subarray(0, Math.floor(good.length / 2)), PB), ErrorCodes.INVALID_BODY);
    expectValidationError(() => decodeOtlpTraces(Buffer.from('{"resourceSpans": []}'), PB), ErrorCodes.INVALID_BODY);
    expectValidationError(() => decodeOtlpTraces(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]), PB), ErrorCodes.INVALID_BODY);
    expectValidationError(() => decodeOtlpTraces(Buffer.from([0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]), PB), ErrorCodes.INVALID_BODY);
  });

  it('never throws anything but a ValidationError on mutated or random bytes', () => {
    const good = protobufOf(currentSemconvFlow().spans);
    let seed = 0x2545f491;
    const rand = () => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) / 2 ** 32;
    };
    let decoded = 0;
    let rejected = 0;
    for (let i = 0; i < 400; i++) {
      const body = i % 2 === 0 ? Buffer.from(good) : Buffer.alloc(1 + Math.floor(rand() * 300));
      if (i % 2 === 0) for (let k = 0; k < 3; k++) body[Math.floor(rand() * body.length)] = Math.floor(rand() * 256);
      else for (let k = 0; k < body.length; k++) body[k] = Math.floor(rand() * 256);
      try {
        const hops = decodeOtlpTraces(body, PB);
        // Whatever decodes is a valid hop record: the collector's ingest never 400s on our output.
        for (const hop of hops) expect(checkHopRecord(hop)).toMatchObject({ ok: true });
        decoded++;
      } catch (err) {
        expect(err).toBeInstanceOf(ValidationError);
        rejected++;
      }
    }
    expect(decoded + rejected).toBe(400);
    expect(rejected).toBeGreaterThan(0);
  });

  it('rejects bad JSON, wrong field types and deep nesting with a 400 naming the problem', () => {
    expectValidationError(() => decodeOtlpTraces(Buffer.from('{"resourceSpans": ['), JSON_TYPE), ErrorCodes.INVALID_BODY);
    const e = expectValidationError(
      () => decodeOtlpTraces(Buffer.from(JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans: [{ traceId: 'xyz' }] }] }] })), JSON_TYPE),
      ErrorCodes.INVALID_BODY,
    );
    expect(e.message).toContain('resourceSpans[0].scopeSpans[0].spans[0].traceId');
    expectValidationError(() => decodeOtlpTraces(Buffer.from('['.repeat(200_000)), JSON_TYPE), ErrorCodes.INVALID_BODY);
    expectValidationError(() => decodeOtlpTraces(Buffer.from('"just a string"'), JSON_TYPE), ErrorCodes.INVALID_BODY);
  });

  it('refers other content types to 415 and oversized batches to 413', () => {
    expectValidationError(() => decodeOtlpTraces(Buffer.from('x'), 'text/plain'), ErrorCodes.UNSUPPORTED_MEDIA_TYPE, 415);
    const many = { resourceSpans: [{ scopeSpans: [{ spans: Array.from({ length: OtlpLimits.MAX_SPANS + 1 }, () => ({})) }] }] };
    expectValidationError(() => decodeOtlpTraces(Buffer.from(JSON.stringify(many)), JSON_TYPE), ErrorCodes.PAYLOAD_TOO_LARGE, 413);
  });

  it('caps attribute counts, string lengths and value nesting', () => {
    const lab = spanLab('caps');
    const attributes: Record<string, string> = { 'messaging.system': 'rabbitmq', 'messaging.message.id': 'x'.repeat(100_000) };
    for (let i = 0; i < 1000; i++) attributes[`a.${i}`] = 'v';
    lab.provider.getTracer('t').startSpan('send big', { kind: SpanKind.PRODUCER, attributes }).end();
    const body = protobufOf(lab.spans());
    const [rs] = decodeOtlpRequest(body, PB);
    expect(rs.scopeSpans[0].spans[0].attributes.size).toBeLessThanOrEqual(OtlpLimits.MAX_ATTRIBUTES);
    const [hop] = decodeOtlpTraces(body, PB);
    expect(hop.messageId.length).toBeLessThanOrEqual(1024);
    expect(checkHopRecord(hop)).toMatchObject({ ok: true });

    let nested: unknown = { stringValue: 'deep' };
    for (let i = 0; i < 50; i++) nested = { arrayValue: { values: [nested] } };
    const json = {
      resourceSpans: [
        {
          resource: { attributes: [{ key: 'service.name', value: { stringValue: 'n' } }] },
          scopeSpans: [
            {
              spans: [
                {
                  traceId: '0af7651916cd43dd8448eb211c80319c',
                  spanId: 'b7ad6b7169203331',
                  name: 'send n',
                  kind: 4,
                  startTimeUnixNano: '1700000000000000000',
                  endTimeUnixNano: '1700000000001000000',
                  attributes: [
                    { key: 'messaging.system', value: { stringValue: 'rabbitmq' } },
                    { key: 'nested', value: nested },
                    { key: 'big', value: { intValue: '9223372036854775807' } },
                  ],
                },
              ],
            },
          ],
        },
      ],
    };
    const [decoded] = decodeOtlpRequest(Buffer.from(JSON.stringify(json)), JSON_TYPE);
    const span = decoded.scopeSpans[0].spans[0];
    expect(span.attributes.get('big')).toBe('9223372036854775807');
    let depth = 0;
    for (let v = span.attributes.get('nested'); Array.isArray(v); v = v[0]) depth++;
    expect(depth).toBe(OtlpLimits.MAX_VALUE_DEPTH);
    expect(decodeOtlpTraces(Buffer.from(JSON.stringify(json)), JSON_TYPE)[0]).toMatchObject({ kind: 'send', ts: 1_700_000_000_000, service: 'n' });
  });
});
