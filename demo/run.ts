/**
 * `runDemo`: the whole demo as one function (main.ts is only its command
 * line). It checks RabbitMQ, starts the collector and its UI, connects every
 * demo service as its own instrumented connection whose pino logger ships hop
 * lines to the collector through the hoptrace transport, runs the flows, and
 * shuts everything down in order: stop publishing, close connections, flush
 * the transport, close the collector.
 */
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { redactUrl } from '../src/contract/url.ts';
import { brokerAdvice } from '../collector/broker-advice.ts';
import { fileURLToPath } from 'node:url';
import type { Readable, Writable } from 'node:stream';
import amqp, { type ChannelModel } from 'amqplib';
import pino, { type Logger } from 'pino';
import type { ChainStatus, FailureGroup } from '../collector/api-types.ts';
import { startCollector } from '../collector/server.ts';
import { connect } from '../src/index.ts';
import { CollectorClient } from './collector-client.ts';
import { FLOW_CATALOGUE, FLOW_NAMES, runFlow, type FlowName, type FlowServices } from './flows.ts';
import type { DemoOptions } from './options.ts';
import { formatProgress, formatStatusCounts, ProgressLine } from './progress.ts';
import { deadline, isExpectedFailure, sleep, Tracker, type ServiceContext } from './runtime.ts';
import { startAuditService } from './services/audit.ts';
import { learnDrink, OFF_MENU_DRINK, startBarista, startCustomerService, startLoyaltyService } from './services/coffee-shop.ts';
import { startFamilyAccountService } from './services/family-account.ts';
import { startMemberService } from './services/member.ts';
import { startNotificationService } from './services/notification.ts';
import { INVENTORY_MAX_ATTEMPTS, startInventoryService, startReceiptPrinter, startSupplier } from './services/trouble.ts';
import { declareTopology, demoNames, type DemoNames } from './topology.ts';
import { startDemoTracing, type DemoTracing } from './tracing.ts';

/** A problem the person running the demo can fix; main.ts prints only its message. */
export class DemoError extends Error {
  override name = 'DemoError';
}

export interface DemoIo {
  out: Writable & { isTTY?: boolean; columns?: number };
  /** Commands typed while the demo runs ("learn"); main.ts passes a terminal's stdin. */
  input?: Readable;
  /** Aborting it stops the demo gracefully (main.ts wires SIGINT/SIGTERM to it). */
  signal?: AbortSignal;
}

export interface FlowOutcome {
  flow: FlowName;
  round: number;
  /** The flow's first message id, which is its chain's correlation id. */
  correlationId: string;
  expected: ChainStatus;
  /** Status the collector gave the chain (`--count` only). */
  actual?: ChainStatus;
  /** `--replay`: the chain's status after its dead letters were replayed (`ok` with `replayed`: "ok (replayed)"). */
  afterReplay?: string;
  /** Why the flow did not complete, when it did not. */
  error?: string;
}

export interface DemoResult {
  /** 0 when every flow completed, every hop reached the collector and (embedded collector) every chain got its expected status. */
  exitCode: number;
  collectorUrl: string;
  /** `--count`; 0 when the demo ran until stopped. */
  rounds: number;
  flows: FlowOutcome[];
  hopsLogged: number;
  /** Hops stored by the collector during the run (`undefined` when it could not be asked). */
  hopsStored: number | undefined;
  chainsByStatus: Partial<Record<ChainStatus, number>>;
  interrupted: boolean;
}

/** Redeliveries that make a loop; the inventory service gives up after more than this. */
const REDELIVERY_LOOP_THRESHOLD = INVENTORY_MAX_ATTEMPTS - 2;

const TRANSPORT_TARGET = fileURLToPath(new URL('../src/transport.ts', import.meta.url));

/** Trouble flows, rotated one at a time into the steady traffic. */
const TROUBLE_FLOWS = FLOW_NAMES.filter((f) => FLOW_CATALOGUE[f].expect !== 'ok');
/** The steady rotation: mostly healthy flows, one failure case per cycle. */
const HEALTHY_CYCLE: FlowName[] = [
  'loose-coupling',
  'coffee-order',
  'coffee-order',
  'loose-coupling',
  'coffee-order',
  'retried-order',
];


