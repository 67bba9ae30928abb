import { SpanKind } from '@opentelemetry/api';
import { OTLPTraceExporter as OTLPJsonTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { CompressionAlgorithm } from '@opentelemetry/otlp-exporter-base';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace';
import type { ChannelModel, ConsumeMessage } from 'amqplib';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ChainDetail } from '../collector/api-types.ts';
import { ConfigError, ErrorCodes } from '../src/errors.ts';
import { connect } from '../src/index.ts';
import { DEFAULT_OTLP_ENDPOINT, startTracing, type TracingHandle } from '../src/otel.ts';
import { AMQP_URL, uniqueName, waitFor } from './helpers/broker.ts';
import { getJson, startTestCollector, type TestCollector } from './helpers/collector.ts';

const silent = pino({ level: 'silent' });

/** An exporter that keeps what it got, even past shutdown (InMemorySpanExporter forgets on shutdown). */
class RecordingExporter implements SpanExporter {
  readonly spans: ReadableSpan[] = [];
  export(spans: ReadableSpan[], done: (r: ExportResult) => void): void {
    this.spans.push(...spans);
    done({ code: ExportResultCode.SUCCESS });
  }
  async shutdown(): Promise<void> {}
  async forceFlush(): Promise<void> {}
}

interface Flow {
  correlationId: string;
  firstId: string;
  secondId: string;
  q1: string;
  q2: string;
}

/**
 * orders publishes to q1; billing handles it and publishes to q2 from inside
 * an awaited helper; mailer handles that and acks. All through the hoptrace
 * wrappers on the real broker.
 */
async function runFlow(model: ChannelModel): Promise<Flow> {
  const q1 = uniqueName('otel.q1');
  const q2 = uniqueName('otel.q2');
  const ch = await model.createChannel();
  await ch.assertQueue(q1, { exclusive: true });
  await ch.assertQueue(q2, { exclusive: true });
  let second: ConsumeMessage | undefined;
  let first: ConsumeMessage | undefined;
  const tags: string[] = [];
  tags.push(
    (
      await ch.consume(q1, async (msg) => {
        if (!msg) return;
        first = msg;
        await new Promise((r) => setTimeout(r, 2));
        ch.sendToQueue(q2, Buffer.from('invoice'));
        ch.ack(msg);
      })
    ).consumerTag,
  );
  tags.push(
    (
      await ch.consume(q2, (msg) => {
        if (!msg) return;
        second = msg;
        ch.ack(msg);
      })
    ).consumerTag,
  );
  ch.sendToQueue(q1, Buffer.from('order'));
  await waitFor(() => second, 'the second message to be handled');
  for (const tag of tags) await ch.cancel(tag);
  await ch.close();
  return {
    // A chain's first message carries no x-correlation-id: its message id is the chain's.
    correlationId: String(first!.properties.headers?.['x-correlation-id'] ?? first!.properties.messageId),
    firstId: String(first!.properties.messageId),
    secondId: String(second!.properties.messageId),
    q1,
    q2,
  };
}

describe('startTracing', () => {
  let handle: TracingHandle | undefined;
  afterEach(async () => {
    await handle?.shutdown();
    handle = undefined;
  });

  it('registers an SDK under which the wrappers make one trace per flow, producer → consumer → producer → consumer', async () => {
    const memory = new InMemorySpanExporter();
    handle = startTracing({ serviceName: 'otel-test', spanProcessors: [new SimpleSpanProcessor({ exporter: memory })] });
    const model = await connect(AMQP_URL, { serviceName: 'otel-test', logger: silent });
    let flow: Flow;
    try {
      flow = await runFlow(model);
    } finally {
      await model.close();
    }
    await handle.forceFlush();
    const messaging = memory.getFinishedSpans().filter((s) => s.attributes['messaging.system'] === 'rabbitmq');
    const byMessage = (id: string, kind: SpanKind) =>
      messaging.find((s) => s.attributes['messaging.message.id'] === id && s.kind === kind)!;
    const send1 = byMessage(flow.firstId, SpanKind.PRODUCER);
    const process1 = byMessage(flow.firstId, SpanKind.CONSUMER);
    const send2 = byMessage(flow.secondId, SpanKind.PRODUCER);
    const process2 = byMessage(flow.secondId, SpanKind.CONSUMER);
    for (const s of [send1, process1, send2, process2]) expect(s).toBeDefined();

    expect(new Set(messaging.map((s) => s.spanContext().traceId)).size).toBe(1);
    expect(process1.parentSpanContext?.spanId).toBe(send1.spanContext().spanId);
    expect(send2.parentSpanContext?.spanId).toBe(process1.spanContext().spanId);
    expect(process2.parentSpanContext?.spanId).toBe(send2.spanContext().spanId);
    expect(send1.resource.attributes['service.name']).toBe('otel-test');
    // Default exchange, routing key = queue: the destination is the queue (semconv 1.30+).
    expect([send1.name, process1.name, send2.name, process2.name]).toEqual([
      `send ${flow.q1}`,
      `process ${flow.q1}`,
      `send ${flow.q2}`,
      `process ${flow.q2}`,
    ]);
    expect(process1.attributes).toMatchObject({ 'messaging.destination.name': flow.q1, 'hoptrace.exchange': '', 'hoptrace.queue': flow.q1 });
    // W3C trace context went over the wire: the handler's message carried the producer span.
  });

  it('exports what is still buffered when shut down', async () => {
    const recorder = new RecordingExporter();
    handle = startTracing({ serviceName: 'flush-test', exporter: recorder });
    const { trace } = await import('@opentelemetry/api');
    trace.getTracer('t').startSpan('buffered').end();
    // The BatchSpanProcessor holds it (its first export is seconds away) ...
    expect(recorder.spans).toHaveLength(0);
    await handle.shutdown();
    // ... and shutdown flushed it.
    expect(recorder.spans.map((s) => s.name)).toEqual(['buffered']);
  });

  it('refuses a second start with a ConfigError, and starts again after shutdown', async () => {
    handle = startTracing({ exporter: new RecordingExporter() });
    expect(() => startTracing({ exporter: new RecordingExporter() })).toThrow(ConfigError);
    try {
      startTracing();
    } catch (err) {
      expect((err as ConfigError).code).toBe(ErrorCodes.INVALID_OPTION);
    }
    await handle.shutdown();
    await handle.shutdown(); // twice is fine
    handle = startTracing({ exporter: new RecordingExporter() });
    expect(handle.enabled).toBe(true);
  });

  it('sends to OTEL_EXPORTER_OTLP_ENDPOINT, else localhost:4318, unless given an endpoint', async () => {
    const saved = { ...process.env };
    try {
      delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
      delete process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
      handle = startTracing();
      expect(handle.tracesUrl).toBe(`${DEFAULT_OTLP_ENDPOINT}/v1/traces`);
      await handle.shutdown();
      process.env.OTEL_EXPORTER_OTLP_ENDPOINT = 'http://jaeger:4318/';
      handle = startTracing();
      expect(handle.tracesUrl).toBe('http://jaeger:4318/v1/traces');
      await handle.shutdown();
      handle = startTracing({ endpoint: 'http://collector:4400' });
      expect(handle.tracesUrl).toBe('http://collector:4400/v1/traces');
    } finally {
      process.env = saved;
    }
  });

  it('rejects an endpoint that is not an http(s) URL and an empty service name', () => {
    expect(() => startTracing({ endpoint: 'localhost:4318' })).toThrow(/endpoint must be an http\(s\) URL/);
    expect(() => startTracing({ serviceName: '' })).toThrow(ConfigError);
  });
});

