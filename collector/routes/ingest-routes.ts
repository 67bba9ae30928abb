/**
 * Ingest: `POST /v1/hops` (hop records as NDJSON or JSON) and
 * `POST /v1/traces` (OTLP/HTTP traces). Both end in the same validated,
 * transactional ingest path; `202`/`200` only after the commit.
 */
import { Router } from 'express';
import { adoptKnownCorrelations, decodeOtlpTraces } from '../otlp-decode.ts';
import { bearerAuth } from '../auth.ts';
import type { CollectorContext } from '../context.ts';
import { ingestRecords } from '../ingest.ts';
import { JSON_TYPE, NDJSON_TYPES, parseJsonRecords, parseNdjson, readBody, requireMediaType } from '../request-body.ts';

/** Header a hoptrace transport uses to report records it dropped since its last successful request. */
export const DROPPED_HEADER = 'x-hoptrace-dropped';

const HOPS_TYPES = [...NDJSON_TYPES, JSON_TYPE];
const OTLP_PROTOBUF = 'application/x-protobuf';
const OTLP_TYPES = [OTLP_PROTOBUF, 'application/protobuf', JSON_TYPE];

export function ingestRoutes(ctx: CollectorContext): Router {
  const router = Router();
  const auth = bearerAuth(ctx.token);

  router.post('/v1/hops', auth, async (req, res) => {
    const type = requireMediaType(req, HOPS_TYPES);
    const text = (await readBody(req, ctx.maxBodyBytes)).toString('utf8');
    const values = type === JSON_TYPE ? parseJsonRecords(text) : parseNdjson(text);
    const result = await ingestRecords(ctx, values);
    const dropped = Number(req.headers[DROPPED_HEADER]);
    if (Number.isInteger(dropped) && dropped > 0) ctx.metrics.transportDropped.inc({}, dropped);
    res.status(202).json(result);
  });

  // OTLP/HTTP: success is 200 with an (empty) ExportTraceServiceResponse in the request's encoding,
  // as OpenTelemetry exporters expect; the counts travel in x-hoptrace-* headers.
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
