/**
 * Failure groups and replay under `/api`, each route behind its guard (reads,
 * or for `POST /api/replay` the admin guard alone, so the admin token works
 * where the reads token is another one):
 *
 * - `GET /api/failures`: groups with an occurrence in a window (`from`/`to`,
 *   to the minute; default all time), filtered by `status` and `service`,
 *   sorted by most recent (`sort=recent`) or largest (`sort=count`), each
 *   with a sparkline over a window shared by all;
 * - `GET /api/failures/:fingerprint`: one group (same window);
 * - `GET /api/failures/:fingerprint/chains`: its chains, a chain list
 *   filtered by the group's tag;
 * - `GET /api/replay`: whether replay is on;
 * - `POST /api/replay`: replay a group or messages (`ReplayRequest`), behind
 *   the admin guard.
 */
import { Router, type Request } from 'express';
import { ErrorCodes, NotFoundError, ValidationError } from '../errors.ts';
import { PROBLEM_STATUSES, STATUS_SEVERITY, type FailureGroup, type FailureGroupList, type ReplayRequest } from '../api-types.ts';
import type { CollectorContext } from '../context.ts';
import { FAILURE_BUCKET_MS } from '../chain-failures.ts';
import { isFingerprint } from '../failure-fingerprint.ts';
import type { FailureGroupInfo } from '../failure-buckets.ts';
import { choice, choices, compileQuery, epochMs, integer, text } from '../query-schema.ts';
import { JSON_TYPE, readBody, requireMediaType } from '../request-body.ts';
import { REPLAY_MAX_LIMIT } from '../replay.ts';
import { REDELIVERED_FILTER, REPLAYED_FILTER, type FailureBin } from '../store.ts';

/** Bins of a sparkline. */
export const SPARKLINE_BINS = 30;
/** An occurrence this recent makes a group ongoing ("still happening"). */
export const ONGOING_MS = 5 * 60_000;

const listQuery = compileQuery({
  status: choices(PROBLEM_STATUSES),
  service: text(),
  from: epochMs(),
  to: epochMs(),
  sort: choice(['recent', 'count'], 'recent'),
  limit: integer(1, 1000, 100),
});
const groupQuery = compileQuery({ from: epochMs(), to: epochMs() });
const chainsQuery = compileQuery({
  status: choices([...STATUS_SEVERITY, REDELIVERED_FILTER, REPLAYED_FILTER]),
  from: epochMs(),
  to: epochMs(),
  limit: integer(1, 500, 50),
  cursor: text(4096),
});
const noQuery = compileQuery({});

const minuteOf = (t: number) => Math.floor(t / FAILURE_BUCKET_MS) * FAILURE_BUCKET_MS;

function window(q: { from?: number; to?: number }, now: number): { from: number; to: number } {
  const to = q.to ?? now;
  const from = q.from ?? 0;
  if (from > to) throw new ValidationError(ErrorCodes.INVALID_QUERY, 'query parameter "from" must not be after "to"', { field: 'from' });
  return { from, to };
}