describe('OTLP from the real exporter to the hoptrace collector', () => {
  let collector: TestCollector;
  beforeAll(async () => {
    collector = await startTestCollector();
  });
  afterAll(async () => {
    await collector?.stop();
  });

  it('turns the spans of an instrumented flow into hops that join one chain', async () => {
    // The default pipeline: OTLP/HTTP protobuf exporter behind a BatchSpanProcessor.
    const handle = startTracing({ serviceName: 'otlp-e2e', endpoint: collector.url });
    let flow: Flow;
    try {
      const model = await connect(AMQP_URL, { serviceName: 'otlp-e2e', logger: silent });
      try {
        flow = await runFlow(model);
      } finally {
        await model.close();
      }
    } finally {
      await handle.shutdown(); // flushes the batch to the collector
    }
    const { status, body } = await getJson(collector.url, `/api/chains/${encodeURIComponent(flow.correlationId)}`);
    expect(status).toBe(200);
    const chain = body as ChainDetail;
    expect(chain.services).toEqual(['otlp-e2e']);
    expect(chain.messages.map((m) => m.messageId).sort()).toEqual([flow.firstId, flow.secondId].sort());
    const second = chain.messages.find((m) => m.messageId === flow.secondId)!;
    expect(second.parentMessageId).toBe(flow.firstId);
    for (const id of [flow.firstId, flow.secondId]) {
      const kinds = chain.hops.filter((h) => h.messageId === id).map((h) => h.kind);
      // The handlers ack before they return: settle and process come in either order.
      expect(kinds.slice(0, 2)).toEqual(['send', 'receive']);
      expect(kinds.slice(2).sort()).toEqual(['process', 'settle']);
    }
    expect(chain.status).toBe('ok');
    expect(chain.traceIds).toHaveLength(1);
    // The exchange and queue the collector read back from the spans.
    for (const h of chain.hops) {
      expect(h.exchange).toBe('');
      expect(h.queue).toBe(h.kind === 'send' ? undefined : h.messageId === flow.firstId ? flow.q1 : flow.q2);
    }
  });

  it('takes OTLP/JSON, gzipped, from the http/json exporter too', async () => {
    const exporter = new OTLPJsonTraceExporter({ url: `${collector.url}/v1/traces`, compression: CompressionAlgorithm.GZIP });
    const handle = startTracing({ serviceName: 'otlp-json-e2e', exporter });
    let flow: Flow;
    try {
      const model = await connect(AMQP_URL, { serviceName: 'otlp-json-e2e', logger: silent });
      try {
        flow = await runFlow(model);
      } finally {
        await model.close();
      }
    } finally {
      await handle.shutdown();
    }
    const { status, body } = await getJson(collector.url, `/api/chains/${encodeURIComponent(flow.correlationId)}`);
    expect(status).toBe(200);
    const chain = body as ChainDetail;
    expect(chain.messages.map((m) => m.messageId).sort()).toEqual([flow.firstId, flow.secondId].sort());
    expect(chain.hopCount).toBe(8);
  });
});
