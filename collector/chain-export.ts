/**
 * Export a chain in the formats other tools read: Jaeger's JSON trace format
 * (Jaeger UI's "JSON file" upload) and OTLP JSON.
 *
 * STUB with the final signatures (the lead's seam for parallel work); the
 * OpenTelemetry work replaces it.
 */
import type { ChainDetail } from './api-types.ts';

/** `{ data: [ { traceID, spans: [...], processes: {...} } ] }`, one entry per trace id. */
export function chainToJaeger(detail: ChainDetail): { data: unknown[] } {
  void detail;
  return { data: [] };
}

/** An OTLP/JSON `ExportTraceServiceRequest` (`{ resourceSpans: [...] }`). */
export function chainToOtlpJson(detail: ChainDetail): { resourceSpans: unknown[] } {
  void detail;
  return { resourceSpans: [] };
}
