/**
 * A service that knows nothing of hoptrace — plain amqplib with the official
 * `@opentelemetry/instrumentation-amqplib` — exports OTLP to the collector,
 * and its messages become chains there. It runs in a child process, as such a
 * service would: the instrumentation patches amqplib when it is required,
 * which has already happened in this test process.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChainDetail, MessageDetail } from '../collector/api-types.ts';
import { adoptKnownCorrelations, decodeOtlpTraces, hasTraceCorrelation } from '../collector/otlp-decode.ts';
import type { AnyHopRecord } from '../src/contract/hop.ts';
import { connect } from '../src/index.ts';
import { AMQP_URL, connectBroker, uniqueName, waitFor } from './helpers/broker.ts';
import { getJson, postHops, startTestCollector, type TestCollector } from './helpers/collector.ts';
import { jsonOf, spanLab, SpanKind, inject, extract } from './helpers/otel-spans.ts';

/** The child: startTracing with the official instrumentation, then amqplib, then a small flow. */
const SERVICE = String.raw`
import { createRequire } from 'node:module';
import { startTracing } from './src/otel.ts';
const require = createRequire(process.cwd() + '/');
const { AmqplibInstrumentation } = require('@opentelemetry/instrumentation-amqplib');
const tracing = startTracing({ serviceName: 'legacy-shop', endpoint: process.env.COLLECTOR_URL,
  instrumentations: [new AmqplibInstrumentation()] });
const amqp = require('amqplib'); // after the instrumentation: it patches on require
const { QUEUE, MODE } = process.env;
const conn = await amqp.connect(process.env.AMQP_URL);
const ch = await conn.createChannel();
const seen = [];
let done;
const finished = new Promise((r) => (done = r));
const { consumerTag } = await ch.consume(QUEUE, (msg) => {
  seen.push(msg.properties.messageId);
  if (msg.properties.messageId.endsWith('-bad')) ch.nack(msg, false, false); else ch.ack(msg);
  if (seen.length === Number(process.env.EXPECT)) done();
});
if (MODE === 'produce-and-consume') {
  ch.sendToQueue(QUEUE, Buffer.from('a'), { messageId: process.env.ID + '-ok', correlationId: process.env.CORR });
  ch.sendToQueue(QUEUE, Buffer.from('b'), { messageId: process.env.ID + '-bad' });
}
process.stdout.write('ready\n');
await finished;
await ch.cancel(consumerTag);
await ch.close();
await conn.close();
await tracing.shutdown();
process.stdout.write(JSON.stringify({ seen }) + '\n');
`;

interface ChildResult {
  seen: string[];
}

function runService(env: Record<string, string>, onReady?: () => Promise<void>): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', SERVICE], {
      cwd: process.cwd(),
      env: { ...process.env, AMQP_URL, OTEL_SDK_DISABLED: '', OTEL_LOG_LEVEL: 'error', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    let readySent = false;
    const timer = setTimeout(() => child.kill('SIGKILL'), 25_000);
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (!readySent && out.includes('ready\n')) {
        readySent = true;
        onReady?.().catch((e: unknown) => {
          child.kill('SIGKILL');
          reject(e as Error);
        });
      }
    });
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('close', (code) => {
      clearTimeout(timer);
      const last = out.trim().split('\n').at(-1) ?? '';
      if (code !== 0 || !last.startsWith('{')) reject(new Error(`instrumented service exited ${code}: ${err || out}`));
      else resolve(JSON.parse(last) as ChildResult);
    });
  });
}

