/**
 * `hoptrace/otel`: one call that registers the OpenTelemetry Node SDK so the
 * hoptrace wrappers' spans reach Jaeger (or any OTLP endpoint, the hoptrace
 * collector's `/v1/traces` included) as one trace per flow.
 *
 * This is the only library entry that depends on the OpenTelemetry SDK; the
 * wrappers themselves only use `@opentelemetry/api` and work without it. The SDK
 * packages are optional peer dependencies, loaded by the first `startTracing` call:
 * `npm install @opentelemetry/sdk-node @opentelemetry/sdk-trace @opentelemetry/exporter-trace-otlp-proto
 * @opentelemetry/resources @opentelemetry/core @opentelemetry/context-async-hooks`.
 *
 * @example
 * // tracing.ts — import it before anything else in the service
 * import { startTracing } from 'hoptrace/otel';
 * const tracing = startTracing({ serviceName: 'billing' }); // → http://localhost:4318/v1/traces
 * process.on('SIGTERM', () => void tracing.shutdown().finally(() => process.exit(0)));
 */
import { context, propagation, trace, type Attributes } from '@opentelemetry/api';
import type { NodeSDK } from '@opentelemetry/sdk-node';
import type { Sampler, SpanExporter, SpanProcessor } from '@opentelemetry/sdk-trace';
import { ConfigError } from './errors.ts';
import { Env } from './contract/semconv.ts';
import { loadOtelSdk } from './internal/otel-sdk.ts';

/** Where spans go when neither the option nor `OTEL_EXPORTER_OTLP_ENDPOINT` says: a local Jaeger or OpenTelemetry Collector. */
export const DEFAULT_OTLP_ENDPOINT = 'http://localhost:4318';

/** The OTLP/HTTP path of traces under an endpoint. */
const TRACES_PATH = '/v1/traces';

type Instrumentations = NonNullable<ConstructorParameters<typeof NodeSDK>[0]>['instrumentations'];

/** Options of {@link startTracing}. Every one is optional. */
export interface TracingOptions {
  /**
   * `service.name` of every span.
   * @default process.env.OTEL_SERVICE_NAME, else `unknown_service:node`
   */
  serviceName?: string;
  /**
   * OTLP/HTTP base URL; spans are POSTed as protobuf to `${endpoint}/v1/traces`.
   * Jaeger all-in-one listens on 4318, the hoptrace collector on 4400 (its `/v1/traces`
   * turns messaging spans into hops).
   * @default process.env.OTEL_EXPORTER_OTLP_ENDPOINT, else `http://localhost:4318`
   * (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, a full URL, wins over both when set)
   * @example 'http://jaeger:4318'
   */
  endpoint?: string;
  /**
   * Extra HTTP headers for the OTLP exporter, e.g. the collector's bearer token.
   * @default none (the exporter still reads `OTEL_EXPORTER_OTLP_HEADERS`)
   * @example { authorization: `Bearer ${process.env.HOPTRACE_TOKEN}` }
   */
  headers?: Record<string, string>;
  /**
   * Send spans here instead of the OTLP/protobuf exporter (still through a BatchSpanProcessor).
   * @default an `OTLPTraceExporter` from `@opentelemetry/exporter-trace-otlp-proto` to {@link endpoint}
   */
  exporter?: SpanExporter;
  /**
   * Use exactly these span processors (tests: `[new SimpleSpanProcessor({ exporter: new InMemorySpanExporter() })]`;
   * several backends: one BatchSpanProcessor per exporter). Replaces `exporter` and `endpoint`.
   * @default `[new BatchSpanProcessor({ exporter })]`
   */
  spanProcessors?: SpanProcessor[];
  /**
   * More resource attributes (`deployment.environment.name`, `service.version`, …).
   * @default none; the SDK's detectors still add host, process and `service.instance.id`
   */
  resourceAttributes?: Attributes;
  /**
   * OpenTelemetry instrumentations to register too. None by default: the hoptrace
   * wrappers make the messaging spans, and `@opentelemetry/instrumentation-amqplib`
   * on top of them would trace every publish twice.
   * @default []
   */
  instrumentations?: Instrumentations;
  /**
   * @default the SDK's: `OTEL_TRACES_SAMPLER`, else parent-based always-on
   */
  sampler?: Sampler;
}

/** What {@link startTracing} returns. */
export interface TracingHandle {
  /** The service name spans carry (`undefined` when left to `OTEL_SERVICE_NAME` / the SDK default). */
  readonly serviceName: string | undefined;
  /** The URL spans are POSTed to; `undefined` when `exporter` or `spanProcessors` was given. */
  readonly tracesUrl: string | undefined;
  /** False when `OTEL_SDK_DISABLED=true` switched the SDK off: then nothing is registered. */
  readonly enabled: boolean;
  /** Export every span ended so far; resolves when the exporter has answered. */
  forceFlush(): Promise<void>;
  /**
   * Flush, shut the exporter down and unregister the SDK (tracer provider, propagator,
   * context manager), so `startTracing` may be called again. Safe to call twice.
   */
  shutdown(): Promise<void>;
}

let active: TracingHandle | undefined;

/** `${base}/v1/traces`, whatever slashes `base` ends with. */
function tracesUrlOf(base: string): string {
  return `${base.replace(/\/+$/, '')}${TRACES_PATH}`;
}

