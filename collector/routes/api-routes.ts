/**
 * The read API under `/api`: chains, one chain, its export, one message, the
 * topology, live events and the UI's configuration, all behind the token
 * (unless reads are public), and the UI's sign-in (`/api/session`). Each route
 * validates its query with one schema compiled here, once.
 */
import { Router, type Request } from 'express';
import { AuthError, ErrorCodes, NotFoundError, ValidationError } from '../errors.ts';
import {
  STATUS_SEVERITY,
  type ChainDetail,
  type ChainList,
  type ChainSummary,
  type MessageDetail,
  type Topology,
  type UiConfig,
} from '../api-types.ts';
import { JSON_TYPE, readBody, requireMediaType } from '../request-body.ts';
import { buildChain } from '../chain-engine.ts';
import { addStalled, STALLED_LOOKBACK_MS } from '../topology-buckets.ts';
import { chainToJaeger, chainToOtlpJson } from '../chain-export.ts';
import type { CollectorContext } from '../context.ts';
import { readableStoredHops } from '../hop-schema.ts';
import { choice, choices, compileQuery, epochMs, flag, integer, text } from '../query-schema.ts';
import { REDELIVERED_FILTER, REPLAYED_FILTER } from '../store.ts';

/**
 * `GET /api/chains`. `status`: chain statuses or problems, repeated or
 * comma-separated, any of which matches; `redelivered` among them matches a
 * chain where any delivery was a redelivery (`status=failed,redelivered`:
 * failed OR redelivered), `replayed` a chain with a replayed dead letter. `redelivered=true|false`: only chains with / without
 * a redelivery, combined with the other filters by AND.
 */
const listQuery = compileQuery({
  status: choices([...STATUS_SEVERITY, REDELIVERED_FILTER, REPLAYED_FILTER]),
  redelivered: flag(),
  service: text(),
  // '' is the default exchange.
  exchange: text(1024, { allowEmpty: true }),
  routingKey: text(),
  queue: text(),
  q: text(),
  from: epochMs(),
  to: epochMs(),
  limit: integer(1, 500, 50),
  cursor: text(4096),
});
const noQuery = compileQuery({});
const exportQuery = compileQuery({ format: choice(['jaeger', 'otlp'], 'jaeger') });
const topologyQuery = compileQuery({ from: epochMs(), to: epochMs() });

/** Default topology window when `from` is not given. */
export const TOPOLOGY_DEFAULT_WINDOW_MS = 60 * 60 * 1000;

/** A chain rebuilt from its stored hops with the collector's clock and settings; 404 when unknown. */
export async function loadChain(ctx: CollectorContext, correlationId: string): Promise<ChainDetail> {
  const stored = await ctx.store.chainHops(correlationId);
  if (stored.length === 0) throw new NotFoundError(`no chain with correlation id "${correlationId}"`);
  // Whatever an older collector let into the store, a read of it answers.
  const { hops, unreadable } = readableStoredHops(stored);
  if (unreadable > 0) ctx.logger.warn({ correlationId, unreadable }, 'stored hops that fail the hop schema are left out of this chain');
  if (hops.length === 0) throw new NotFoundError(`chain "${correlationId}" holds no readable hop`);
  return buildChain(correlationId, hops, { ...ctx.engine, now: Date.now() });
}

/** Pages of lost/stuck chains a topology query reads at most (500 chains a page). */
const STALLED_MAX_PAGES = 20;

/**
 * The summaries of chains with lost or stuck messages that may have stopped
 * inside [from, to]: a query-time read of the list's status tags, so lost and
 * stuck (verdicts of the sweep, not of ingest) cost nothing on the write path.
 */
async function stalledChains(ctx: CollectorContext, from: number, to: number): Promise<ChainSummary[]> {
  const out: ChainSummary[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < STALLED_MAX_PAGES; page++) {
    const list = await ctx.store.listChains({ status: ['lost', 'stuck'], from: from - STALLED_LOOKBACK_MS, to, limit: 500, cursor });
    out.push(...list.items);
    if (list.nextCursor === null) break;
    cursor = list.nextCursor;
  }
  return out;
}

/** A string safe inside a Content-Disposition filename. */
function fileSafe(s: string): string {
  return s.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 100);
}

