/**
 * The `hoptrace` command line: `hoptrace collector` runs the collector,
 * `hoptrace import FILE...` loads pino log files into a store,
 * `hoptrace migrate` copies one store into another,
 * `hoptrace replay` asks a running collector to replay dead-lettered messages.
 * `bin/hoptrace.js` calls {@link main} and exits with its result.
 */
import { hostname, userInfo } from 'node:os';
import { resolve as resolvePath } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { HoptraceError } from './errors.ts';
import { Defaults, Env } from './settings.ts';
import { DEFAULT_ENGINE_OPTIONS } from './chain-engine.ts';
import { formatImportSummary, formatProgress, importFiles, importVerdict } from './import.ts';
import { RETENTION_DEFAULTS } from './retention.ts';
import type { ReplayRequest, ReplayResult } from './api-types.ts';
import { ADMIN_TOKEN_ENV, startCollector, type CollectorOptions } from './server.ts';
import { redactUrl } from '../src/contract/url.ts';
import { formatMigrateProgress, formatMigrateSummary, migrateStore } from './store-migrate.ts';
import { openStore, parseStoreSpec, requireExistingStore, STORE_ENV } from './store-open.ts';
import { prepareDbDirectory } from './db-path.ts';
import { VERSION } from '../src/contract/version.ts';

const HELP = `hoptrace ${VERSION}: make event-driven systems on RabbitMQ debuggable

Usage:
  hoptrace collector [options]      run the collector (HTTP API, ingest, timeline UI)
  hoptrace import [--db PATH | --store URL] FILE...
                                    load the hop records of pino log files (NDJSON, .gz too)
  hoptrace migrate --from STORE --to STORE
                                    copy every record of one store into another, e.g.
                                    --from sqlite:./hoptrace.db --to postgres://user@host/db
  hoptrace replay --group FINGERPRINT | --message ID... [--dry-run]
                                    take dead-lettered messages from their dead-letter queues and
                                    publish them again, in their chains (asks a running collector)
  hoptrace --help | --version

Stores:
  sqlite:PATH or PATH       one SQLite file, one collector (the default: ${Defaults.DB_PATH})
  postgres://USER@HOST:PORT/DB[?schema=NAME][&partition_ms=N]
                            PostgreSQL, shared by any number of collectors behind a load balancer;
                            the schema (default hoptrace) is created and migrated by the first one;
                            retention drops whole partitions of arrivals, N ms wide (default a day,
                            fixed when the schema is created)

Collector options:
  --port N                  TCP port; 0 picks a free one            (default ${Defaults.COLLECTOR_PORT})
  --host HOST               interface to listen on; 0.0.0.0 in a container (default 127.0.0.1)
  --db PATH                 SQLite database file                     (default $${Env.HOPTRACE_DB} or ${Defaults.DB_PATH})
  --store URL               the store instead of --db: postgres://… or sqlite:PATH (default $${STORE_ENV})
  --create-dirs             create every missing directory of the --db path (default: only the file's own
                            directory, when its parent exists, and said so on stderr)
  --token TOKEN             the token that guards ingest, /api/*, /metrics and the UI (not /healthz)
                                                                     (default $${Env.HOPTRACE_TOKEN}; unset: no auth)
  --public-reads            leave /api/*, /metrics and the UI open; ingest still needs the token
  --jaeger-url URL          Jaeger UI the timeline links traces to   (default $${Env.HOPTRACE_JAEGER_URL})
  --ui-dir DIR              built UI to serve                        (default <package>/dist/ui)
  --max-body-bytes N        largest ingest body, after gunzip        (default 16777216)
  --live-buffer-bytes N     how far a live-events client may fall behind before it is told
                            to reload and disconnected               (default 1048576)
  --lost-after-ms N         sent and not received this long: lost    (default ${DEFAULT_ENGINE_OPTIONS.lostAfterMs})
  --stuck-after-ms N        received and not settled this long: stuck (default ${DEFAULT_ENGINE_OPTIONS.stuckAfterMs})
  --retention-max-age-ms N  delete chains idle this long; 0 = never  (default ${RETENTION_DEFAULTS.maxAgeMs}, 7 days)
  --retention-max-bytes N   keep the store under this size; 0 = no limit (default ${RETENTION_DEFAULTS.maxBytes}, 2 GiB)
  --durability full|normal  SQLite: full: a 202 survives a power cut (fsync per request);
                            normal: survives a crash of the process, faster on slow disks (default full).
                            PostgreSQL: its own synchronous_commit decides.
  --amqp-url URL            RabbitMQ to replay dead-lettered messages on; unset: replay is off
  --admin-token TOKEN       the token replay needs (default $HOPTRACE_ADMIN_TOKEN; unset: --token)
  --replay-rate N           messages a replay republishes per second at most (default 100)
  --dead-letter-queue Q=DLQ queue Q's rejects go to dead-letter queue DLQ, which nobody consumes:
                            dead-lettered at once, and replay finds them there (repeatable)

Replay options:
  --group FINGERPRINT       every dead-lettered message of this failure group not replayed yet
  --message ID              this message (repeatable)
  --dry-run                 list what would be replayed; move nothing
  --url URL                 the collector                            (default $HOPTRACE_URL or http://localhost:${Defaults.COLLECTOR_PORT})
  --token TOKEN             its admin token, else its token          (default $HOPTRACE_ADMIN_TOKEN, else $${Env.HOPTRACE_TOKEN})
  --limit N                 at most this many messages               (default 1000)
  Exits 0 when every message was replayed (or, with --dry-run, would be), 1 otherwise.

Import options:
  --db PATH                 SQLite database file                     (default $${Env.HOPTRACE_DB} or ${Defaults.DB_PATH})
  --store URL               the store instead of --db: postgres://… or sqlite:PATH (default $${STORE_ENV})
  --create-dirs             create every missing directory of the --db path (default: only the file's own
                            directory, when its parent exists, and said so)
  --batch-size N            records per transaction                  (default 1000)
  --allow-invalid           exit 0 when invalid hop records were left out (the valid ones are stored
                            either way; default: exit 1). An import that stores nothing exits 1 regardless.

Migrate options:
  --from STORE              the store to read (opened as a collector would: an older SQLite file is migrated first)
  --to STORE                the store to write; records it already holds are skipped, so a migration can be re-run
  --create-dirs             create every missing directory of a --to SQLite path (default: only its own
                            directory, when its parent exists, and said so)

Stop the collector with Ctrl-C (SIGINT) or SIGTERM: it finishes requests in flight and closes the database.
`;

