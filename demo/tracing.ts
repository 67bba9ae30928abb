/**
 * OpenTelemetry for the demo (on when `OTEL_EXPORTER_OTLP_ENDPOINT` or
 * `--otlp-endpoint` is set, as docker compose does for Jaeger).
 * `startTracing` registers the SDK's context manager and W3C propagators
 * for the process; each demo service then gets its own tracer provider whose
 * resource carries its `service.name`, so Jaeger shows a service per lane
 * even though all of them live in this one process.
 */
import type { TracerProvider as ApiTracerProvider } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { Attr } from '../src/contract/semconv.ts';
import { startTracing, type TracingHandle } from '../src/otel.ts';

export interface DemoTracing {
  /** Where spans go (`…/v1/traces`). */
  readonly tracesUrl: string;
  /** The tracer provider of one demo service (made once per name). */
  providerFor(serviceName: string): ApiTracerProvider;
  /** Export what is buffered and unregister the SDK. */
  shutdown(): Promise<void>;
}

export function startDemoTracing(endpoint: string): DemoTracing {
  const handle: TracingHandle = startTracing({ serviceName: 'hoptrace-demo', endpoint });
  const tracesUrl = handle.tracesUrl ?? `${endpoint.replace(/\/+$/, '')}/v1/traces`;
  const providers = new Map<string, TracerProvider>();
  return {
    tracesUrl,
    providerFor(serviceName) {
      let provider = providers.get(serviceName);
      if (!provider) {
        provider = new TracerProvider({
          resource: resourceFromAttributes({ [Attr.SERVICE_NAME]: serviceName }),
          spanProcessors: [new BatchSpanProcessor({ exporter: new OTLPTraceExporter({ url: tracesUrl }) })],
        });
        providers.set(serviceName, provider);
      }
      return provider;
    },
    async shutdown() {
      await Promise.allSettled([...providers.values()].map((p) => p.shutdown()));
      await handle.shutdown();
    },
  };
}
