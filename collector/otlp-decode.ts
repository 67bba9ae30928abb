/**
 * OTLP/HTTP trace ingest: decode an ExportTraceServiceRequest (protobuf or
 * JSON) and map its messaging spans onto hop records.
 *
 * STUB with the final signature (the lead's seam for parallel work); the
 * OpenTelemetry work replaces it.
 */
import { ErrorCodes, ValidationError } from '../src/errors.ts';
import type { HopRecord } from '../src/hop.ts';

/**
 * @param body the raw (already gunzipped) request body
 * @param contentType `application/x-protobuf` or `application/json`
 * @returns one hop record per messaging span; non-messaging spans are skipped
 * @throws ValidationError (`HOPTRACE_ERR_INVALID_BODY`, 400) when the body cannot be decoded
 */
export function decodeOtlpTraces(body: Buffer, contentType: string): HopRecord[] {
  void body;
  throw new ValidationError(ErrorCodes.UNSUPPORTED_MEDIA_TYPE, `OTLP ingest is not implemented yet (${contentType})`, {
    statusCode: 415,
  });
}