export async function runDemo(options: DemoOptions, io: DemoIo = { out: process.stdout }): Promise<DemoResult> {
  const { out } = io;
  // Stops the demo: the caller's signal, or the broker going away.
  const stopper = new AbortController();
  const signal = stopper.signal;
  if (io.signal?.aborted) stopper.abort();
  io.signal?.addEventListener('abort', () => stopper.abort(), { once: true });
  let brokerLost: string | undefined;
  let closing = false;
  const startedAt = Date.now();
  const names = demoNames(options.prefix);
  const progress = new ProgressLine(out);

  // 1. RabbitMQ first: without it there is nothing to show.
  const admin = await connectOrExplain(options.amqpUrl);
  try {
    const ch = await admin.createChannel();
    await declareTopology(ch, names);
    await ch.close();
  } catch (cause) {
    throw new DemoError(
      `Could not declare the demo's exchanges and queues "${names.prefix}.*": ${(cause as Error).message}\n` +
        'Queues left by another program (or an older demo) with other arguments cause this: delete them ' +
        `(rabbitmqctl delete_queue NAME, or the management UI) or pick another prefix with --prefix.`,
      { cause },
    );
  } finally {
    await admin.close().catch(() => {});
  }

  // 2. The collector and its UI, which replays the dead letters when asked (with the admin token).
  let collector: Awaited<ReturnType<typeof startCollector>> | undefined;
  let collectorUrl = options.collectorUrl;
  const adminToken = options.adminToken ?? `demo-${randomBytes(4).toString('hex')}`;
  if (!options.servicesOnly) {
    collector = await startCollectorOrExplain(options, names, adminToken);
    collectorUrl = collector.url;
  }
  // "learn": the menu learns the off-menu drink, so a replay of its dead letters gets the orders made.
  const commands = io.input ? createInterface({ input: io.input }) : undefined;
  commands?.on('line', (line) => {
    if (line.trim().toLowerCase() !== 'learn') return;
    learnDrink(OFF_MENU_DRINK);
    progress.log(`The menu learned the ${OFF_MENU_DRINK}. Replay its failure group (UI: failures → ↺ replay) and the orders are made.`);
  });
  try {
    const client = new CollectorClient(collectorUrl, options.token);
    const hopsAtStart = (await client.storedHops()) ?? 0;

    // 3. One pino logger for all services; its hop lines go to the collector
    //    through the hoptrace transport (a worker thread), nothing to the console.
    let hopsLogged = 0;
    const targets: pino.TransportTargetOptions[] = [
      { target: TRANSPORT_TARGET, level: 'info', options: { url: collectorUrl, token: options.token } },
    ];
    if (options.logFile) {
      targets.push({ target: 'pino/file', level: 'info', options: { destination: options.logFile, mkdir: true } });
    }
    const transport = pino.transport({ targets });
    transport.on('error', (err: Error) => progress.log(`hoptrace transport: ${err.message}`));
    const logger: Logger = pino(
      {
        level: 'info',
        hooks: {
          logMethod(args, method) {
            const first = args[0] as unknown;
            if (first !== null && typeof first === 'object' && 'hop' in first) hopsLogged++;
            method.apply(this, args);
          },
        },
      },
      transport,
    );

    // Spans too, when an OTLP endpoint is configured (docker compose: Jaeger).
    const tracing: DemoTracing | undefined = options.otlpEndpoint ? startDemoTracing(options.otlpEndpoint) : undefined;

    // 4. The services, each its own instrumented connection.
    const connections: ChannelModel[] = [];
    const serviceNames = new Set<string>();
    const tracker = new Tracker();
    const ctx: ServiceContext = {
      names,
      tracker,
      async connect(serviceName) {
        const model = await connect(options.amqpUrl, {
          serviceName,
          logger: logger.child({ service: serviceName }),
          ...(tracing ? { tracerProvider: tracing.providerFor(serviceName) } : {}),
        }).catch((cause: unknown) => {
          throw new DemoError(`${serviceName} could not connect: ${(cause as Error).message}`, { cause });
        });
        connections.push(model);
        serviceNames.add(serviceName);
        // amqplib emits 'error' then 'close' when the broker goes away; an
        // 'error' without a listener would crash the demo with a stack trace.
        model.on('error', () => {});
        model.on('close', (err?: Error) => {
          if (closing || brokerLost !== undefined) return;
          brokerLost = `${serviceName}'s connection to RabbitMQ closed${err ? `: ${err.message}` : ''}`;
          progress.log(`${brokerLost}; stopping the demo.`);
          stopper.abort();
        });
        return model;
      },
    };

    // The demo's handlers fail on purpose; their rejections are not bugs.
    const onUnhandledRejection = (reason: unknown): void => {
      if (!isExpectedFailure(reason)) throw reason;
    };
    process.on('unhandledRejection', onUnhandledRejection);

    const outcomes: FlowOutcome[] = [];
    const inFlight = new Set<Promise<void>>();
    let chains = new Map<ChainStatus, number>();
    let hopsStored: number | undefined;
    let interrupted = false;
    let exitCode = 0;
    let replayProblem: string | undefined;
    let ticker: NodeJS.Timeout | undefined;

    try {
      // Consumers first, so nothing published below finds an empty queue.
      await startFamilyAccountService(ctx);
      await startNotificationService(ctx);
      await startAuditService(ctx);
      await startBarista(ctx, 'anna');
      await startBarista(ctx, 'ben');
      await startLoyaltyService(ctx);
      await startReceiptPrinter(ctx);
      await startInventoryService(ctx);
      const services: FlowServices = {
        member: await startMemberService(ctx),
        customer: await startCustomerService(ctx),
        supplier: await startSupplier(ctx),
        tracker,
      };

      progress.log(
        `hoptrace demo: ${serviceNames.size} services (${connections.length} connections) on ` +
          `${redactUrl(options.amqpUrl)}, exchanges and queues "${names.prefix}.*"`,
      );
      if (collector) {
        progress.log(`Open the UI: ${collectorUrl}   (SQLite: ${options.db})`);
        progress.log(
          `A message unreceived for ${options.lostAfterMs / 1000} s counts as lost, one unsettled for ` +
            `${options.stuckAfterMs / 1000} s as stuck (--lost-after-ms, --stuck-after-ms).`,
        );
        progress.log(
          `Off-menu orders wait in ${names.deadLetterQueue}: replay them from the UI (failures → ↺ replay, admin token ${adminToken})` +
            (commands ? `; type "learn" + Enter first, or they fail again.` : '.'),
        );
      } else {
        progress.log(`Shipping hops to the collector at ${collectorUrl}`);
      }
      if (tracing) progress.log(`Spans go to ${tracing.tracesUrl} (OpenTelemetry, one trace per flow).`);
      progress.log(options.count ? `Running ${options.count} round(s) of every flow…` : 'Press Ctrl-C to stop.');

      // The progress line: refreshed from the collector, one request at a time.
      let refreshing = false;
      const refresh = async (): Promise<void> => {
        if (refreshing) return;
        refreshing = true;
        try {
          const stored = await client.storedHops();
          hopsStored = stored === undefined ? undefined : stored - hopsAtStart;
          chains = await client.statusCounts(startedAt).catch(() => chains);
        } finally {
          refreshing = false;
        }
        draw();
      };
      const draw = (): void =>
        progress.update(
          formatProgress({
            flows: outcomes.length,
            flowErrors: outcomes.filter((o) => o.error).length,
            hopsLogged,
            hopsStored,
            chains,
            uiUrl: collectorUrl,
          }),
        );
      ticker = setInterval(() => void refresh(), out.isTTY ? 1_000 : 5_000);
      void refresh();

      const start = (flow: FlowName, round: number): Promise<void> => {
        const outcome: FlowOutcome = { flow, round, correlationId: '', expected: FLOW_CATALOGUE[flow].expect };
        const p = runFlow(flow, services, (id) => (outcome.correlationId = id))
          .catch((err: Error) => {
            outcome.error = err.message;
          })
          .finally(() => {
            outcomes.push(outcome);
            inFlight.delete(p);
          });
        inFlight.add(p);
        return p;
      };
      const runRound = (round: number): Promise<unknown> => Promise.all(FLOW_NAMES.map((f) => start(f, round)));

      if (options.count !== undefined) {
        for (let round = 1; round <= options.count && !signal?.aborted; round++) await runRound(round);
        // Lost and stuck are verdicts of time: let the limits pass.
        if (!signal?.aborted) await abortableSleep(Math.max(options.lostAfterMs, options.stuckAfterMs) + 1_000, signal);
        // --replay: the fix and the replay, while the baristas still work.
        if (options.replay && collector && !signal?.aborted) replayProblem = await replayOffMenu(client, outcomes, adminToken, startedAt);
      } else {
        // Every case once, so each status shows up within seconds; then a
        // steady trickle with one failure case per cycle.
        await runRound(1);
        let i = 0;
        let trouble = 0;
        while (!signal?.aborted) {
          await abortableSleep(options.intervalMs, signal);
          if (signal?.aborted) break;
          const slot = i++ % (HEALTHY_CYCLE.length + 1);
          const flow = slot < HEALTHY_CYCLE.length ? HEALTHY_CYCLE[slot] : TROUBLE_FLOWS[trouble++ % TROUBLE_FLOWS.length];
          void start(flow, 0);
        }
      }
      interrupted = io.signal?.aborted === true;

      // 5. Shut down in order: stop publishing (done), let flows in flight end.
      await Promise.race([Promise.allSettled([...inFlight]), deadline(3_000)]);
    } finally {
      closing = true;
      for (const conn of connections.reverse()) await conn.close().catch(() => {});
      // Spans end on settle or channel close; export what is buffered (an
      // unreachable endpoint must not hold the shutdown up for long).
      if (tracing) await Promise.race([tracing.shutdown().catch(() => {}), deadline(5_000)]);
      // The transport ships by itself every second; let it finish while this
      // thread can still serve the embedded collector, because ending a pino
      // transport blocks the calling thread until the transport has closed.
      await pollUntil(
        async () => ((await client.storedHops()) ?? -1) >= hopsAtStart + hopsLogged,
        options.count !== undefined ? 20_000 : 5_000,
      );
      await endTransport(transport);
      if (ticker) clearInterval(ticker);
      process.off('unhandledRejection', onUnhandledRejection);
    }

    if (brokerLost !== undefined) {
      progress.done();
      out.write(`The demo stopped because ${brokerLost}.\n`);
      exitCode = 1;
    } else if (options.count !== undefined && !interrupted) {
      // Every hop logged must be stored before the verdict.
      hopsStored = ((await client.storedHops()) ?? hopsAtStart) - hopsAtStart;
      if (hopsStored < hopsLogged) {
        progress.log(`Only ${hopsStored} of ${hopsLogged} hops reached the collector at ${collectorUrl}.`);
        exitCode = 1;
      }
      if (collector) {
        // The list is re-diagnosed by a background sweep; give it a moment to
        // catch up with lost and stuck before judging.
        await pollUntil(async () => {
          await judgeFlows(client, outcomes);
          return outcomes.every((o) => o.error || o.actual === o.expected);
        }, 15_000);
        if (replayProblem) {
          progress.log(replayProblem);
          exitCode = 1;
        }
      } else {
        // Someone else's collector judges by its own limits: report, don't insist.
        await judgeFlows(client, outcomes).catch(() => {});
      }
      chains = await client.statusCounts(startedAt).catch(() => chains);
      progress.done();
      out.write(summary(options, outcomes, hopsLogged, hopsStored, chains, collectorUrl, Boolean(collector)));
      if (outcomes.some((o) => o.error)) exitCode = 1;
      if (collector && outcomes.some((o) => !o.error && o.actual !== o.expected)) exitCode = 1;
      if (options.keepRunning && collector) {
        out.write(`The collector keeps running at ${collectorUrl}; press Ctrl-C to stop it.\n`);
        await abortableSleep(Number.POSITIVE_INFINITY, signal);
      }
    } else {
      progress.done();
      hopsStored = ((await client.storedHops()) ?? hopsAtStart) - hopsAtStart;
      out.write(
        `Stopped after ${outcomes.length} flows; ${hopsLogged} hops shipped, ${hopsStored} stored` +
          (collector ? ` in ${options.db}.\n` : '.\n'),
      );
      if (interrupted && options.count !== undefined) exitCode = 130;
    }

    return {
      exitCode,
      collectorUrl,
      rounds: options.count ?? 0,
      flows: outcomes,
      hopsLogged,
      hopsStored,
      chainsByStatus: Object.fromEntries(chains),
      interrupted,
    };
  } finally {
    commands?.close();
    await collector?.close();
  }
}

