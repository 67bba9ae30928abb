/**
 * Real OpenTelemetry SDK spans for the OTLP tests: a TracerProvider with an
 * in-memory exporter (not registered globally), and the official serializers
 * that the OTLP exporters use, so decoder tests read the bytes an exporter
 * really sends.
 */
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Span } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { JsonTraceSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider, type ReadableSpan } from '@opentelemetry/sdk-trace';

export interface SpanLab {
  provider: TracerProvider;
  exporter: InMemorySpanExporter;
  spans(): ReadableSpan[];
}

/** A provider for one service; several labs make several services (resources). */
export function spanLab(serviceName: string, extra: Attributes = {}): SpanLab {
  const exporter = new InMemorySpanExporter();
  const provider = new TracerProvider({
    resource: resourceFromAttributes({
      'service.name': serviceName,
      'service.instance.id': `${serviceName}-1`,
      ...extra,
    }),
    spanProcessors: [new SimpleSpanProcessor({ exporter })],
  });
  return { provider, exporter, spans: () => exporter.getFinishedSpans() };
}

const propagator = new W3CTraceContextPropagator();

/** Headers carrying `span`'s context, as a producer injects them into a message. */
export function inject(span: Span): Record<string, string> {
  const headers: Record<string, string> = {};
  propagator.inject(trace.setSpan(ROOT_CONTEXT, span), headers, {
    set: (carrier, key, value) => {
      (carrier as Record<string, string>)[key] = value;
    },
  });
  return headers;
}

/** The context a consumer extracts from a message's headers. */
export function extract(headers: Record<string, string>): Context {
  return propagator.extract(ROOT_CONTEXT, headers, {
    get: (carrier, key) => (carrier as Record<string, string>)[key],
    keys: (carrier) => Object.keys(carrier as object),
  });
}

export function protobufOf(spans: ReadableSpan[]): Buffer {
  const bytes = ProtobufTraceSerializer.serializeRequest(spans);
  if (!bytes) throw new Error('the protobuf serializer returned nothing');
  return Buffer.from(bytes);
}

export function jsonOf(spans: ReadableSpan[]): Buffer {
  const bytes = JsonTraceSerializer.serializeRequest(spans);
  if (!bytes) throw new Error('the JSON serializer returned nothing');
  return Buffer.from(bytes);
}

export { SpanKind, SpanStatusCode, ROOT_CONTEXT, trace };