describe('the official amqplib instrumentation, through OTLP, into chains', () => {
  let collector: TestCollector;
  let queue: string;

  beforeAll(async () => {
    collector = await startTestCollector();
    const model = await connectBroker();
    const ch = await model.createChannel();
    queue = uniqueName('otlp.legacy');
    await ch.assertQueue(queue, { autoDelete: false });
    await ch.close();
    await model.close();
  });

  afterAll(async () => {
    const model = await connectBroker();
    const ch = await model.createChannel();
    await ch.deleteQueue(queue);
    await model.close();
    await collector?.stop();
  });

  it('makes a chain per conversation id, else per trace id, with the nack as the settle outcome', async () => {
    const id = randomUUID();
    const corr = `conv-${randomUUID()}`;
    const result = await runService({ COLLECTOR_URL: collector.url, QUEUE: queue, MODE: 'produce-and-consume', ID: id, CORR: corr, EXPECT: '2' });
    expect(result.seen.sort()).toEqual([`${id}-bad`, `${id}-ok`]);

    // The message with an AMQP correlationId: its conversation id is the chain.
    const ok = await getJson(collector.url, `/api/chains/${encodeURIComponent(corr)}`);
    expect(ok.status).toBe(200);
    const chain = ok.body as ChainDetail;
    expect(chain.services).toEqual(['legacy-shop']);
    expect(chain.hops.map((h) => h.kind)).toEqual(['send', 'receive', 'process', 'settle']);
    expect(chain.hops.every((h) => h.messageId === `${id}-ok`)).toBe(true);
    expect(chain.hops.find((h) => h.kind === 'receive')?.queue).toBe(queue);
    // Legacy `messaging.destination` is the bare exchange (here the default one), never a semconv 1.30+ composite.
    expect(chain.hops.map((h) => h.exchange)).toEqual(['', '', '', '']);
    expect(chain.hops.find((h) => h.kind === 'settle')?.outcome).toBe('ack');
    expect(chain.status).toBe('ok');

    // The one without: its trace id is the chain.
    const bad = await getJson(collector.url, `/api/messages/${encodeURIComponent(`${id}-bad`)}`);
    expect(bad.status).toBe(200);
    const detail = bad.body as MessageDetail;
    expect(detail.correlationId).toMatch(/^[0-9a-f]{32}$/);
    expect(detail.hops.every((h) => h.traceId === detail.correlationId)).toBe(true);
    expect(detail.hops.find((h) => h.kind === 'settle')).toMatchObject({ outcome: 'nack', requeue: false });
  });

  it("joins the wrappers' hops: a hoptrace producer's message consumed by an OpenTelemetry-only service", async () => {
    const recorded: AnyHopRecord[] = [];
    const model = await connect(AMQP_URL, {
      serviceName: 'hoptrace-shop',
      logger: pino({ level: 'silent' }),
      hooks: { onHop: (record) => void recorded.push({ ...record }) },
    });
    const ch = await model.createChannel();
    let messageId = '';
    const result = await runService({ COLLECTOR_URL: collector.url, QUEUE: queue, MODE: 'consume', EXPECT: '1' }, async () => {
      ch.sendToQueue(queue, Buffer.from('from hoptrace'));
      const publish = await waitFor(() => recorded.find((r) => r.kind === 'publish'), 'the publish record');
      messageId = publish.messageId;
      // The wrappers' records reach the collector first (as the pino transport would send them).
      expect((await postHops(collector.url, recorded)).status).toBe(202);
    });
    await ch.close();
    await model.close();
    expect(result.seen).toEqual([messageId]);

    const publish = recorded.find((r) => r.kind === 'publish')!;
    const send = { ...publish, correlationId: publish.correlationId ?? publish.messageId };
    // The consumer never saw x-correlation-id, but /v1/traces finds its message in the stored chain.
    const got = await getJson(collector.url, `/api/chains/${encodeURIComponent(send.correlationId)}`);
    expect(got.status).toBe(200);
    const chain = got.body as ChainDetail;
    const hops = chain.hops.filter((h) => h.messageId === messageId);
    // One message across both worlds: the wrapper's send and the instrumentation's consumer hops, one trace, one chain.
    expect(hops.map((h) => `${h.service}:${h.kind}`)).toEqual([
      'hoptrace-shop:send',
      'legacy-shop:receive',
      'legacy-shop:process',
      'legacy-shop:settle',
    ]);
    expect(new Set(hops.map((h) => h.traceId))).toEqual(new Set([send.traceId]));
    expect(hops.find((h) => h.service === 'legacy-shop' && h.kind === 'receive')?.parentSpanId).toBe(send.spanId);
    expect(chain.services.sort()).toEqual(['hoptrace-shop', 'legacy-shop']);
  });

  it('adoptKnownCorrelations moves trace-correlated hops into the chain the store knows their message in', async () => {
    const producer = spanLab('p');
    const sendSpan = producer.provider.getTracer('t').startSpan('publish x', {
      kind: SpanKind.PRODUCER,
      attributes: { 'messaging.system': 'rabbitmq', 'messaging.message.id': 'known-1' },
    });
    const headers = inject(sendSpan);
    sendSpan.end();
    const consumer = spanLab('c');
    const t = consumer.provider.getTracer('t');
    const proc = t.startSpan('q process', { kind: SpanKind.CONSUMER, attributes: { 'messaging.operation': 'process', 'messaging.message_id': 'known-1' } }, extract(headers));
    const { trace, ROOT_CONTEXT } = await import('@opentelemetry/api');
    t.startSpan('publish y', { kind: SpanKind.PRODUCER, attributes: { 'messaging.system': 'rabbitmq', 'messaging.message.id': 'child-1' } }, trace.setSpan(ROOT_CONTEXT, proc)).end();
    proc.end();
    t.startSpan('publish z', { kind: SpanKind.PRODUCER, attributes: { 'messaging.system': 'rabbitmq', 'messaging.conversation_id': 'said' } }).end();

    const hops = decodeOtlpTraces(jsonOf(consumer.spans()), 'application/json');
    expect(hops.map((h) => hasTraceCorrelation(h))).toEqual([true, true, true, false]);
    const moved = await adoptKnownCorrelations(hops, (id) => (id === 'known-1' ? 'chain-from-store' : undefined));
    expect(moved).toBe(3);
    expect(hops.map((h) => h.correlationId)).toEqual(['chain-from-store', 'chain-from-store', 'chain-from-store', 'said']);
  });
});