async function connectOrExplain(url: string): Promise<ChannelModel> {
  try {
    return await amqp.connect(url);
  } catch (cause) {
    throw new DemoError(`${brokerAdvice(url, cause)}\n(The demo also takes --amqp-url.)`, { cause });
  }
}

async function startCollectorOrExplain(options: DemoOptions, names: DemoNames, adminToken: string): ReturnType<typeof startCollector> {
  try {
    return await startCollector({
      port: options.port,
      host: options.host,
      db: options.db,
      token: options.token ?? '',
      amqpUrl: options.amqpUrl,
      adminToken,
      // Nobody consumes the orders' dead-letter queue: the collector is told where rejected orders wait.
      deadLetterQueues: { [names.ordersQueue]: names.deadLetterQueue },
      lostAfterMs: options.lostAfterMs,
      stuckAfterMs: options.stuckAfterMs,
      redeliveryLoopThreshold: REDELIVERY_LOOP_THRESHOLD,
      // Lost and stuck are time's verdicts, found by the sweep: with the
      // demo's short limits, look often so the UI shows them promptly.
      sweepIntervalMs: 1_000,
      jaegerUrl: options.jaegerUrl,
      logger: pino({ level: 'error' }, pino.destination(2)),
    });
  } catch (cause) {
    // The collector wraps the listen error (ConfigError); its cause has the errno code.
    const code = errnoCode(cause);
    if (code === 'EADDRINUSE') {
      throw new DemoError(
        `Port ${options.port} on ${options.host} is already in use (another collector or demo still running?).\n` +
          `Pick another one: npm run demo -- --port ${options.port + 1}`,
        { cause },
      );
    }
    if (code === 'EACCES') {
      throw new DemoError(`Not allowed to listen on port ${options.port}; pick one above 1023 with --port.`, { cause });
    }
    throw new DemoError(`The collector did not start: ${(cause as Error).message}`, { cause });
  }
}

