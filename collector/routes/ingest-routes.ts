/**
 * Ingest: `POST /v1/hops` (hop records as NDJSON or JSON) and
 * `POST /v1/traces` (OTLP/HTTP traces). Both end in the same validated,
 * transactional ingest path; `202`/`200` only after the commit. The valid
 * records of a request are kept when others are invalid (partial acceptance).
 */
import { Router, type Request } from 'express';
import { adoptKnownCorrelations, decodeOtlpTraces } from '../otlp-decode.ts';
import type { CollectorContext } from '../context.ts';
import { ingestRecords } from '../ingest.ts';
import { JSON_TYPE, NDJSON_TYPES, parseJsonRecords, parseNdjson, readBody, requireMediaType } from '../request-body.ts';
import { TransportDrops } from '../transport-drops.ts';

/** Header an older hoptrace transport uses to report records it dropped since its last successful request. */
export const DROPPED_HEADER = 'x-hoptrace-dropped';
/** Header a hoptrace transport uses to report every record it has dropped since it started (with {@link TRANSPORT_ID_HEADER}). */
export const DROPPED_TOTAL_HEADER = 'x-hoptrace-dropped-total';
/** Header naming the transport instance a dropped total belongs to. */
export const TRANSPORT_ID_HEADER = 'x-hoptrace-transport';

const HOPS_TYPES = [...NDJSON_TYPES, JSON_TYPE];
const OTLP_PROTOBUF = 'application/x-protobuf';
const OTLP_TYPES = [OTLP_PROTOBUF, 'application/protobuf', JSON_TYPE];

const header = (req: Request, name: string): string | undefined => {
  const value = req.headers[name];
  return typeof value === 'string' ? value : undefined;
};

export function ingestRoutes(ctx: CollectorContext): Router {
  const router = Router();
  const auth = ctx.auth.ingest;
  const drops = new TransportDrops(ctx.metrics.transportDropped);

  router.post('/v1/hops', auth, async (req, res) => {
    // A cumulative drop report counts by its growth, so it counts whatever becomes of the records
    // (a retry repeats it harmlessly); an older transport's delta counts only with a 2xx, as it expects.
    const transport = header(req, TRANSPORT_ID_HEADER);
    drops.report({ transport, total: header(req, DROPPED_TOTAL_HEADER) });
    const type = requireMediaType(req, HOPS_TYPES);
    const body = await readBody(req, ctx.maxBodyBytes);
    const values = type === JSON_TYPE ? parseJsonRecords(body.toString('utf8')) : parseNdjson(body);
    const result = await ingestRecords(ctx, values);
    if (transport === undefined) drops.report({ delta: header(req, DROPPED_HEADER) });
    res.status(202).json(result);
  });

  // OTLP/HTTP: success is 200 with an (empty) ExportTraceServiceResponse in the request's encoding,
  // as OpenTelemetry exporters expect; the counts travel in x-hoptrace-* headers. (The decoder
  // clips and checks every span value, so its hops pass the schema; a rejection would be counted.)
  router.post('/v1/traces', auth, async (req, res) => {
    const type = requireMediaType(req, OTLP_TYPES);
    const body = await readBody(req, ctx.maxBodyBytes);
    const hops = decodeOtlpTraces(body, type);
    // A span that only had a trace id joins the chain the store already holds its message in.
    await adoptKnownCorrelations(hops, async (messageId) => (await ctx.store.messageChains(messageId))[0]);
    const result = await ingestRecords(ctx, hops);
    res.setHeader('x-hoptrace-accepted', String(result.accepted));
    res.setHeader('x-hoptrace-duplicates', String(result.duplicates));
    if (type !== JSON_TYPE) res.status(200).type(type).send(Buffer.alloc(0));
    else res.status(200).json({});
  });

  return router;
}