class UsageError extends Error {
  override name = 'UsageError';
}

function integerFlag(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) throw new UsageError(`--${name} must be a non-negative integer, got "${value}"`);
  return n;
}

function parse(
  args: string[],
  options: ParseArgsConfig['options'],
  positionals: boolean,
): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  try {
    return parseArgs({ args, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: positionals, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

async function runCollector(args: string[]): Promise<number> {
  const { values } = parse(
    args,
    {
      port: { type: 'string' },
      host: { type: 'string' },
      db: { type: 'string' },
      store: { type: 'string' },
      'create-dirs': { type: 'boolean' },
      token: { type: 'string' },
      'public-reads': { type: 'boolean' },
      'protect-reads': { type: 'boolean' },
      'jaeger-url': { type: 'string' },
      'ui-dir': { type: 'string' },
      'max-body-bytes': { type: 'string' },
      'live-buffer-bytes': { type: 'string' },
      'lost-after-ms': { type: 'string' },
      'stuck-after-ms': { type: 'string' },
      'retention-max-age-ms': { type: 'string' },
      'retention-max-bytes': { type: 'string' },
      durability: { type: 'string' },
      'amqp-url': { type: 'string' },
      'admin-token': { type: 'string' },
      'replay-rate': { type: 'string' },
      'dead-letter-queue': { type: 'string', multiple: true },
    },
    false,
  );
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const port = integerFlag('port', values.port as string | undefined);
  if (port !== undefined && port > 65535) throw new UsageError(`--port must be at most 65535, got ${port}`);
  const durability = values.durability as string | undefined;
  if (durability !== undefined && durability !== 'full' && durability !== 'normal') {
    throw new UsageError(`--durability must be full or normal, got "${durability}"`);
  }
  if (values.store !== undefined && values.db !== undefined) throw new UsageError('give --store or --db, not both');
  if (values['protect-reads']) {
    if (values['public-reads']) throw new UsageError('--protect-reads and --public-reads contradict each other; reads are protected by default');
    process.stderr.write('hoptrace: --protect-reads is no longer needed: with a token, reads are protected by default (--public-reads opens them)\n');
  }
  const deadLetterQueues: Record<string, string> = {};
  for (const pair of (values['dead-letter-queue'] as unknown as string[] | undefined) ?? []) {
    const eq = pair.indexOf('=');
    if (eq <= 0 || eq === pair.length - 1) throw new UsageError(`--dead-letter-queue takes QUEUE=DEAD_LETTER_QUEUE, got "${pair}"`);
    deadLetterQueues[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  const replayRate = integerFlag('replay-rate', values['replay-rate'] as string | undefined);
  if (replayRate === 0) throw new UsageError('--replay-rate must be at least 1');
  const options: CollectorOptions = {
    amqpUrl: values['amqp-url'] as string | undefined,
    adminToken: values['admin-token'] as string | undefined,
    replayRatePerSec: replayRate,
    deadLetterQueues,
    durability,
    port,
    host: values.host as string | undefined,
    db: values.db as string | undefined,
    storeUrl: values.store as string | undefined,
    createDirs: values['create-dirs'] as boolean | undefined,
    token: values.token as string | undefined,
    publicReads: values['public-reads'] as boolean | undefined,
    jaegerUrl: values['jaeger-url'] as string | undefined,
    uiDir: values['ui-dir'] as string | undefined,
    maxBodyBytes: integerFlag('max-body-bytes', values['max-body-bytes'] as string | undefined),
    liveBufferBytes: integerFlag('live-buffer-bytes', values['live-buffer-bytes'] as string | undefined),
    lostAfterMs: integerFlag('lost-after-ms', values['lost-after-ms'] as string | undefined),
    stuckAfterMs: integerFlag('stuck-after-ms', values['stuck-after-ms'] as string | undefined),
    retention: {
      maxAgeMs: integerFlag('retention-max-age-ms', values['retention-max-age-ms'] as string | undefined),
      maxBytes: integerFlag('retention-max-bytes', values['retention-max-bytes'] as string | undefined),
    },
  };
  const collector = await startCollector(options);
  await new Promise<void>((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      process.stderr.write(`hoptrace: ${signal}, closing the collector\n`);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  await collector.close();
  return 0;
}

async function runImport(args: string[]): Promise<number> {
  const { values, positionals } = parse(
    args,
    {
      db: { type: 'string' },
      store: { type: 'string' },
      'batch-size': { type: 'string' },
      'create-dirs': { type: 'boolean' },
      'allow-invalid': { type: 'boolean' },
    },
    true,
  );
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (positionals.length === 0) throw new UsageError('hoptrace import needs at least one FILE');
  if (values.store !== undefined && values.db !== undefined) throw new UsageError('give --store or --db, not both');
  const batchSize = integerFlag('batch-size', values['batch-size'] as string | undefined);
  if (batchSize === 0) throw new UsageError('--batch-size must be at least 1');
  const spec = parseStoreSpec(
    (values.store as string | undefined) ??
      (values.db === undefined ? process.env[STORE_ENV] || undefined : undefined) ??
      `sqlite:${(values.db as string | undefined) ?? process.env[Env.HOPTRACE_DB] ?? Defaults.DB_PATH}`,
  );
  if (spec.kind === 'sqlite') prepareDbDirectory(spec.path, { createDirs: values['create-dirs'] === true });
  const store = await openStore(spec, {
    engine: DEFAULT_ENGINE_OPTIONS,
    // An import can be re-run, and closing the database checkpoints (and syncs) the WAL anyway.
    durability: 'normal',
  });
  try {
    const result = await importFiles(store, positionals, {
      batchSize,
      onProgress: (p) => {
        if (!p.done) process.stderr.write(formatProgress(p) + '\n');
      },
    });
    process.stderr.write(formatImportSummary(result) + '\n');
    // Nothing imported, or records refused: a script must not read that as success.
    const verdict = importVerdict(result, { allowInvalid: values['allow-invalid'] === true });
    if (verdict.message !== undefined) process.stderr.write(`hoptrace: ${verdict.message}\n`);
    return verdict.exitCode;
  } finally {
    await store.close();
  }
}

async function runMigrate(args: string[]): Promise<number> {
  const { values } = parse(args, { from: { type: 'string' }, to: { type: 'string' }, 'create-dirs': { type: 'boolean' } }, false);
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (typeof values.from !== 'string' || typeof values.to !== 'string') {
    throw new UsageError('hoptrace migrate needs --from STORE and --to STORE, e.g. --from sqlite:./hoptrace.db --to postgres://user@host/db');
  }
  const from = parseStoreSpec(values.from);
  const to = parseStoreSpec(values.to);
  requireExistingStore(from, '--from');
  if (from.kind === 'sqlite' && to.kind === 'sqlite' && resolvePath(from.path) === resolvePath(to.path)) {
    throw new UsageError(`--from and --to name the same store (${resolvePath(from.path)})`);
  }
  if (to.kind === 'sqlite') prepareDbDirectory(to.path, { createDirs: values['create-dirs'] === true, flag: '--to' });
  process.stderr.write(`migrate: from ${values.from} to ${to.kind === 'postgres' ? redactUrl(to.url) : `sqlite:${to.path}`}\n`);
  const result = await migrateStore(from, to, {
    onProgress: (p) => process.stderr.write(formatMigrateProgress(p) + '\n'),
    onSummaries: () => process.stderr.write('migrate: every record copied; bringing the chain summaries up to date\n'),
  });
  process.stderr.write(formatMigrateSummary(result, to.kind === 'postgres' ? redactUrl(to.url) : `sqlite:${to.path}`) + '\n');
  return 0;
}

/** `hoptrace replay`: ask a running collector to replay, print what became of each message. */
async function runReplay(args: string[]): Promise<number> {
  const { values } = parse(
    args,
    {
      group: { type: 'string' },
      message: { type: 'string', multiple: true },
      'dry-run': { type: 'boolean' },
      url: { type: 'string' },
      token: { type: 'string' },
      limit: { type: 'string' },
    },
    false,
  );
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const group = values.group as string | undefined;
  const messages = (values.message as unknown as string[] | undefined) ?? [];
  if ((group === undefined) === (messages.length === 0)) throw new UsageError('hoptrace replay needs --group FINGERPRINT or --message ID (not both)');
  const limit = integerFlag('limit', values.limit as string | undefined);
  const url = ((values.url as string | undefined) ?? process.env[Env.HOPTRACE_URL] ?? `http://localhost:${Defaults.COLLECTOR_PORT}`).replace(/\/+$/, '');
  const token = (values.token as string | undefined) ?? process.env[ADMIN_TOKEN_ENV] ?? process.env[Env.HOPTRACE_TOKEN];
  let user = 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // no user database entry (a container): "unknown" says as much
  }
  const body: ReplayRequest = {
    ...(group === undefined ? { messageIds: messages } : { group }),
    dryRun: values['dry-run'] === true,
    requestedBy: `cli:${user}@${hostname()}`,
    ...(limit === undefined ? {} : { limit }),
  };
  let response: Response;
  try {
    response = await fetch(`${url}/api/replay`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body),
    });
  } catch (err) {
    process.stderr.write(`hoptrace: cannot reach the collector at ${url}: ${(err as Error).message}\n`);
    return 1;
  }
  const text = await response.text();
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try {
      const e = JSON.parse(text) as { message?: string; code?: string };
      if (e.message) message = `${e.message}${e.code ? ` (${e.code})` : ''}`;
    } catch {
      // not the collector's error body
    }
    process.stderr.write(`hoptrace: replay refused: ${message}\n`);
    return 1;
  }
  const result = JSON.parse(text) as ReplayResult;
  process.stdout.write(formatReplayResult(result));
  const wanted = result.dryRun ? 'would-replay' : 'replayed';
  return result.messages.length > 0 && result.messages.every((m) => m.outcome === wanted) ? 0 : 1;
}

/** One line per message, then the counts: what `hoptrace replay` prints. */
export function formatReplayResult(result: ReplayResult): string {
  const lines = result.messages.map((m) => `${m.outcome.padEnd(20)} ${m.messageId}${m.correlationId ? `  chain ${m.correlationId}` : ''}${m.detail ? `  ${m.detail}` : ''}`);
  const counts = Object.entries(result.counts)
    .map(([outcome, n]) => `${outcome} ${n}`)
    .join(', ');
  lines.push(`${result.dryRun ? 'dry run: ' : ''}${result.messages.length} message${result.messages.length === 1 ? '' : 's'}${counts ? `: ${counts}` : ''}${result.truncated ? ' (more left: run again)' : ''}`);
  return lines.join('\n') + '\n';
}


/** Run the command line; resolves to the process exit code. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case undefined:
      case '--help':
      case '-h':
      case 'help':
        process.stdout.write(HELP);
        return command === undefined ? 2 : 0;
      case '--version':
      case '-v':
        process.stdout.write(`${VERSION}\n`);
        return 0;
      case 'collector':
        return await runCollector(rest);
      case 'import':
        return await runImport(rest);
      case 'migrate':
        return await runMigrate(rest);
      case 'replay':
        return await runReplay(rest);
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`hoptrace: ${err.message}\nRun \`hoptrace --help\` for the commands and options.\n`);
      return 2;
    }
    if (err instanceof HoptraceError) {
      process.stderr.write(`hoptrace: ${err.message} (${err.code})\n`);
      return 1;
    }
    // An error of the system (a file, a socket): its message names what failed; a stack would only hide it.
    const code = (err as NodeJS.ErrnoException | null)?.code;
    if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) {
      process.stderr.write(`hoptrace: ${(err as Error).message}\n`);
      return 1;
    }
    throw err;
  }
}