export function apiRoutes(ctx: CollectorContext): Router {
  const router = Router();

  // Sign-in of the UI: the token once, then an HttpOnly, SameSite=Strict session cookie.
  router.post('/api/session', async (req, res) => {
    noQuery(req.query);
    requireMediaType(req, [JSON_TYPE]);
    let token: unknown;
    try {
      token = (JSON.parse((await readBody(req, 8192)).toString('utf8')) as { token?: unknown } | null)?.token;
    } catch (cause) {
      throw new ValidationError(ErrorCodes.INVALID_BODY, 'the body must be JSON: {"token": "..."}', { cause });
    }
    if (typeof token !== 'string') throw new ValidationError(ErrorCodes.INVALID_BODY, 'the body must be JSON: {"token": "..."}', { field: 'token' });
    if (!ctx.auth.tokenMatches(token)) throw new AuthError('the token is wrong');
    ctx.auth.startSession(res, req.secure);
    res.status(204).end();
  });
  router.delete('/api/session', (req, res) => {
    noQuery(req.query);
    ctx.auth.endSession(res, req.secure);
    res.status(204).end();
  });
  router.use('/api', ctx.auth.reads);
  const param = (req: Request, name: string): string => String(req.params[name]);

  router.get('/api/chains', async (req, res) => {
    const q = listQuery(req.query);
    const list: ChainList = await ctx.store.listChains({
      status: q.status,
      redelivered: q.redelivered,
      service: q.service,
      exchange: q.exchange,
      routingKey: q.routingKey,
      queue: q.queue,
      q: q.q,
      from: q.from,
      to: q.to,
      limit: q.limit,
      cursor: q.cursor,
    });
    res.json(list);
  });

  router.get('/api/chains/:correlationId', async (req, res) => {
    noQuery(req.query);
    res.json(await loadChain(ctx, param(req, 'correlationId')));
  });

  router.get('/api/chains/:correlationId/export', async (req, res) => {
    const { format } = exportQuery(req.query);
    const id = param(req, 'correlationId');
    const detail = await loadChain(ctx, id);
    const body = format === 'jaeger' ? chainToJaeger(detail) : chainToOtlpJson(detail);
    res.attachment(`hoptrace-${fileSafe(id)}-${format}.json`);
    res.type('application/json').send(JSON.stringify(body, null, 2));
  });

  router.get('/api/messages/:messageId', async (req, res) => {
    noQuery(req.query);
    const messageId = param(req, 'messageId');
    const chains = await ctx.store.messageChains(messageId);
    if (chains.length === 0) throw new NotFoundError(`no message with id "${messageId}"`);
    // A message id is unique in practice; when it is not, the first chain holding it answers.
    const detail = await loadChain(ctx, chains[0]);
    const message = detail.messages.find((m) => m.messageId === messageId);
    if (!message) throw new NotFoundError(`message "${messageId}" is not part of chain "${detail.correlationId}"`);
    const body: MessageDetail = {
      correlationId: detail.correlationId,
      message,
      hops: detail.hops.filter((h) => h.messageId === messageId),
    };
    res.json(body);
  });

  router.get('/api/topology', async (req, res) => {
    const q = topologyQuery(req.query);
    const to = q.to ?? Date.now();
    const from = q.from ?? to - TOPOLOGY_DEFAULT_WINDOW_MS;
    if (from > to) {
      throw new ValidationError(ErrorCodes.INVALID_QUERY, 'query parameter "from" must not be after "to"', { field: 'from' });
    }
    const topology: Topology = addStalled(await ctx.store.topology(from, to), await stalledChains(ctx, from, to));
    res.json(topology);
  });

  router.get('/api/live', (req, res) => {
    noQuery(req.query);
    ctx.live.handle(req, res);
  });

  router.get('/api/config', (req, res) => {
    noQuery(req.query);
    const config: UiConfig = {
      version: ctx.version,
      lostAfterMs: ctx.engine.lostAfterMs,
      stuckAfterMs: ctx.engine.stuckAfterMs,
      replay: ctx.replay.config,
      ...(ctx.jaegerUrl ? { jaegerUrl: ctx.jaegerUrl } : {}),
    };
    res.json(config);
  });

  return router;
}
