/**
 * The demo's options and its command line. `runDemo` takes the parsed
 * options; `main.ts` only turns argv into them.
 */
import { parseArgs } from 'node:util';
import { Defaults, Env } from '../collector/settings.ts';

export interface DemoOptions {
  /** RabbitMQ URL. @default `AMQP_URL` or amqp://guest:guest@localhost:5672 */
  amqpUrl: string;
  /** Run this many rounds of every flow, then summarise and stop; `undefined` runs until stopped. */
  count?: number;
  /** With `count`: keep the collector and its UI up after the summary until stopped. @default false */
  keepRunning: boolean;
  /** Don't start a collector; ship hops to {@link collectorUrl}. @default false */
  servicesOnly: boolean;
  /** Where hops go with `servicesOnly`. @default `HOPTRACE_URL` or http://localhost:4400 */
  collectorUrl: string;
  /** Bearer token for the collector. @default `HOPTRACE_TOKEN` */
  token?: string;
  /** Embedded collector's port; 0 picks a free one. @default 4400 */
  port: number;
  /** Embedded collector's interface. @default 127.0.0.1 */
  host: string;
  /** Embedded collector's SQLite file. @default `HOPTRACE_DB` or ./hoptrace.db */
  db: string;
  /** Exchange and queue name prefix. @default demo */
  prefix: string;
  /** A message sent and not received within this is `lost`. @default 5000 */
  lostAfterMs: number;
  /** A message received and not settled within this is `stuck`. @default 8000 */
  stuckAfterMs: number;
  /** Pause between flows while running until stopped. @default 1500 */
  intervalMs: number;
  /** Also write every service log line (hops included) to this file. */
  logFile?: string;
  /** Jaeger UI base URL the collector's UI links to. @default `HOPTRACE_JAEGER_URL` */
  jaegerUrl?: string;
  /** OTLP/HTTP endpoint for the services' spans (Jaeger: http://localhost:4318); unset: no spans. @default `OTEL_EXPORTER_OTLP_ENDPOINT` */
  otlpEndpoint?: string;
  /**
   * The embedded collector's admin token, which replay needs (the UI asks for it).
   * @default `HOPTRACE_ADMIN_TOKEN`, else a random one printed at start
   */
  adminToken?: string;
  /** With `count`: after the rounds, the menu learns the off-menu drink and the demo replays its dead letters. @default false */
  replay: boolean;
}

export function defaultOptions(env: NodeJS.ProcessEnv = process.env): DemoOptions {
  return {
    amqpUrl: env[Env.AMQP_URL] || Defaults.AMQP_URL,
    keepRunning: false,
    servicesOnly: false,
    collectorUrl: env[Env.HOPTRACE_URL] || Defaults.COLLECTOR_URL,
    token: env[Env.HOPTRACE_TOKEN] || undefined,
    port: Defaults.COLLECTOR_PORT,
    host: '127.0.0.1',
    db: env[Env.HOPTRACE_DB] || Defaults.DB_PATH,
    prefix: 'demo',
    lostAfterMs: 5_000,
    stuckAfterMs: 8_000,
    intervalMs: 1_500,
    jaegerUrl: env[Env.HOPTRACE_JAEGER_URL] || undefined,
    otlpEndpoint: env[Env.OTEL_EXPORTER_OTLP_ENDPOINT] || undefined,
    adminToken: env.HOPTRACE_ADMIN_TOKEN || undefined,
    replay: false,
  };
}

