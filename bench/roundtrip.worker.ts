/**
 * One variant, one round of the per-message overhead benchmark, in a process
 * of its own (see lib/child.ts for why). Measures, on the real RabbitMQ:
 *
 * - round trip: publish on a ConfirmChannel → consume (prefetch 100) → ack,
 *   persistent messages on a durable queue, a bounded number in flight, until
 *   every message was consumed and acked and every publish confirmed;
 * - fire-and-forget publish: sendToQueue as fast as backpressure allows on a
 *   plain channel, done when the queue holds every message.
 *
 * Each phase reports wall time, process CPU time (user + system, every
 * thread of this process: pino transport workers included) and V8 heap bytes
 * allocated (lib/alloc.ts). hoptrace variants write their hop lines to a real
 * file (`hopFile`), which the parent reads back afterwards to prove every
 * message was recorded (roundtrip.bench.ts).
 */
import { once } from 'node:events';
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage } from 'amqplib';
import { startAllocationMeter } from './lib/alloc.ts';
import { workerMain } from './lib/child.ts';
import type { BenchSdk } from './lib/otel-sdk.ts';

export type Variant =
  | 'plain'
  | 'hoptrace'
  | 'hoptrace-sdk'
  | 'otel-amqplib-sdk'
  | 'hoptrace-transport'
  /** Diagnostic rows: the same with the hop logger at level `silent` (no records), to separate recording from the rest. */
  | 'hoptrace-silent'
  | 'hoptrace-sdk-silent';

/** Variants that record hop lines to a file, and must prove it. */
export const RECORDING_VARIANTS: readonly Variant[] = ['hoptrace', 'hoptrace-sdk'];

export interface RoundtripInput {
  variant: Variant;
  amqpUrl: string;
  /** Messages in the measured round-trip phase. */
  roundtripMessages: number;
  /** Messages in the measured fire-and-forget phase. */
  publishMessages: number;
  /** Messages of each phase run first, unmeasured, to warm the JIT. */
  warmupMessages: number;
  /** Queue name prefix; the worker adds its pid. */
  queuePrefix: string;
  /** hoptrace-transport: the collector to ship hop logs to. */
  collectorUrl?: string;
  /** Recording variants: the file their logger writes hop lines to. */
  hopFile?: string;
  /** Write hop lines asynchronously (pino.destination's default) instead of synchronously (what the README recommends). */
  asyncHopFile?: boolean;
}

export interface PhaseResult {
  messages: number;
  /** hoptrace variants: hops the records written in this phase stand for. */
  hops?: number;
  /** hoptrace variants: records (lines) written in this phase. */
  records?: number;
  /** SDK variants: spans made in this phase (exported + dropped by the batch queue). */
  spans?: number;
  wallMs: number;
  cpuUs: number;
  allocBytes: number;
  gcPauseMs: number;
}

export interface RoundtripOutput {
  variant: Variant;
  roundtrip: PhaseResult;
  publish: PhaseResult;
  /** Spans the SDK made (exported + dropped by the batch queue) per message, over all phases (SDK variants). */
  spansPerMessage?: number;
  /** Of those, the share the BatchSpanProcessor dropped because its queue was full. */
  spansDroppedShare?: number;
  /** hoptrace variants: hops the records stand for over the whole run (`telemetryStats().hops`). */
  hopsLogged?: number;
  /** The queues of the round trip and of fire-and-forget (to tell their records apart in the hop file). */
  queues: { roundtrip: string; publish: string };
  /** hoptrace variants: contained telemetry failures (logger, hook, span, internal). */
  telemetryErrors?: number;
}

/** Messages allowed in flight in the round trip: enough to keep prefetch 100 busy. */
const WINDOW = 300;

const BODY = Buffer.from(
  JSON.stringify({
    orderId: 'ord_01J9ZC6F3M8Q2W7K4B5N0X1Y2Z',
    customerId: 'cus_8842',
    items: [
      { sku: 'espresso-double', qty: 2, priceCents: 380 },
      { sku: 'croissant-butter', qty: 1, priceCents: 290 },
    ],
    totalCents: 1050,
    currency: 'EUR',
    placedAt: '2025-01-01T08:15:00.000Z',
  }),
);

interface Wrapper {
  wrap<C extends Channel>(channel: C): C;
  /** Hops and records written so far (hoptrace variants). */
  hops(): { hops: number; records: number } | undefined;
  /** Spans made so far, after flushing the batch processor (SDK variants). */
  spans(): Promise<number | undefined>;
  finish(): Promise<{ spans?: { exported: number; dropped: number }; hops?: number; telemetryErrors?: number }>;
}