function resolveTracesUrl(endpoint: string | undefined): string {
  if (endpoint !== undefined) return tracesUrlOf(endpoint);
  const tracesEndpoint = process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim();
  if (tracesEndpoint) return tracesEndpoint;
  const env = process.env[Env.OTEL_EXPORTER_OTLP_ENDPOINT]?.trim();
  return tracesUrlOf(env || DEFAULT_OTLP_ENDPOINT);
}

function validate(options: TracingOptions): void {
  const { serviceName, endpoint, spanProcessors } = options;
  if (serviceName !== undefined && (typeof serviceName !== 'string' || serviceName.trim() === '')) {
    throw new ConfigError(`startTracing: serviceName must be a non-empty string, got ${JSON.stringify(serviceName)}`);
  }
  if (endpoint !== undefined) {
    let url: URL | undefined;
    try {
      url = new URL(endpoint);
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
      throw new ConfigError(`startTracing: endpoint must be an http(s) URL such as ${DEFAULT_OTLP_ENDPOINT}, got ${JSON.stringify(endpoint)}`);
    }
  }
  if (spanProcessors !== undefined && !Array.isArray(spanProcessors)) {
    throw new ConfigError('startTracing: spanProcessors must be an array of SpanProcessor');
  }
}

/**
 * Register the OpenTelemetry Node SDK for this process: OTLP/HTTP protobuf
 * exporter behind a BatchSpanProcessor, W3C trace-context and baggage
 * propagators, the AsyncLocalStorage context manager, and no
 * auto-instrumentation unless you pass some. Call it once, first thing.
 *
 * @throws ConfigError (`HOPTRACE_ERR_INVALID_OPTION`) on an invalid option, when tracing was
 *   already started and not shut down (a second SDK would silently lose to the first), or when
 *   an OpenTelemetry SDK package is not installed (the message names the `npm install` line)
 *
 * @example
 * const tracing = startTracing({ serviceName: 'orders', endpoint: 'http://jaeger:4318' });
 * // ... instrument(channel) / connect(url) as usual: their spans go to Jaeger ...
 * await tracing.shutdown(); // flushes what is still buffered
 *
 * @example <caption>spans to the hoptrace collector, which turns them into hops</caption>
 * startTracing({ endpoint: process.env.HOPTRACE_URL, headers: { authorization: `Bearer ${process.env.HOPTRACE_TOKEN}` } });
 */
export function startTracing(options: TracingOptions = {}): TracingHandle {
  if (active) {
    throw new ConfigError(
      'startTracing() was already called in this process; use the handle it returned, or await handle.shutdown() before starting again',
    );
  }
  validate(options);
  // The SDK is an optional peer dependency: loaded here, not at import (a missing one is a ConfigError naming the install line).
  const { sdkNode, sdkTrace, exporterTraceOtlpProto, resources, core, contextAsyncHooks } = loadOtelSdk();
  const { BatchSpanProcessor } = sdkTrace;
  const { OTLPTraceExporter } = exporterTraceOtlpProto;
  const { defaultResource, resourceFromAttributes } = resources;
  const { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } = core;

  const custom = options.spanProcessors !== undefined || options.exporter !== undefined;
  const tracesUrl = custom ? undefined : resolveTracesUrl(options.endpoint);
  const processors =
    options.spanProcessors ??
    [
      new BatchSpanProcessor({
        exporter: options.exporter ?? new OTLPTraceExporter({ url: tracesUrl, ...(options.headers ? { headers: options.headers } : {}) }),
      }),
    ];

  const sdk = new sdkNode.NodeSDK({
    ...(options.serviceName !== undefined ? { serviceName: options.serviceName } : {}),
    ...(options.sampler ? { sampler: options.sampler } : {}),
    // The SDK's recommended way to add attributes: the default resource plus ours; detectors
    // (host, process, OTEL_RESOURCE_ATTRIBUTES) and serviceName are merged over it at start.
    ...(options.resourceAttributes ? { resource: defaultResource().merge(resourceFromAttributes(options.resourceAttributes)) } : {}),
    spanProcessors: processors,
    contextManager: new contextAsyncHooks.AsyncLocalStorageContextManager(),
    textMapPropagator: new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }),
    instrumentations: options.instrumentations ?? [],
    // Traces only: without these the SDK would also start OTLP metric and log exporters.
    metricReaders: [],
    logRecordProcessors: [],
  });
  const enabled = !/^(true|1)$/i.test(process.env.OTEL_SDK_DISABLED?.trim() ?? '');
  sdk.start();

  let shutdownPromise: Promise<void> | undefined;
  const handle: TracingHandle = {
    serviceName: options.serviceName,
    tracesUrl,
    enabled,
    async forceFlush() {
      if (!enabled) return;
      await Promise.all(processors.map((p) => p.forceFlush()));
    },
    shutdown() {
      shutdownPromise ??= (async () => {
        try {
          await sdk.shutdown();
        } finally {
          if (enabled) {
            trace.disable();
            propagation.disable();
            context.disable();
          }
          if (active === handle) active = undefined;
        }
      })();
      return shutdownPromise;
    },
  };
  active = handle;
  return handle;
}