function errnoCode(err: unknown): string | undefined {
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && code.startsWith('E') && !code.startsWith('HOPTRACE')) return code;
  }
  return undefined;
}

async function endTransport(transport: ReturnType<typeof pino.transport>): Promise<void> {
  await Promise.race([
    new Promise<void>((resolve) => {
      transport.once('close', () => resolve());
      transport.end();
    }),
    deadline(10_000),
  ]);
}

/**
 * `--replay`: the menu learns the off-menu drink, the demo replays the
 * dead-lettered orders' failure group, and each off-menu chain must come out
 * ok (replayed). Returns what went wrong, if anything.
 */
async function replayOffMenu(client: CollectorClient, outcomes: FlowOutcome[], adminToken: string, since: number): Promise<string | undefined> {
  const offMenu = outcomes.filter((o) => o.flow === 'off-menu-order' && !o.error);
  // Every off-menu order's dead letter counted first (their hops ship about once a second).
  let group: FailureGroup | undefined;
  await pollUntil(async () => {
    group = (await client.failures(since))?.items.find((g) => g.errorType === 'UnknownDrinkError' && g.status === 'dead-lettered');
    return group !== undefined && group.unresolved >= offMenu.length;
  }, 20_000);
  if (group === undefined) return 'No failure group of off-menu orders to replay.';
  learnDrink(OFF_MENU_DRINK);
  const result = await client.replay(group.fingerprint, adminToken);
  const after = async (o: FlowOutcome) => {
    const detail = await client.chain(o.correlationId);
    return detail?.replayed && detail.status === 'ok';
  };
  const done = await pollUntil(async () => (await Promise.all(offMenu.map(after))).every(Boolean), 20_000);
  if (!done) return `The replay of the off-menu orders (${JSON.stringify(result.counts)}) did not leave their chains ok (replayed).`;
  return undefined;
}

