/**
 * The OpenTelemetry SDK as the overhead benchmark registers it: a tracer
 * provider with a BatchSpanProcessor into an exporter that does nothing but
 * count, async-hooks context and W3C propagation. The same setup serves
 * hoptrace and the official instrumentation, so the comparison is like for
 * like. Registration is global: call this once, in a process of its own.
 */
import { context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { BatchSpanProcessor, TracerProvider, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace';

/** Drops every span, counting them so a run can prove spans were made. */
export class CountingNoopExporter implements SpanExporter {
  spans = 0;
  export(spans: ReadableSpan[], resultCallback: (result: { code: number }) => void): void {
    this.spans += spans.length;
    resultCallback({ code: 0 });
  }
  shutdown(): Promise<void> {
    return Promise.resolve();
  }
  forceFlush(): Promise<void> {
    return Promise.resolve();
  }
}

export interface BenchSdk {
  provider: TracerProvider;
  exporter: CountingNoopExporter;
  /** Flush the batch processor; spans the exporter saw, and spans the full queue dropped. */
  spanCount(): Promise<{ exported: number; dropped: number }>;
}

export function registerSdk(): BenchSdk {
  const exporter = new CountingNoopExporter();
  // The SDK's default batch settings (queue 2048, batches of 512, 5 s delay):
  // what an application gets when it does not tune them.
  const processor = new BatchSpanProcessor({ exporter });
  const provider = new TracerProvider({ spanProcessors: [processor] });
  trace.setGlobalTracerProvider(provider);
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(
    new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }),
  );
  return {
    provider,
    exporter,
    async spanCount() {
      await provider.forceFlush();
      // Not public API: the processor's own count of spans dropped on a full queue.
      const dropped = (processor as unknown as { _droppedSpansCount?: number })._droppedSpansCount ?? 0;
      return { exported: exporter.spans, dropped };
    },
  };
}
