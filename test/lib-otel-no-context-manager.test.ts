/**
 * An SDK's tracer given through `tracerProvider` with no context manager
 * registered: spans are made, and the handler's ids still reach what it
 * publishes and `currentHopContext()` (hoptrace's own async context takes over).
 */
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { currentHopContext, instrument } from '../src/index.ts';
import { waitFor } from './helpers/broker.ts';
import { type Fixture, capture, delay, fixture } from './lib-capture.ts';

let fx: Fixture;
beforeAll(async () => {
  fx = await fixture();
});
afterAll(async () => {
  await fx.cleanup();
});

describe('an SDK tracer without a context manager', () => {
  it('a handler that awaits still publishes as caused by its message, and sees its context', async () => {
    const exporter = new InMemorySpanExporter();
    const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
    const cap = capture();
    const inQ = await fx.queue('lib.nocm.in');
    const outQ = await fx.queue('lib.nocm.out');
    const ch = instrument(await fx.conn.createChannel(), { logger: cap.logger, tracerProvider: provider });
    let seen: ReturnType<typeof currentHopContext>;
    await ch.consume(inQ, async (m) => {
      await delay(2);
      seen = currentHopContext();
      ch.sendToQueue(outQ, Buffer.from('child'));
      ch.ack(m!);
    });
    ch.sendToQueue(inQ, Buffer.from('root'));
    await waitFor(() => cap.hops('send').length === 2 && cap.hops('settle').length === 1, 'the child publish and the settle');
    const [root, child] = cap.hops('send');
    expect(child).toMatchObject({ causationId: root!.messageId, correlationId: root!.messageId, traceId: root!.traceId });
    expect(seen).toMatchObject({ messageId: root!.messageId, correlationId: root!.messageId });
    // Spans were made: the ids are the SDK's.
    expect(exporter.getFinishedSpans().some((s) => s.spanContext().spanId === root!.spanId)).toBe(true);
    await ch.purgeQueue(outQ);
    await ch.close();
    await provider.shutdown();
  });
});
