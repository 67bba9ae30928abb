/**
 * The collector process: an express 5 app over a {@link Store}, with ingest,
 * the read API, live events, metrics, the UI, and the background status
 * sweep and retention.
 *
 * @example
 * const collector = await startCollector({ port: 0, db: '/tmp/hops.db' });
 * console.log(collector.url); // http://127.0.0.1:54321
 * await collector.close();
 */
import { createServer, STATUS_CODES, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { basename, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { type NextFunction, type Request, type Response } from 'express';
import { pino, type Logger } from 'pino';
import { ConfigError, ErrorCodes, HoptraceError, NotFoundError, statusOf, type ErrorBody, type ErrorCode } from './errors.ts';
import { Defaults, Env } from './settings.ts';
import { DEFAULT_ENGINE_OPTIONS } from './chain-engine.ts';
import { createAuth } from './auth.ts';
import type { CollectorContext } from './context.ts';
import type { IngestResult } from './api-types.ts';
import { RejectedRecordsError } from './ingest.ts';
import { LiveHub } from './live.ts';
import { CollectorMetrics } from './metrics.ts';
import { startRetention, type RetentionOptions } from './retention.ts';
import { apiRoutes, loadChain } from './routes/api-routes.ts';
import { failureRoutes } from './routes/failure-routes.ts';
import { ReplayService } from './replay.ts';
import { ingestRoutes } from './routes/ingest-routes.ts';
import { opsRoutes } from './routes/ops-routes.ts';
import { uiRoutes } from './routes/ui-routes.ts';
import { prepareDbDirectory } from './db-path.ts';
import { SqliteStore } from './sqlite-store.ts';
import { describeStore, openStore, parseStoreSpec, STORE_ENV } from './store-open.ts';
import type { Store } from './store.ts';
import { startSummaryFlush, startSweep } from './sweep.ts';
import { HopLimits } from '../src/contract/hop.ts';
import { boolean, finite, object, oneOf, parse, recordOf, string } from '../src/contract/schema.ts';
import { VERSION } from '../src/contract/version.ts';

/** Options of {@link startCollector}. Every one has a default; environment variables fill in where named. */
export interface CollectorOptions {
  /** TCP port; `0` picks a free one (read it back from `RunningCollector.port`). @default 4400 */
  port?: number;
  /** Interface to listen on; `0.0.0.0` inside a container. @default '127.0.0.1' */
  host?: string;
  /**
   * SQLite database file, created when missing. Its directory must exist, or be one missing level
   * under one that does (then created, and said on stderr); see `createDirs`.
   * @default process.env.HOPTRACE_DB ?? './hoptrace.db'
   */
  db?: string;
  /** Create every missing directory of the `db` path. @default false */
  createDirs?: boolean;
  /**
   * The store as one string, instead of `db`: `postgres://user@host/db` (several collectors may share
   * it), `sqlite:PATH` or a path. See `store-open.ts`.
   * @default process.env.HOPTRACE_STORE, else the SQLite file of `db`
   * @example 'postgres://hoptrace@db.internal:5432/observability'
   */
  storeUrl?: string;
  /**
   * The collector's token. Set, it guards everything but `/healthz`: ingest (`POST /v1/hops`,
   * `POST /v1/traces`) needs `Authorization: Bearer <token>`; reads (`/api/*`, `/metrics`) need
   * the same header or the session cookie the UI gets by asking for the token once
   * (`POST /api/session`). The UI's static files load without it (they hold no data) and ask.
   * `''` switches auth off even when the env var is set.
   * @default process.env.HOPTRACE_TOKEN (unset: no auth)
   */
  token?: string;
  /**
   * Leave reads (`/api/*`, `/metrics`, so the UI) open to anyone who can reach the collector while
   * ingest still needs the token: an explicit opt-out, for a collector behind its own access control.
   * @default false
   */
  publicReads?: boolean;
  /**
   * @deprecated Reads are protected by default now. `true` is accepted (and changes nothing);
   * `false` is an error that points to {@link publicReads}.
   */
  protectReads?: boolean;
  /** Largest accepted request body, compressed and after gunzip alike. @default 16_777_216 (16 MiB) */
  maxBodyBytes?: number;
  /**
   * Bytes of live events (`GET /api/live`) one client may fall behind by; beyond it the client
   * gets a final `reload` event and is disconnected (counted in `/metrics`).
   * @default 1_048_576 (1 MiB)
   */
  liveBufferBytes?: number;
  /** Directory of the built UI. @default `<package>/dist/ui` */
  uiDir?: string;
  /** Base URL of a Jaeger UI the UI links traces to. @default process.env.HOPTRACE_JAEGER_URL */
  jaegerUrl?: string;
  /** A message sent and not received within this is `lost`. @default 60_000 */
  lostAfterMs?: number;
  /** A message received and not settled within this is `stuck`. @default 60_000 */
  stuckAfterMs?: number;
  /** Redeliveries of one message that make a `redelivery-loop`. @default 5 */
  redeliveryLoopThreshold?: number;
  /** How often chains still in flight are re-evaluated (they turn lost/stuck with time). @default 5_000 */
  sweepIntervalMs?: number;
  /**
   * Background retention; `false` switches it off.
   * @default { maxAgeMs: 7 days, maxBytes: 2 GiB, intervalMs: 60_000 }
   */
  retention?: RetentionOptions | false;
  /** SQLite durability: `full` survives a power cut, `normal` a process crash. @default 'full' */
  durability?: 'full' | 'normal';
  /**
   * RabbitMQ to replay dead-lettered messages on (`amqp://user:pass@host:5672/vhost`). Unset,
   * replay is off and the UI says why; set, the collector connects when a replay first needs it.
   * Replay also needs a token to guard it ({@link adminToken}, else {@link token}).
   * @default undefined (replay off)
   */
  amqpUrl?: string;
  /**
   * The token replay needs (`Authorization: Bearer <admin token>`), apart from the one that guards
   * ingest and reads. Unset, replay needs {@link token} (a bearer header or the UI's session).
   * @default process.env.HOPTRACE_ADMIN_TOKEN
   */
  adminToken?: string;
  /** Messages a replay republishes per second at most. @default 100 */
  replayRatePerSec?: number;
  /**
   * Queue → the dead-letter queue its rejected messages go to, for dead-letter queues nobody
   * consumes: such a reject is `dead-lettered` at once (no copy has to be seen), and replay knows
   * where to find the message. A dead-letter queue that a consumer receives from needs no entry.
   * @default {}
   * @example { 'coffee.orders': 'coffee.dead-letters' }
   */
  deadLetterQueues?: Readonly<Record<string, string>>;
  /** A store to use instead of opening `db` (it is closed with the collector). */
  store?: Store;
  /** Where the collector logs. @default pino at level info on stdout */
  logger?: Logger;
}

export interface RunningCollector {
  /** Base URL, e.g. `http://127.0.0.1:4400`. */
  url: string;
  port: number;
  store: Store;
  /** Stop accepting, end live streams, finish requests in flight, stop background jobs, close the store. */
  close(): Promise<void>;
}

/** Default UI directory: `dist/ui` of the package, from the source tree or from `dist/collector/`. */
function defaultUiDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  return basename(dirname(here)) === 'dist' ? resolve(here, '../ui') : resolve(here, '../dist/ui');
}

/** The error body for anything thrown in a handler (a 400 for an all-invalid ingest also lists the records). */
export function toErrorBody(err: unknown): ErrorBody & Partial<Pick<IngestResult, 'rejected' | 'rejections'>> {
  let statusCode = 500;
  let code: string = ErrorCodes.INTERNAL;
  let message = 'internal error';
  if (err instanceof HoptraceError) {
    statusCode = statusOf(err);
    code = err.code;
    message = err.message;
  } else if (err instanceof Error) {
    const status = (err as { status?: unknown; statusCode?: unknown }).status ?? (err as { statusCode?: unknown }).statusCode;
    if (typeof status === 'number' && status >= 400 && status < 600) statusCode = status;
    const byStatus: Record<number, ErrorCode> = {
      400: ErrorCodes.INVALID_QUERY,
      401: ErrorCodes.UNAUTHORIZED,
      404: ErrorCodes.NOT_FOUND,
      413: ErrorCodes.PAYLOAD_TOO_LARGE,
      415: ErrorCodes.UNSUPPORTED_MEDIA_TYPE,
    };
    code = byStatus[statusCode] ?? ErrorCodes.INTERNAL;
    message = statusCode < 500 ? err.message : `internal error: ${err.message}`;
  }
  const body = { statusCode, code, error: STATUS_CODES[statusCode] ?? 'Error', message };
  if (err instanceof RejectedRecordsError) return { ...body, rejected: err.rejected, rejections: err.rejections };
  return body;
}

/** The environment variable of {@link CollectorOptions.adminToken}. */
export const ADMIN_TOKEN_ENV = Env.HOPTRACE_ADMIN_TOKEN;

const nonNegativeInt = finite({ min: 0, max: Number.MAX_SAFE_INTEGER, integer: true, text: 'be a non-negative integer' });
const someString = string(Number.MAX_SAFE_INTEGER);
const name = string(HopLimits.SHORT, { nonEmpty: true });

/**
 * The options {@link startCollector} checks before it opens anything (the
 * store, logger and retention are checked where they are used). Unknown
 * options are left alone, as before.
 */
const optionsSchema = object({
  port: nonNegativeInt,
  host: someString,
  db: someString,
  createDirs: boolean,
  storeUrl: someString,
  token: someString,
  publicReads: boolean,
  protectReads: boolean,
  maxBodyBytes: nonNegativeInt,
  liveBufferBytes: nonNegativeInt,
  uiDir: someString,
  jaegerUrl: someString,
  lostAfterMs: nonNegativeInt,
  stuckAfterMs: nonNegativeInt,
  redeliveryLoopThreshold: nonNegativeInt,
  sweepIntervalMs: nonNegativeInt,
  durability: oneOf(['full', 'normal']),
  amqpUrl: string(Number.MAX_SAFE_INTEGER, { pattern: /^amqps?:\/\//, patternText: 'be an amqp:// or amqps:// URL' }),
  adminToken: someString,
  replayRatePerSec: finite({ min: Number.MIN_VALUE, max: Number.MAX_VALUE, text: 'be a positive number' }),
  deadLetterQueues: recordOf(name, name),
});

/** The option value a message may show: a URL without its credentials. */
function shown(v: unknown): string {
  return typeof v === 'string' ? `"${v.replace(/\/\/[^@/]*@/, '//…@')}"` : String(v);
}

function checkOptions(options: CollectorOptions): void {
  parse(optionsSchema, options, (f) => new ConfigError(`option "${f.field}" must ${f.must}, got ${shown(f.got)}`));
}

/** The map as the engine keeps it (no prototype), or undefined when it names no queue. */
function deadLetterMap(map: Readonly<Record<string, string>> | undefined): Readonly<Record<string, string>> | undefined {
  if (map === undefined || Object.keys(map).length === 0) return undefined;
  return Object.assign(Object.create(null) as Record<string, string>, map);
}

/** Start the collector; resolves once it is listening. */
export async function startCollector(options: CollectorOptions = {}): Promise<RunningCollector> {
  checkOptions(options);
  const logger = options.logger ?? pino({ name: 'hoptrace-collector' });
  const port = options.port ?? Defaults.COLLECTOR_PORT;
  const host = options.host ?? '127.0.0.1';
  const deadLetterQueues = deadLetterMap(options.deadLetterQueues);
  const engine = {
    ...(deadLetterQueues === undefined ? {} : { deadLetterQueues }),
    lostAfterMs: options.lostAfterMs ?? DEFAULT_ENGINE_OPTIONS.lostAfterMs,
    stuckAfterMs: options.stuckAfterMs ?? DEFAULT_ENGINE_OPTIONS.stuckAfterMs,
    redeliveryLoopThreshold: options.redeliveryLoopThreshold ?? DEFAULT_ENGINE_OPTIONS.redeliveryLoopThreshold,
  };
  const maxBodyBytes = options.maxBodyBytes ?? 16 * 1024 * 1024;
  const sweepIntervalMs = options.sweepIntervalMs || 5_000;
  const token = options.token ?? process.env[Env.HOPTRACE_TOKEN] ?? undefined;
  if (options.protectReads === false) {
    throw new ConfigError('option "protectReads" is gone: reads are protected by the token by default; pass "publicReads: true" to leave them open');
  }
  if (options.protectReads === true && options.publicReads === true) {
    throw new ConfigError('options "protectReads" and "publicReads" contradict each other; reads are protected by default, so pass only "publicReads" to open them');
  }
  const jaegerUrl = (options.jaegerUrl ?? process.env[Env.HOPTRACE_JAEGER_URL]) || undefined;
  const adminToken = (options.adminToken ?? process.env[ADMIN_TOKEN_ENV]) || undefined;
  const replayRatePerSec = options.replayRatePerSec ?? 100;

  // An explicit option beats the environment; a store URL beats a file path at the same level.
  const storeUrl = options.storeUrl ?? (options.db === undefined ? process.env[STORE_ENV] || undefined : undefined);
  let store = options.store;
  if (store === undefined && storeUrl !== undefined) {
    const spec = parseStoreSpec(storeUrl);
    if (spec.kind === 'sqlite') prepareDbDirectory(spec.path, { createDirs: options.createDirs });
    store = await openStore(spec, { engine, durability: options.durability });
  }
  if (store === undefined) {
    const path = options.db ?? process.env[Env.HOPTRACE_DB] ?? Defaults.DB_PATH;
    prepareDbDirectory(path, { createDirs: options.createDirs });
    store = new SqliteStore({ path, engine, durability: options.durability });
  }

  const metrics = new CollectorMetrics();
  const auth = createAuth(token || undefined, options.publicReads ?? false, adminToken);
  const replay = new ReplayService({
    store,
    // Called only once the collector runs, with `ctx` in place.
    loadChain: (id) => loadChain(ctx, id),
    logger,
    amqpUrl: options.amqpUrl || undefined,
    guarded: auth.enabled || auth.hasAdminToken,
    adminToken: auth.hasAdminToken,
    ratePerSec: replayRatePerSec,
  });
  const ctx: CollectorContext = {
    store,
    live: new LiveHub({
      maxBufferBytes: options.liveBufferBytes,
      onCut: () => metrics.liveClientsCut.inc(),
    }),
    metrics,
    logger,
    engine,
    maxBodyBytes,
    auth,
    jaegerUrl: jaegerUrl?.replace(/\/+$/, ''),
    version: VERSION,
    startedAt: Date.now(),
    replay,
  };

  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  app.use((req, res, next) => {
    res.on('finish', () => {
      const route = req.route ? `${req.method} ${req.baseUrl}${String(req.route.path)}` : `${req.method} (unmatched)`;
      ctx.metrics.httpRequests.inc({ route, status: String(res.statusCode) });
    });
    next();
  });
  app.use(ingestRoutes(ctx));
  // Before the API's blanket reads guard: replay answers to the admin token alone.
  app.use(failureRoutes(ctx));
  app.use(apiRoutes(ctx));
  app.use(opsRoutes(ctx));
  app.use(uiRoutes(options.uiDir ?? defaultUiDir()));
  app.use((req: Request, _res: Response, next: NextFunction) => {
    next(new NotFoundError(`no route for ${req.method} ${req.path}`));
  });
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const body = toErrorBody(err);
    if (body.statusCode >= 500) logger.error({ err, method: req.method, path: req.path }, 'request failed');
    if (req.path.startsWith('/v1/')) ctx.metrics.rejected.inc({ code: body.code });
    if (res.headersSent) {
      res.destroy();
      return;
    }
    res.status(body.statusCode).json(body);
  });

  const server: Server = createServer(app);
  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolveListen();
    });
  }).catch(async (cause: unknown) => {
    await store.close();
    const code = (cause as NodeJS.ErrnoException).code;
    const advice =
      code === 'EADDRINUSE'
        ? `; another process listens on port ${port}: stop it, or choose another port with --port N (0 picks a free one)`
        : code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EAI_AGAIN'
          ? `; ${host} is not an address of this machine: use --host 127.0.0.1, or 0.0.0.0 for every interface`
          : code === 'EACCES'
            ? `; a port below 1024 needs privileges: choose --port 1024 or above`
            : '';
    throw new ConfigError(`the collector cannot listen on ${host}:${port}: ${(cause as Error).message}${advice}`, { cause });
  });

  const stopSweep = startSweep(ctx, sweepIntervalMs);
  const stopSummaries = startSummaryFlush(ctx);
  const stopRetention = startRetention(store, options.retention, logger);
  const address = server.address() as AddressInfo;
  const urlHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host === '0.0.0.0' || host === '::' ? '127.0.0.1' : urlHost}:${address.port}`;
  logger.info({ url, store: describeStore(store) }, 'hoptrace collector listening');

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      await Promise.all([stopSweep(), stopSummaries(), stopRetention()]);
      ctx.live.close();
      await ctx.replay.close();
      await new Promise<void>((done) => {
        const force = setTimeout(() => server.closeAllConnections(), 5_000);
        server.close(() => {
          clearTimeout(force);
          done();
        });
        server.closeIdleConnections();
      });
      await store.close();
      logger.info('hoptrace collector closed');
    })();
    return closing;
  };

  return { url, port: address.port, store, close };
}
