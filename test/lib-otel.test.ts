import { ROOT_CONTEXT, SpanKind, SpanStatusCode, context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import {
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
  type SpanExporter,
  TracerProvider,
} from '@opentelemetry/sdk-trace';
import type { ConsumeMessage } from 'amqplib';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { instrument } from '../src/index.ts';
import {
  consumerDestination,
  exchangeOfProducerDestination,
  parseConsumerDestination,
  producerDestination,
} from '../src/contract/destination.ts';
import { waitFor } from './helpers/broker.ts';
import { type Fixture, capture, delay, fixture } from './lib-capture.ts';

let fx: Fixture;
let exporter: InMemorySpanExporter;
let provider: TracerProvider;

beforeAll(async () => {
  fx = await fixture();
  exporter = new InMemorySpanExporter();
  provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
  trace.setGlobalTracerProvider(provider);
  const manager = new AsyncLocalStorageContextManager();
  manager.enable();
  context.setGlobalContextManager(manager);
  propagation.setGlobalPropagator(
    new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }),
  );
});
afterAll(async () => {
  trace.disable();
  context.disable();
  propagation.disable();
  await provider.shutdown();
  await fx.cleanup();
});
beforeEach(() => exporter.reset());

const spans = (): ReadableSpan[] => exporter.getFinishedSpans();
const named = (name: string): ReadableSpan => {
  const found = spans().filter((s) => s.name === name);
  expect(found, `one span named ${name}`).toHaveLength(1);
  return found[0]!;
};