/** Ask the collector how each flow's chain came out. */
async function judgeFlows(client: CollectorClient, outcomes: FlowOutcome[]): Promise<void> {
  for (const o of outcomes) {
    if (o.error || !o.correlationId) continue;
    const detail = await client.chain(o.correlationId).catch(() => undefined);
    if (!detail) continue;
    // A replayed chain came out as its (replayed) first failure says; the replay decides what it is now.
    if (detail.replayed && detail.firstFailure?.replayed) {
      o.actual = detail.firstFailure.status;
      o.afterReplay = detail.status === 'ok' ? 'ok (replayed)' : detail.status;
    } else o.actual = detail.status;
  }
}

function summary(
  options: DemoOptions,
  outcomes: FlowOutcome[],
  hopsLogged: number,
  hopsStored: number | undefined,
  chains: Map<ChainStatus, number>,
  url: string,
  embedded: boolean,
): string {
  const lines = [
    '',
    `hoptrace demo: ${options.count} round(s), ${outcomes.length} flows, ${hopsLogged} hops shipped, ${hopsStored ?? '?'} stored.`,
    '',
    `  ${'flow'.padEnd(20)}${'expected'.padEnd(17)}chains`,
  ];
  for (const flow of FLOW_NAMES) {
    const mine = outcomes.filter((o) => o.flow === flow);
    const got = new Map<string, number>();
    for (const o of mine) {
      const k = o.error ? 'timed out' : (o.actual ?? '?');
      got.set(k, (got.get(k) ?? 0) + 1);
    }
    const cells = [...got].map(([k, n]) => `${k} ×${n}`).join(', ');
    const ok = mine.every((o) => !o.error && (!embedded || o.actual === o.expected));
    const replayed = new Map<string, number>();
    for (const o of mine) if (o.afterReplay) replayed.set(o.afterReplay, (replayed.get(o.afterReplay) ?? 0) + 1);
    const after = replayed.size > 0 ? `, after the replay: ${[...replayed].map(([k, n]) => `${k} ×${n}`).join(', ')}` : '';
    lines.push(`  ${flow.padEnd(20)}${FLOW_CATALOGUE[flow].expect.padEnd(17)}${cells}${after}${ok ? '' : '   ✗'}`);
  }
  lines.push('', `All chains since the start: ${formatStatusCounts(chains) || 'none'}`);
  if (embedded && !options.keepRunning) {
    lines.push(
      `They stay in ${options.db}; see them again with: npx hoptrace collector --db ${options.db} ` +
        '(or rerun with --keep-running).',
    );
  } else if (!embedded) {
    lines.push(`See them at ${url}`);
  }
  return `${lines.join('\n')}\n`;
}

/** Resolve after `ms`, or as soon as `signal` aborts. */
function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = Number.isFinite(ms) ? setTimeout(done, ms) : undefined;
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Poll `check` until it is true or `timeoutMs` passed; resolves with the last answer. */
async function pollUntil(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return true;
    if (Date.now() > deadline) return false;
    await sleep(250);
  }
}