type AmqpModule = typeof import('amqplib');

async function setUp(input: RoundtripInput): Promise<{ amqp: AmqpModule; wrapper: Wrapper }> {
  const require = createRequire(import.meta.url);
  let sdk: BenchSdk | undefined;
  if (input.variant === 'hoptrace-sdk' || input.variant === 'hoptrace-sdk-silent' || input.variant === 'otel-amqplib-sdk') {
    const { registerSdk } = await import('./lib/otel-sdk.ts');
    sdk = registerSdk();
  }
  if (input.variant === 'otel-amqplib-sdk') {
    // The official instrumentation patches amqplib's CommonJS files through
    // require hooks, so it must be enabled before amqplib is first required;
    // nothing else in this process has loaded amqplib yet.
    const { AmqplibInstrumentation } = await import('@opentelemetry/instrumentation-amqplib');
    const instrumentation = new AmqplibInstrumentation();
    instrumentation.setTracerProvider(sdk!.provider);
    instrumentation.enable();
  }
  const amqp = require('amqplib') as AmqpModule;
  const spans = async () => (sdk ? { spans: await sdk.spanCount() } : {});
  const spanTotal = async () => {
    if (!sdk) return undefined;
    const { exported, dropped } = await sdk.spanCount();
    return exported + dropped;
  };


  if (input.variant === 'plain' || input.variant === 'otel-amqplib-sdk') {
    return {
      amqp,
      wrapper: {
        wrap: (c) => c,
        hops: () => undefined,
        spans: spanTotal,
        finish: spans,
      },
    };
  }

  const pino = (await import('pino')).default;
  const hoptrace = (await import('../src/index.ts')) as Record<string, unknown>;
  const instrument = hoptrace.instrument as ((channel: Channel, options: object) => Channel) | undefined;
  if (typeof instrument !== 'function') throw new Error('src/index.ts does not export instrument() yet');

  let transport: ReturnType<typeof pino.transport> | undefined;
  let destination: ReturnType<typeof pino.destination> | undefined;
  if (input.variant === 'hoptrace-transport') {
    if (!input.collectorUrl) throw new Error('hoptrace-transport needs collectorUrl');
    transport = pino.transport({
      target: new URL('../src/transport.ts', import.meta.url).pathname,
      options: { url: input.collectorUrl },
    });
  } else {
    // A real file, as the README recommends a hop log: pino.destination, written synchronously
    // (asyncHopFile: asynchronously, pino's default, whose SonicBoom path costs more per byte).
    destination = pino.destination({ dest: input.hopFile ?? '/dev/null', sync: input.asyncHopFile !== true });
  }
  // Level `silent`: hoptrace sees the level and writes no records (ids, headers and spans are still made).
  const logger = pino({ level: input.variant.endsWith('-silent') ? 'silent' : 'info' }, (transport ?? destination)!);
  const options = { serviceName: 'bench', logger };
  const stats = () => (hoptrace.telemetryStats as () => Record<string, number>)();
  return {
    amqp,
    wrapper: {
      wrap: (c) => instrument(c, options) as typeof c,
      hops: () => ({ hops: stats().hops!, records: stats().records! }),
      spans: spanTotal,
      async finish() {
        const result: Awaited<ReturnType<Wrapper['finish']>> = await spans();
        const s = stats();
        result.hops = s.hops;
        result.telemetryErrors = s.loggerErrors! + s.hookErrors! + s.spanErrors! + s.internalErrors!;
        // hoptrace hands its batch to the destination at most 25 ms after its first line; then let SonicBoom write it all.
        await new Promise((r) => setTimeout(r, 100));
        if (destination) {
          const boom = destination as unknown as { _writing?: boolean; _len?: number };
          const deadline = Date.now() + 10_000;
          while ((boom._writing || (boom._len ?? 0) > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
          destination.flushSync();
        }
        if (transport) {
          // Let the transport worker ship what it holds before the process ends.
          logger.flush();
          transport.end();
          await once(transport, 'close').catch(() => undefined);
        }
        return result;
      },
    },
  };
}

async function main(input: RoundtripInput): Promise<RoundtripOutput> {
  const { amqp, wrapper } = await setUp(input);
  const conn: ChannelModel = await amqp.connect(input.amqpUrl);
  const queue = `${input.queuePrefix}.rt.${process.pid}`;
  const publishQueue = `${input.queuePrefix}.faf.${process.pid}`;
  try {
    const pub = wrapper.wrap<ConfirmChannel>(await conn.createConfirmChannel());
    const sub = wrapper.wrap<Channel>(await conn.createChannel());
    const faf = wrapper.wrap<Channel>(await conn.createChannel());
    await pub.assertQueue(queue, { durable: true });
    await faf.assertQueue(publishQueue, { durable: true });
    await sub.prefetch(100);

    let received = 0;
    let waitingFor = Infinity;
    let wake: (() => void) | undefined;
    const until = (count: number) =>
      new Promise<void>((resolve) => {
        if (received >= count) return resolve();
        waitingFor = count;
        wake = resolve;
      });
    await sub.consume(queue, (msg: ConsumeMessage | null) => {
      if (!msg) return;
      sub.ack(msg);
      received++;
      if (received >= waitingFor) {
        waitingFor = Infinity;
        const w = wake;
        wake = undefined;
        w?.();
      }
    });

    const roundtrip = async (n: number) => {
      const base = received;
      for (let sent = 0; sent < n; sent++) {
        if (sent - (received - base) >= WINDOW) await until(base + sent - WINDOW / 2);
        const ok = pub.sendToQueue(queue, BODY, { persistent: true, contentType: 'application/json', type: 'order.placed' });
        if (!ok) await once(pub, 'drain');
      }
      await until(base + n);
      await pub.waitForConfirms();
    };
    const publish = async (n: number) => {
      for (let sent = 0; sent < n; sent++) {
        const ok = faf.sendToQueue(publishQueue, BODY, { persistent: true, contentType: 'application/json', type: 'order.placed' });
        if (!ok) await once(faf, 'drain');
      }
      // Done when the broker holds every message: poll the queue depth (an
      // RPC takes well under a millisecond) rather than trust the socket.
      const deadline = Date.now() + 60_000;
      for (;;) {
        const { messageCount } = await faf.checkQueue(publishQueue);
        if (messageCount >= n) break;
        if (Date.now() > deadline) throw new Error(`fire-and-forget: ${messageCount} of ${n} messages reached the queue`);
      }
      await faf.purgeQueue(publishQueue);
    };

    const measure = async (messages: number, run: (n: number) => Promise<void>, name: string): Promise<PhaseResult> => {
      const profileDir = process.env.BENCH_ALLOC_PROF;
      const stopProfile = profileDir ? await (await import('./lib/alloc-profile.ts')).startAllocationProfile() : undefined;
      // BENCH_PHASE_PROF=DIR: a CPU profile of the measured phase alone (no start-up, no warm-up).
      const phaseDir = process.env.BENCH_PHASE_PROF;
      const stopCpu = phaseDir ? await (await import('./lib/alloc-profile.ts')).startCpuProfile() : undefined;
      const hops0 = wrapper.hops();
      const spans0 = await wrapper.spans();
      const cpu = process.cpuUsage();
      const meter = startAllocationMeter();
      const t0 = performance.now();
      await run(messages);
      const wallMs = performance.now() - t0;
      const alloc = meter.stop();
      const used = process.cpuUsage(cpu);
      await stopProfile?.(`${profileDir}/${input.variant}-${name}-${process.pid}.heapprofile`);
      await stopCpu?.(`${phaseDir}/${input.variant}-${name}-${process.pid}.cpuprofile`);
      const hops1 = wrapper.hops();
      const spans1 = await wrapper.spans();
      return {
        messages,
        spans: spans0 === undefined || spans1 === undefined ? undefined : spans1 - spans0,
        hops: hops0 === undefined || hops1 === undefined ? undefined : hops1.hops - hops0.hops,
        records: hops0 === undefined || hops1 === undefined ? undefined : hops1.records - hops0.records,
        wallMs,
        cpuUs: used.user + used.system,
        allocBytes: alloc.bytes,
        gcPauseMs: alloc.gcPauseMs,
      };
    };

    await roundtrip(input.warmupMessages);
    await publish(input.warmupMessages);
    const rt = await measure(input.roundtripMessages, roundtrip, 'roundtrip');
    const pb = await measure(input.publishMessages, publish, 'publish');

    await pub.deleteQueue(queue);
    await faf.deleteQueue(publishQueue);
    const total = 2 * input.warmupMessages + input.roundtripMessages + input.publishMessages;
    const extra = await wrapper.finish();
    return {
      variant: input.variant,
      roundtrip: rt,
      publish: pb,
      spansPerMessage: extra.spans && (extra.spans.exported + extra.spans.dropped) / total,
      spansDroppedShare: extra.spans && extra.spans.dropped / Math.max(1, extra.spans.exported + extra.spans.dropped),
      hopsLogged: extra.hops,
      queues: { roundtrip: queue, publish: publishQueue },
      telemetryErrors: extra.telemetryErrors,
    };
  } finally {
    await conn.close().catch(() => undefined);
  }
}

workerMain(main);