export const HELP = `Usage: npm run demo -- [options]      (or: node demo/main.ts [options])

Starts the hoptrace collector with its UI on an embedded SQLite file, connects
demo services to RabbitMQ, and keeps traffic flowing until Ctrl-C: an event
fanned out to three services, a coffee-shop work queue with a retry, and
every way a message goes wrong (failed, dead-lettered, unroutable, lost,
stuck, redelivery loop).

Options:
  --count N              run N rounds of every flow, wait until their hops
                         reached the collector, print a summary and exit
  --keep-running         with --count: keep the collector and UI up after the
                         summary, until Ctrl-C
  --port N               collector port, 0 for any free one (default: 4400)
  --host HOST            collector interface (default: 127.0.0.1)
  --db FILE              collector SQLite file
                         (default: $HOPTRACE_DB, else ./hoptrace.db)
  --amqp-url URL         RabbitMQ
                         (default: $AMQP_URL, else amqp://guest:guest@localhost:5672)
  --services-only        no embedded collector: ship hops to --collector-url
                         (docker compose runs the demo services this way)
  --collector-url URL    the collector for --services-only
                         (default: $HOPTRACE_URL, else http://localhost:4400)
  --prefix NAME          prefix of every exchange and queue (default: demo)
  --lost-after-ms N      sent, never received for N ms: lost (default: 5000)
  --stuck-after-ms N     received, never settled for N ms: stuck (default: 8000)
  --interval-ms N        pause between flows until Ctrl-C (default: 1500)
  --log FILE             also write every service log line to FILE
  --otlp-endpoint URL    also export the services' OpenTelemetry spans there,
                         e.g. Jaeger at http://localhost:4318
                         (default: $OTEL_EXPORTER_OTLP_ENDPOINT, else no spans)
  --jaeger-url URL       Jaeger UI the collector's UI links traces to
                         (default: $HOPTRACE_JAEGER_URL)
  --admin-token TOKEN    the token the UI asks for to replay dead letters
                         (default: $HOPTRACE_ADMIN_TOKEN, else a random one, printed)
  --replay               with --count: after the rounds, the menu learns the
                         off-menu drink and the demo replays the dead-lettered
                         orders; they come out "ok (replayed)"
  -h, --help             this text

While it runs, type "learn" and Enter: the menu learns the off-menu drink, and
replaying its failure group (UI: failures → ↺ replay) gets the orders made.

Environment: AMQP_URL, HOPTRACE_DB, HOPTRACE_URL, HOPTRACE_TOKEN, HOPTRACE_ADMIN_TOKEN,
HOPTRACE_JAEGER_URL, OTEL_EXPORTER_OTLP_ENDPOINT.
`;

export class UsageError extends Error {
  override name = 'UsageError';
}

/** Parse argv (without node and the script); `null` means `--help` was asked for. */
export function parseDemoArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): DemoOptions | null {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        count: { type: 'string' },
        'keep-running': { type: 'boolean' },
        port: { type: 'string' },
        host: { type: 'string' },
        db: { type: 'string' },
        'amqp-url': { type: 'string' },
        'services-only': { type: 'boolean' },
        'collector-url': { type: 'string' },
        prefix: { type: 'string' },
        'lost-after-ms': { type: 'string' },
        'stuck-after-ms': { type: 'string' },
        'interval-ms': { type: 'string' },
        log: { type: 'string' },
        'otlp-endpoint': { type: 'string' },
        'jaeger-url': { type: 'string' },
        'admin-token': { type: 'string' },
        replay: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.help) return null;
  const o = defaultOptions(env);
  const int = (flag: string, raw: string | undefined, min: number): number | undefined => {
    if (raw === undefined) return undefined;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min) throw new UsageError(`--${flag} needs a whole number >= ${min}, not "${raw}"`);
    return n;
  };
  o.count = int('count', values.count, 1);
  o.keepRunning = values['keep-running'] ?? false;
  o.port = int('port', values.port, 0) ?? o.port;
  if (o.port > 65535) throw new UsageError(`--port must be at most 65535, not ${o.port}`);
  o.host = values.host ?? o.host;
  o.db = values.db ?? o.db;
  o.amqpUrl = values['amqp-url'] ?? o.amqpUrl;
  o.servicesOnly = values['services-only'] ?? false;
  o.collectorUrl = values['collector-url'] ?? o.collectorUrl;
  o.prefix = values.prefix ?? o.prefix;
  if (!/^[A-Za-z0-9][\w.-]*$/.test(o.prefix)) {
    throw new UsageError(`--prefix may hold letters, digits, ".", "_" and "-", not "${o.prefix}"`);
  }
  o.lostAfterMs = int('lost-after-ms', values['lost-after-ms'], 1) ?? o.lostAfterMs;
  o.stuckAfterMs = int('stuck-after-ms', values['stuck-after-ms'], 1) ?? o.stuckAfterMs;
  o.intervalMs = int('interval-ms', values['interval-ms'], 0) ?? o.intervalMs;
  o.logFile = values.log;
  o.otlpEndpoint = values['otlp-endpoint'] ?? o.otlpEndpoint;
  o.jaegerUrl = values['jaeger-url'] ?? o.jaegerUrl;
  o.adminToken = values['admin-token'] ?? o.adminToken;
  o.replay = values.replay ?? false;
  for (const [flag, url] of [['otlp-endpoint', o.otlpEndpoint], ['jaeger-url', o.jaegerUrl], ['collector-url', o.collectorUrl]] as const) {
    if (url !== undefined && !/^https?:\/\/[^/]/.test(url)) throw new UsageError(`--${flag} needs an http(s) URL, not "${url}"`);
  }
  if (o.keepRunning && o.count === undefined) throw new UsageError('--keep-running only makes sense with --count');
  if (o.replay && (o.count === undefined || o.servicesOnly)) throw new UsageError('--replay needs --count and the embedded collector');
  if (o.servicesOnly && o.keepRunning) throw new UsageError('--keep-running keeps the embedded collector up; --services-only has none');
  return o;
}