/** Groups with their counts in [from, to], sparklines over a window every group shares. */
async function failureGroups(
  ctx: CollectorContext,
  q: { from: number; to: number; status?: readonly string[]; service?: string; fingerprint?: string },
  now: number,
): Promise<Omit<FailureGroupList, 'items'> & { items: FailureGroup[] }> {
  const from = minuteOf(q.from);
  const to = q.to;
  // Totals per group over the whole window: one bin (added up here too, whatever bins a store returns).
  const totals = sumByGroup(await ctx.store.failureCounts({ from, to, binStart: from, binMs: Number.MAX_SAFE_INTEGER, fingerprint: q.fingerprint }));
  const infos = new Map((await ctx.store.failureGroups(totals.map((t) => t.fingerprint))).map((g) => [g.fingerprint, g]));
  const kept = totals.filter((t) => {
    const g = infos.get(t.fingerprint);
    return g !== undefined && (!q.status?.length || q.status.includes(g.status)) && (q.service === undefined || g.service === q.service);
  });
  // The sparkline window: the list's window, or from the earliest occurrence listed; whole minutes, at least the bins' count.
  const end = minuteOf(to) + FAILURE_BUCKET_MS;
  const earliest = kept.length > 0 ? Math.min(...kept.map((t) => t.first)) : end - SPARKLINE_BINS * FAILURE_BUCKET_MS;
  const start = q.from > 0 ? from : earliest;
  const binMs = Math.max(1, Math.ceil((end - start) / SPARKLINE_BINS / FAILURE_BUCKET_MS)) * FAILURE_BUCKET_MS;
  const sparklineFrom = end - binMs * SPARKLINE_BINS;
  const bins = new Map<string, number[]>();
  if (kept.length > 0) {
    for (const b of await ctx.store.failureCounts({ from: Math.max(from, sparklineFrom), to, binStart: sparklineFrom, binMs, fingerprint: q.fingerprint })) {
      let line = bins.get(b.fingerprint);
      if (line === undefined) bins.set(b.fingerprint, (line = new Array(SPARKLINE_BINS).fill(0)));
      if (b.bin >= 0 && b.bin < SPARKLINE_BINS) line[b.bin] += b.count;
    }
  }
  const items = kept.map((t) => toGroup(infos.get(t.fingerprint)!, t, bins.get(t.fingerprint) ?? new Array(SPARKLINE_BINS).fill(0), now));
  return { items, from: q.from, to, sparklineFrom, binMs, ongoingMs: ONGOING_MS };
}

function sumByGroup(bins: readonly FailureBin[]): FailureBin[] {
  const out = new Map<string, FailureBin>();
  for (const b of bins) {
    const t = out.get(b.fingerprint);
    if (t === undefined) out.set(b.fingerprint, { ...b, bin: 0 });
    else {
      t.count += b.count;
      t.unresolved += b.unresolved;
      t.first = Math.min(t.first, b.first);
      t.last = Math.max(t.last, b.last);
    }
  }
  return [...out.values()];
}

function toGroup(g: FailureGroupInfo, t: { count: number; unresolved: number; first: number; last: number }, sparkline: number[], now: number): FailureGroup {
  const group: FailureGroup = {
    fingerprint: g.fingerprint,
    status: g.status as FailureGroup['status'],
    service: g.service,
    pattern: g.pattern,
    count: t.count,
    unresolved: t.unresolved,
    services: [g.service],
    queues: [g.queue, g.deadLetterQueue].filter((x): x is string => x !== undefined && x !== ''),
    firstSeen: t.first,
    lastSeen: t.last,
    ongoing: t.last + FAILURE_BUCKET_MS > now - ONGOING_MS,
    sparkline,
    replayable: g.status === 'dead-lettered' && t.unresolved > 0,
  };
  if (g.queue !== undefined) group.queue = g.queue;
  if (g.exchange !== undefined) group.exchange = g.exchange;
  if (g.routingKey !== undefined) group.routingKey = g.routingKey;
  if (g.errorType !== undefined) group.errorType = g.errorType;
  if (g.example !== undefined) group.example = g.example;
  return group;
}

function fingerprintParam(req: Request): string {
  const fp = String(req.params.fingerprint);
  if (!isFingerprint(fp)) throw new ValidationError(ErrorCodes.INVALID_QUERY, `"${fp}" is not a failure group's fingerprint (16 hex characters)`, { field: 'fingerprint' });
  return fp;
}