describe('spans with an OpenTelemetry SDK registered', () => {
  it('send is a PRODUCER span, process a CONSUMER child of it, the settle (ack) a CLIENT child of that, with messaging attributes', async () => {
    const cap = capture();
    const ex = await fx.exchange('lib.otel.ex', 'topic');
    const q = await fx.queue('lib.otel.q');
    await fx.admin.bindQueue(q, ex, 'order.*');
    const ch = instrument(await fx.conn.createChannel(), { logger: cap.logger });
    let headers: Record<string, unknown> = {};
    await ch.consume(q, (m) => {
      headers = m!.properties.headers!;
      ch.ack(m!);
    });
    ch.publish(ex, 'order.placed', Buffer.from('{}'));
    await waitFor(() => spans().length === 3, 'three spans');

    // semconv 1.30+: `{exchange}:{routing key}` for the producer, `…:{queue}` on the consumer side.
    const send = named(`send ${ex}:order.placed`);
    const process = named(`process ${ex}:order.placed:${q}`);
    // semconv span names are `{operation name} {destination}`: a settle span is named for its ack / nack / reject.
    const settle = named(`ack ${ex}:order.placed:${q}`);
    expect(send.kind).toBe(SpanKind.PRODUCER);
    expect(process.kind).toBe(SpanKind.CONSUMER);
    expect(settle.kind).toBe(SpanKind.CLIENT);
    expect(process.parentSpanContext?.spanId).toBe(send.spanContext().spanId);
    expect(process.spanContext().traceId).toBe(send.spanContext().traceId);
    expect(settle.parentSpanContext?.spanId).toBe(process.spanContext().spanId);
    expect(headers.traceparent).toBe(`00-${send.spanContext().traceId}-${send.spanContext().spanId}-01`);

    const hopSend = cap.hops('send')[0]!;
    expect(send.attributes).toMatchObject({
      'messaging.system': 'rabbitmq',
      'messaging.operation.type': 'send',
      'messaging.operation.name': 'send',
      'messaging.destination.name': `${ex}:order.placed`,
      'hoptrace.exchange': ex,
      'messaging.rabbitmq.destination.routing_key': 'order.placed',
      'messaging.message.id': hopSend.messageId,
      'messaging.message.conversation_id': hopSend.correlationId,
    });
    expect(send.attributes['hoptrace.queue']).toBeUndefined();
    expect(process.attributes).toMatchObject({
      'messaging.system': 'rabbitmq',
      'messaging.operation.type': 'process',
      'messaging.operation.name': 'process',
      'messaging.destination.name': `${ex}:order.placed:${q}`,
      'hoptrace.exchange': ex,
      'hoptrace.queue': q,
      'messaging.rabbitmq.destination.routing_key': 'order.placed',
      'messaging.message.id': hopSend.messageId,
      'messaging.message.conversation_id': hopSend.correlationId,
      'messaging.rabbitmq.message.delivery_tag': 1,
    });
    expect(settle.attributes).toMatchObject({
      'messaging.operation.type': 'settle',
      'messaging.operation.name': 'ack',
      'messaging.destination.name': `${ex}:order.placed:${q}`,
      'hoptrace.exchange': ex,
      'hoptrace.queue': q,
      'messaging.rabbitmq.destination.routing_key': 'order.placed',
      'messaging.rabbitmq.message.delivery_tag': 1,
    });

    // Hop ids are the spans' ids.
    expect(hopSend).toMatchObject({ traceId: send.spanContext().traceId, spanId: send.spanContext().spanId });
    expect(cap.hops('receive')[0]).toMatchObject({ spanId: process.spanContext().spanId, parentSpanId: send.spanContext().spanId });
    expect(cap.hops('process')[0]!.spanId).toBe(process.spanContext().spanId);
    expect(cap.hops('settle')[0]).toMatchObject({ spanId: settle.spanContext().spanId, parentSpanId: process.spanContext().spanId });
    await ch.close();
  });

  it('names the destination of the default exchange by the queue (routing key and queue written once), amq.default when nothing else', async () => {
    const cap = capture();
    const q = await fx.queue('lib.otel.dflt');
    const ch = instrument(await fx.conn.createChannel(), { logger: cap.logger });
    await ch.consume(q, (m) => ch.ack(m!));
    ch.sendToQueue(q, Buffer.from('x'));
    // Unroutable (no queue is named ""): only the producer span.
    ch.publish('', '', Buffer.from('nowhere'));
    await waitFor(() => spans().some((s) => s.name === `ack ${q}`) && spans().some((s) => s.name === `process ${q}`), 'the consumer spans');

    expect(named(`send ${q}`).attributes).toMatchObject({ 'messaging.destination.name': q, 'hoptrace.exchange': '', 'messaging.rabbitmq.destination.routing_key': q });
    expect(named(`process ${q}`).attributes).toMatchObject({ 'messaging.destination.name': q, 'hoptrace.exchange': '', 'hoptrace.queue': q });
    expect(named(`ack ${q}`).attributes).toMatchObject({ 'messaging.destination.name': q, 'hoptrace.exchange': '', 'hoptrace.queue': q });
    const nowhere = named('send amq.default');
    expect(nowhere.attributes).toMatchObject({ 'messaging.destination.name': 'amq.default', 'hoptrace.exchange': '' });
    expect(nowhere.attributes['messaging.rabbitmq.destination.routing_key']).toBeUndefined();
    await ch.close();
  });

  it('names a publish without routing key by the exchange alone, and get’s receive span by exchange and queue', async () => {
    const cap = capture();
    const ex = await fx.exchange('lib.otel.fan', 'fanout');
    const q = await fx.queue('lib.otel.fanq');
    await fx.admin.bindQueue(q, ex, '');
    const ch = instrument(await fx.conn.createChannel(), { logger: cap.logger });
    ch.publish(ex, '', Buffer.from('x'));
    const got = await waitFor(async () => (await ch.get(q)) || undefined, 'the message');
    ch.ack(got);
    await waitFor(() => spans().some((s) => s.name === `ack ${ex}:${q}`), 'the settle span');

    expect(named(`send ${ex}`).attributes).toMatchObject({ 'messaging.destination.name': ex, 'hoptrace.exchange': ex });
    const receive = named(`receive ${ex}:${q}`);
    expect(receive.kind).toBe(SpanKind.CLIENT);
    expect(receive.attributes).toMatchObject({
      'messaging.operation.type': 'receive',
      'messaging.destination.name': `${ex}:${q}`,
      'hoptrace.exchange': ex,
      'hoptrace.queue': q,
    });
    await ch.close();
  });

  it('a publish from the handler is a child of the consumer span, or of the user’s own span inside it', async () => {
    const cap = capture();
    const inQ = await fx.queue('lib.otel.in');
    const outQ = await fx.queue('lib.otel.out');
    const ch = instrument(await fx.conn.createChannel(), { logger: cap.logger });
    const tracer = trace.getTracer('user-code');
    await ch.consume(inQ, async (m) => {
      await delay(2);
      ch.sendToQueue(outQ, Buffer.from('direct'));
      await tracer.startActiveSpan('enrich', async (span) => {
        await delay(2);
        ch.sendToQueue(outQ, Buffer.from('nested'));
        span.end();
      });
      ch.ack(m!);
    });
    ch.sendToQueue(inQ, Buffer.from('go'));
    await waitFor(() => spans().some((s) => s.name === `ack ${inQ}`), 'the settle span');
    await waitFor(() => spans().some((s) => s.name === `process ${inQ}`), 'the consumer span');

    const process = named(`process ${inQ}`);
    const enrich = named('enrich');
    const [direct, nested] = spans().filter((s) => s.name === `send ${outQ}`);
    expect(direct!.parentSpanContext?.spanId).toBe(process.spanContext().spanId);
    expect(enrich.parentSpanContext?.spanId).toBe(process.spanContext().spanId);
    expect(nested!.parentSpanContext?.spanId).toBe(enrich.spanContext().spanId);
    expect(cap.hops('send')[2]).toMatchObject({ parentSpanId: enrich.spanContext().spanId, causationId: cap.hops('send')[0]!.messageId });
    await ch.purgeQueue(outQ);
    await ch.close();
  });

  it('with consumerSpanParent: link the consumer span starts a new trace linked to the producer', async () => {
    const cap = capture();
    const q = await fx.queue('lib.otel.link');
    const ch = instrument(await fx.conn.createChannel(), { logger: cap.logger, consumerSpanParent: 'link' });
    await ch.consume(q, (m) => ch.ack(m!));
    ch.sendToQueue(q, Buffer.from('x'));
    await waitFor(() => spans().some((s) => s.name === `process ${q}`), 'the consumer span');

    const send = named(`send ${q}`);
    const process = named(`process ${q}`);
    expect(process.parentSpanContext).toBeUndefined();
    expect(process.spanContext().traceId).not.toBe(send.spanContext().traceId);
    expect(process.links).toHaveLength(1);
    expect(process.links[0]!.context.spanId).toBe(send.spanContext().spanId);
    const receive = cap.hops('receive')[0]!;
    expect(receive.traceId).toBe(process.spanContext().traceId);
    expect(receive.parentSpanId).toBeUndefined();
    // The chain is still one chain.
    expect(receive.correlationId).toBe(cap.hops('send')[0]!.correlationId);
    await ch.close();
  });

  it('a failing handler marks the consumer span ERROR with error.type', async () => {
    const cap = capture();
    const q = await fx.queue('lib.otel.fail');
    const ch = instrument(await fx.conn.createChannel(), { logger: cap.logger });
    ch.on('handler-error', () => {});
    await ch.consume(q, (m) => {
      ch.nack(m!, false, false);
      throw new SyntaxError('bad json');
    });
    ch.sendToQueue(q, Buffer.from('{'));
    await waitFor(() => spans().some((s) => s.name === `process ${q}`), 'the consumer span');
    const process = named(`process ${q}`);
    expect(process.status.code).toBe(SpanStatusCode.ERROR);
    expect(process.attributes['error.type']).toBe('SyntaxError');
    expect(named(`nack ${q}`).attributes).toMatchObject({ 'messaging.operation.name': 'nack', 'hoptrace.settle.requeue': false });
    await ch.close();
  });

  it('a delivery never settled has its consumer span ended when the channel closes', async () => {
    const cap = capture();
    const q = await fx.queue('lib.otel.close');
    const ch = instrument(await fx.conn.createChannel(), { logger: cap.logger });
    let handled = 0;
    await ch.consume(q, () => void handled++);
    ch.sendToQueue(q, Buffer.from('x'));
    await waitFor(() => handled === 1, 'the handler');
    await delay(20);
    expect(spans().some((s) => s.name === `process ${q}`)).toBe(false);
    await ch.close();
    const process = named(`process ${q}`);
    expect(process.events.map((e) => e.name)).toContain('hoptrace.channel_closed');
  });

  it('a delivery never settled has its consumer span ended after settleTimeoutMs, and a late ack is still recorded', async () => {
    const cap = capture();
    const q = await fx.queue('lib.otel.timeout');
    const ch = instrument(await fx.conn.createChannel(), { logger: cap.logger, settleTimeoutMs: 100 });
    const held: ConsumeMessage[] = [];
    await ch.consume(q, (m) => void held.push(m!));
    ch.sendToQueue(q, Buffer.from('x'));
    await waitFor(() => spans().some((s) => s.name === `process ${q}`), 'the timed-out consumer span');
    expect(named(`process ${q}`).events.map((e) => e.name)).toContain('hoptrace.settle_timeout');
    expect(cap.warnings().some((w) => /not settled after 100 ms/.test(w.msg ?? ''))).toBe(true);
    ch.ack(held[0]!);
    expect(cap.hops('settle')[0]).toMatchObject({ outcome: 'ack', messageId: held[0]!.properties.messageId });
    await ch.close();
  });

  it('baggage set by the producer is visible in the consumer’s handler', async () => {
    const cap = capture();
    const q = await fx.queue('lib.otel.baggage');
    const ch = instrument(await fx.conn.createChannel(), { logger: cap.logger });
    let seen: string | undefined;
    await ch.consume(q, (m) => {
      seen = propagation.getActiveBaggage()?.getEntry('tenant')?.value;
      ch.ack(m!);
    });
    const bag = propagation.createBaggage({ tenant: { value: 'acme' } });
    context.with(propagation.setBaggage(ROOT_CONTEXT, bag), () => ch.sendToQueue(q, Buffer.from('x')));
    await waitFor(() => cap.hops('settle').length === 1, 'the settle');
    expect(seen).toBe('acme');
    await ch.close();
  });

  it('a throwing exporter (through the tracerProvider option) breaks neither publish nor consume', async () => {
    const cap = capture();
    const broken: SpanExporter = {
      export: () => {
        throw new Error('exporter down');
      },
      shutdown: async () => {},
    };
    const own = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter: broken })] });
    const q = await fx.queue('lib.otel.broken');
    const ch = instrument(await fx.conn.createChannel(), { logger: cap.logger, tracerProvider: own });
    const got: string[] = [];
    await ch.consume(q, (m) => {
      got.push(m!.content.toString());
      ch.ack(m!);
    });
    expect(() => ch.sendToQueue(q, Buffer.from('still flows'))).not.toThrow();
    await waitFor(() => cap.hops('settle').length === 1, 'the settle');
    expect(got).toEqual(['still flows']);
    expect(cap.hops('process')[0]!.outcome).toBe('ok');
    expect(cap.hops('send')[0]!.traceId).toMatch(/^[0-9a-f]{32}$/);
    await ch.close();
    await own.shutdown();
  });
});

