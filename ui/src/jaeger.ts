import type { UiConfig } from '../../collector/api-types.ts';

/**
 * `${jaegerUrl}/trace/${traceId}` when the collector has a Jaeger UI
 * configured. Only http(s) bases are linked, and the trace id (which came from
 * a message) is path-encoded.
 */
export function jaegerTraceUrl(config: UiConfig | undefined, traceId: string | undefined): string | undefined {
  if (!config?.jaegerUrl || !traceId) return undefined;
  let base: URL;
  try {
    base = new URL(config.jaegerUrl, document.baseURI);
  } catch {
    return undefined;
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') return undefined;
  return `${base.href.replace(/\/+$/, '')}/trace/${encodeURIComponent(traceId)}`;
}