/** The body of `POST /api/replay`, checked. */
function replayRequest(value: unknown): ReplayRequest {
  const bad = (field: string, must: string) => new ValidationError(ErrorCodes.INVALID_BODY, `"${field}" must ${must}`, { field });
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw bad('(body)', 'be a JSON object: {"group": "<fingerprint>"} or {"messageIds": ["…"]}');
  const v = value as Record<string, unknown>;
  for (const key of Object.keys(v)) {
    if (!['group', 'messageIds', 'dryRun', 'requestedBy', 'limit'].includes(key)) throw bad(key, 'not be there: the body takes group, messageIds, dryRun, requestedBy, limit');
  }
  const out: ReplayRequest = {};
  if (v.group !== undefined) {
    if (typeof v.group !== 'string' || !isFingerprint(v.group)) throw bad('group', "be a failure group's fingerprint (16 hex characters)");
    out.group = v.group;
  }
  if (v.messageIds !== undefined) {
    if (!Array.isArray(v.messageIds) || v.messageIds.length === 0 || v.messageIds.length > REPLAY_MAX_LIMIT || !v.messageIds.every((m) => typeof m === 'string' && m.length > 0 && m.length <= 1024)) {
      throw bad('messageIds', `be 1 to ${REPLAY_MAX_LIMIT} message ids (strings)`);
    }
    out.messageIds = v.messageIds as string[];
  }
  if ((out.group === undefined) === (out.messageIds === undefined)) throw bad('group', 'be given, or "messageIds", not both and not neither');
  if (v.dryRun !== undefined) {
    if (typeof v.dryRun !== 'boolean') throw bad('dryRun', 'be true or false');
    out.dryRun = v.dryRun;
  }
  if (v.requestedBy !== undefined) {
    if (typeof v.requestedBy !== 'string' || v.requestedBy.length > 200) throw bad('requestedBy', 'be a string of at most 200 characters');
    out.requestedBy = v.requestedBy;
  }
  if (v.limit !== undefined) {
    if (!Number.isInteger(v.limit) || (v.limit as number) < 1 || (v.limit as number) > REPLAY_MAX_LIMIT) throw bad('limit', `be an integer from 1 to ${REPLAY_MAX_LIMIT}`);
    out.limit = v.limit as number;
  }
  return out;
}

export function failureRoutes(ctx: CollectorContext): Router {
  const router = Router();

  router.get('/api/failures', ctx.auth.reads, async (req, res) => {
    const q = listQuery(req.query);
    const now = Date.now();
    const list = await failureGroups(ctx, { ...window(q, now), status: q.status, service: q.service }, now);
    list.items.sort(q.sort === 'count' ? (a, b) => b.count - a.count || b.lastSeen - a.lastSeen : (a, b) => b.lastSeen - a.lastSeen || b.count - a.count);
    const body: FailureGroupList = { ...list, items: list.items.slice(0, q.limit) };
    res.json(body);
  });

  router.get('/api/failures/:fingerprint', ctx.auth.reads, async (req, res) => {
    const fingerprint = fingerprintParam(req);
    const q = groupQuery(req.query);
    const now = Date.now();
    const list = await failureGroups(ctx, { ...window(q, now), fingerprint }, now);
    const group = list.items[0];
    if (group === undefined) throw new NotFoundError(`no failure group "${fingerprint}" in this window`);
    res.json(group);
  });

  router.get('/api/failures/:fingerprint/chains', ctx.auth.reads, async (req, res) => {
    const failure = fingerprintParam(req);
    const q = chainsQuery(req.query);
    res.json(await ctx.store.listChains({ failure, status: q.status, from: q.from, to: q.to, limit: q.limit, cursor: q.cursor }));
  });

  router.get('/api/replay', ctx.auth.reads, (req, res) => {
    noQuery(req.query);
    res.json(ctx.replay.config);
  });

  router.post('/api/replay', ctx.auth.admin, async (req, res) => {
    noQuery(req.query);
    requireMediaType(req, [JSON_TYPE]);
    let body: unknown;
    try {
      body = JSON.parse((await readBody(req, 1024 * 1024)).toString('utf8'));
    } catch (cause) {
      throw new ValidationError(ErrorCodes.INVALID_BODY, 'the body must be JSON: {"group": "<fingerprint>"} or {"messageIds": ["…"]}', { cause });
    }
    res.json(await ctx.replay.replay(replayRequest(body)));
  });

  return router;
}