describe('messaging.destination.name (semconv 1.30+ RabbitMQ note [1])', () => {
  it('producer: exchange:key, whichever is non-empty, amq.default for the default exchange without a key', () => {
    expect(producerDestination('shop', 'order.placed')).toBe('shop:order.placed');
    expect(producerDestination('', 'orders')).toBe('orders'); // sendToQueue('orders')
    expect(producerDestination('', '')).toBe('amq.default');
    expect(producerDestination('logs', '')).toBe('logs');
  });

  it('consumer: exchange:key:queue, empty parts left out, a key equal to the queue written once', () => {
    expect(consumerDestination('shop', 'order.placed', 'billing')).toBe('shop:order.placed:billing');
    expect(consumerDestination('', 'orders', 'orders')).toBe('orders');
    expect(consumerDestination('shop', 'billing', 'billing')).toBe('shop:billing');
    expect(consumerDestination('logs', '', 'audit')).toBe('logs:audit');
    expect(consumerDestination('', 'retry', 'orders')).toBe('retry:orders');
  });

  it('parses back what it composes, and reads a pre-1.30 bare exchange as the exchange', () => {
    const producers: [string, string][] = [['shop', 'order.placed'], ['', 'orders'], ['', ''], ['logs', ''], ['x', 'x']];
    for (const [exchange, key] of producers) {
      expect(exchangeOfProducerDestination(producerDestination(exchange, key), key || undefined)).toBe(exchange);
    }
    const consumers: [string, string, string][] = [
      ['shop', 'order.placed', 'billing'],
      ['', 'orders', 'orders'],
      ['shop', 'billing', 'billing'],
      ['', 'retry', 'orders'],
      ['b', 'b', 'q'],
    ];
    for (const [exchange, key, queue] of consumers) {
      const d = consumerDestination(exchange, key, queue);
      expect(parseConsumerDestination(d, key, queue), `${d} knowing the queue`).toEqual({ exchange, queue });
      expect(parseConsumerDestination(d, key, undefined), `${d} from the routing key alone`).toEqual({ exchange, queue });
    }
    expect(parseConsumerDestination('logs:audit', undefined, 'audit')).toEqual({ exchange: 'logs', queue: 'audit' });
    // pre-1.30: the destination is the exchange
    expect(exchangeOfProducerDestination('shop', 'order.placed')).toBe('shop');
    expect(parseConsumerDestination('shop', 'order.placed', 'billing')).toEqual({ exchange: 'shop', queue: 'billing' });
    expect(parseConsumerDestination('shop', 'order.placed', undefined)).toEqual({ exchange: 'shop' });
  });
});
