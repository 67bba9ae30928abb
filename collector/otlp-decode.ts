/**
 * OTLP/HTTP trace ingest: decode an ExportTraceServiceRequest (protobuf or
 * JSON) and map its messaging spans onto hop records.
 *
 * The server has already gunzipped the body and enforced its size limit; this
 * decodes it (bounds-checked, capped; see `otlp-model.ts`) and maps it
 * (see `otlp-hops.ts` for the span → hop table).
 */
import { ErrorCodes, HoptraceError, ValidationError } from './errors.ts';
import type { HopRecord } from '../src/contract/hop.ts';
import { spansToHops } from './otlp-hops.ts';
import { decodeOtlpJson } from './otlp-json.ts';
import { invalidBody, type OtlpResourceSpans } from './otlp-model.ts';
import { decodeOtlpProtobuf } from './otlp-protobuf.ts';

/**
 * For `POST /v1/traces`: after decoding, `await adoptKnownCorrelations(hops, lookup)` moves hops that
 * only had a trace id for a correlation id into the chain the store already holds their message in.
 */
export { adoptKnownCorrelations, hasTraceCorrelation } from './otlp-hops.ts';

/** Content types `POST /v1/traces` accepts (OTLP/HTTP: binary protobuf and JSON). */
export const OTLP_CONTENT_TYPES = ['application/x-protobuf', 'application/json'] as const;

/**
 * Decode the request into the neutral model without mapping it (tests and tools).
 * @throws ValidationError as {@link decodeOtlpTraces}
 */
export function decodeOtlpRequest(body: Buffer, contentType: string): OtlpResourceSpans[] {
  const type = contentType.split(';')[0].trim().toLowerCase();
  try {
    if (type === 'application/x-protobuf' || type === 'application/protobuf') return decodeOtlpProtobuf(body);
    if (type === 'application/json') return decodeOtlpJson(body);
  } catch (err) {
    if (err instanceof HoptraceError) throw err;
    // A RangeError from a pathological input (deep JSON nesting) or a bug: still the sender's 400, never a crash.
    throw invalidBody((err as Error)?.message ?? String(err), err);
  }
  throw new ValidationError(
    ErrorCodes.UNSUPPORTED_MEDIA_TYPE,
    `POST /v1/traces takes ${OTLP_CONTENT_TYPES.join(' or ')}, not ${JSON.stringify(contentType)}`,
    { statusCode: 415 },
  );
}

/**
 * @param body the raw (already gunzipped) request body
 * @param contentType `application/x-protobuf` or `application/json` (parameters such as `; charset=utf-8` are ignored)
 * @returns hop records of the messaging spans (a consumer span gives `receive` + `process`, and `settle` when it says how it was settled); non-messaging spans are skipped
 * @throws ValidationError (`HOPTRACE_ERR_INVALID_BODY`, 400) when the body cannot be decoded;
 *   415 `HOPTRACE_ERR_UNSUPPORTED_MEDIA_TYPE` for another content type; 413 for more spans than one request may carry
 */
export function decodeOtlpTraces(body: Buffer, contentType: string): HopRecord[] {
  return spansToHops(decodeOtlpRequest(body, contentType));
}
