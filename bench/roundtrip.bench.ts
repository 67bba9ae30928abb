/**
 * Per-message overhead on the real RabbitMQ: what instrumenting a service
 * with hoptrace costs, against plain amqplib and the official OpenTelemetry
 * instrumentation in the same run.
 *
 * Every variant runs in its own child process (roundtrip.worker.ts), a fresh
 * one per round, and the rounds interleave the variants (the order rotates
 * each round) so drift in the machine's load spreads over all of them.
 */
import { progress } from './lib/progress.ts';
import { runWorker } from './lib/child.ts';
import { startCollectorProcess, type CollectorProcess } from './lib/collector-process.ts';
import type { BenchContext, Scenario, ScenarioResult } from './lib/scenario.ts';
import { summarize } from './lib/stats.ts';
import { fmtBytes, fmtInt, fmtNum, fmtPct, fmtUs, verdict, type Table } from './lib/table.ts';
import type { LoglineInput, LoglineRow } from './logline.worker.ts';
import type { PhaseResult, RoundtripInput, RoundtripOutput, Variant } from './roundtrip.worker.ts';

const WORKER = new URL('./roundtrip.worker.ts', import.meta.url);
const LOGLINE_WORKER = new URL('./logline.worker.ts', import.meta.url);

const LABELS: Record<Variant, string> = {
  plain: 'plain amqplib (baseline)',
  hoptrace: 'hoptrace, no OTel SDK',
  'hoptrace-sdk': 'hoptrace + OTel SDK',
  'otel-amqplib-sdk': 'instrumentation-amqplib + OTel SDK',
  'hoptrace-transport': 'hoptrace, no SDK, transport → collector',
  'hoptrace-silent': '(diagnostic) hoptrace, no SDK, hop logs off',
  'hoptrace-sdk-silent': '(diagnostic) hoptrace + OTel SDK, hop logs off',
};

const VARIANTS: Variant[] = [
  'plain',
  'hoptrace',
  'hoptrace-sdk',
  'otel-amqplib-sdk',
  'hoptrace-transport',
  'hoptrace-silent',
  'hoptrace-sdk-silent',
];

interface Sizes {
  rounds: number;
  roundtripMessages: number;
  publishMessages: number;
  warmupMessages: number;
}

function sizes(quick: boolean): Sizes {
  return quick
    ? { rounds: 1, roundtripMessages: 1_000, publishMessages: 1_000, warmupMessages: 200 }
    : { rounds: 5, roundtripMessages: 40_000, publishMessages: 40_000, warmupMessages: 4_000 };
}

/** A round's result; for the transport row also the hops the collector gained meanwhile. */
type RunResult = RoundtripOutput & { hopsDelivered?: number };
type Runs = Map<Variant, (RunResult | undefined)[]>;

async function run(ctx: BenchContext): Promise<ScenarioResult> {
  const size = { ...sizes(ctx.quick), ...(ctx.rounds ? { rounds: ctx.rounds } : {}) };
  const failures = new Map<Variant, string>();
  let collector: CollectorProcess | undefined;
  try {
    collector = await startCollectorProcess({ db: `${ctx.tmpDir}/roundtrip-transport.db` });
  } catch (err) {
    failures.set('hoptrace-transport', `collector did not start: ${(err as Error).message.split('\n')[0]}`);
  }

  const runs: Runs = new Map(VARIANTS.map((v) => [v, []]));
  try {
    for (let round = 0; round < size.rounds; round++) {
      // Rotate the order each round so no variant always runs first (or last).
      const order = VARIANTS.map((_, i) => VARIANTS[(i + round) % VARIANTS.length]);
      for (const variant of order) {
        if (failures.has(variant)) {
          runs.get(variant)!.push(undefined);
          continue;
        }
        progress(`roundtrip: round ${round + 1}/${size.rounds}, ${variant}`);
        const input: RoundtripInput = {
          variant,
          amqpUrl: ctx.amqpUrl,
          ...size,
          queuePrefix: 'hoptrace.bench',
          collectorUrl: collector?.url,
        };
        try {
          const before = variant === 'hoptrace-transport' ? await collector!.hopCount() : 0;
          const out: RunResult = await runWorker<RoundtripInput, RoundtripOutput>(WORKER, input, { timeoutMs: 300_000 });
          if (variant === 'hoptrace-transport') out.hopsDelivered = (await collector!.hopCount()) - before;
          runs.get(variant)!.push(out);
        } catch (err) {
          const message = (err as Error).message;
          // A variant whose dependency has not landed fails the same way every round: say so once.
          failures.set(variant, firstMeaningfulLine(message));
          runs.get(variant)!.push(undefined);
          progress(`roundtrip: ${variant} failed: ${firstMeaningfulLine(message)}`);
        }
      }
    }
  } finally {
    if (collector) {
      const hops = await collector.hopCount().catch(() => undefined);
      if (hops !== undefined) progress(`roundtrip: the collector holds ${fmtInt(hops)} hops from the transport rows`);
      await collector.stop();
    }
  }

  progress('roundtrip: what one hop log line costs');
  const lines = ctx.quick ? 20_000 : 200_000;
  const logline = await runWorker<LoglineInput, LoglineRow[]>(LOGLINE_WORKER, { lines }, { timeoutMs: 300_000 });

  // The ingest scenario compares the collector's intake with this, in the same run.
  const plainRates = (runs.get('plain') ?? []).flatMap((o) => (o ? [rate(o.roundtrip)] : []));
  if (plainRates.length > 0) ctx.shared.plainRoundTripRate = summarize(plainRates).median;
  return {
    tables: [...tables(runs, size, failures), loglineTable(logline, lines)],
    raw: { sizes: size, runs: Object.fromEntries(runs), failures: Object.fromEntries(failures), logline },
  };
}

function loglineTable(rows: LoglineRow[], lines: number): Table {
  return {
    title: 'One hop log line on its own (where most of the overhead above goes)',
    notes: [
      `${fmtInt(lines)} generated hop records of about ${fmtBytes(rows[0]?.bytesPerLine ?? NaN)} per line (headers and properties included, as the library logs them) written in a process of its own; CPU and V8 heap bytes allocated per line, measured as above. A round trip logs five hop lines (send, confirm, receive, process, settle), a fire-and-forget publish one.`,
    ],
    columns: ['writing one line with', 'CPU/line', 'alloc/line'],
    rows: rows.map((r) => [r.name, fmtUs(r.cpuUs), fmtBytes(r.allocBytes)]),
  };
}

function firstMeaningfulLine(message: string): string {
  const lines = message.split('\n').map((l) => l.trim());
  return lines.find((l) => /Error|error|not /.test(l)) ?? lines[0] ?? message;
}

/** Per-round ratio of a variant's rate to the plain baseline's rate in the same round. */
function ratios(runs: Runs, variant: Variant, baseline: Variant, phase: 'roundtrip' | 'publish'): number[] {
  const mine = runs.get(variant)!;
  const base = runs.get(baseline)!;
  const out: number[] = [];
  for (let i = 0; i < mine.length; i++) {
    const a = mine[i]?.[phase];
    const b = base[i]?.[phase];
    if (a && b) out.push(rate(a) / rate(b));
  }
  return out;
}

const rate = (p: PhaseResult) => (p.messages / p.wallMs) * 1000;

function tables(runs: Runs, size: Sizes, failures: Map<Variant, string>): Table[] {
  const phaseTable = (phase: 'roundtrip' | 'publish'): Table => {
    const rows: string[][] = [];
    for (const variant of VARIANTS) {
      const outs = runs.get(variant)!.filter((o): o is RunResult => o !== undefined);
      const failure = failures.get(variant);
      if (outs.length === 0) {
        rows.push([LABELS[variant], `not run: ${failure ?? 'no result'}`, '', '', '', '', '', '', '']);
        continue;
      }
      const phases = outs.map((o) => o[phase]);
      const rates = summarize(phases.map(rate));
      const vsPlain = summarize(ratios(runs, variant, 'plain', phase));
      const cpu = summarize(phases.map((p) => p.cpuUs / p.messages));
      const alloc = summarize(phases.map((p) => p.allocBytes / p.messages));
      let target = '–';
      let met: boolean | undefined;
      if (phase === 'roundtrip' && variant === 'hoptrace') {
        target = '≥ 95% of plain';
        met = vsPlain.n > 0 ? vsPlain.median >= 0.95 : undefined;
      } else if (phase === 'roundtrip' && variant === 'hoptrace-sdk') {
        const vsOtel = summarize(ratios(runs, 'hoptrace-sdk', 'otel-amqplib-sdk', 'roundtrip'));
        target = `≥ instrumentation-amqplib (${vsOtel.n > 0 ? fmtPct(vsOtel.median) : 'n/a'})`;
        met = vsOtel.n > 0 ? vsOtel.median >= 1 : undefined;
      }
      const first = outs[0][phase];
      const logged = outs.reduce((s, o) => s + (o.hopsLogged ?? 0), 0);
      const delivered = outs.reduce((s, o) => s + (o.hopsDelivered ?? 0), 0);
      const errors = outs.reduce((s, o) => s + (o.telemetryErrors ?? 0), 0);
      const extra = [
        first.spans === undefined ? '' : `${fmtNum(first.spans / first.messages)} span${first.spans === first.messages ? '' : 's'}`,
        outs[0].spansDroppedShare ? `${fmtPct(outs[0].spansDroppedShare)} of spans dropped by the batch queue` : '',
        first.hops === undefined ? '' : `${fmtNum(first.hops / first.messages)} hop${first.hops === first.messages ? '' : 's'}`,
        phase === 'roundtrip' && outs[0].logBytesPerHop ? `${fmtBytes(outs[0].logBytesPerHop)}/hop line` : '',
        phase === 'roundtrip' && variant === 'hoptrace-transport' && logged
          ? `${fmtPct(delivered / logged)} of hops reached the collector`
          : '',
        errors ? `${fmtInt(errors)} telemetry errors` : '',
      ]
        .filter(Boolean)
        .join(', ');
      rows.push([
        LABELS[variant] + (outs.length < size.rounds ? ` (${outs.length}/${size.rounds} rounds)` : ''),
        `${fmtInt(rates.median)} (${fmtInt(rates.min)}–${fmtInt(rates.max)})`,
        `±${fmtPct(rates.stdev / rates.mean)}`,
        variant === 'plain' ? '100%' : vsPlain.n ? `${fmtPct(vsPlain.median)} (${fmtPct(vsPlain.min)}–${fmtPct(vsPlain.max)})` : 'n/a',
        fmtUs(cpu.median),
        fmtBytes(alloc.median),
        extra,
        target,
        verdict(met),
      ]);
    }
    const rounds = `${size.rounds} round${size.rounds > 1 ? 's' : ''}`;
    return {
      title:
        phase === 'roundtrip'
          ? 'Round trip on RabbitMQ: publish (confirm channel) → consume (prefetch 100) → ack'
          : 'Fire-and-forget publish on RabbitMQ',
      notes: [
        phase === 'roundtrip'
          ? `${fmtInt(size.roundtripMessages)} persistent messages (${fmtInt(size.warmupMessages)} more to warm up) through one durable queue, at most 300 in flight, publisher on a ConfirmChannel and consumer acking each message, both in one process; timed until every message was acked and every publish confirmed.`
          : `${fmtInt(size.publishMessages)} persistent messages sent with sendToQueue on a plain channel, waiting only for \`drain\`; timed until the durable queue holds them all.`,
        `Each variant ran in a fresh child process, ${rounds}, variants interleaved (order rotated per round). msg/s: median (min–max) over rounds, ±: relative stdev; vs plain: median (min–max) of the per-round ratio to plain amqplib in the same round. CPU: process user+system time per message (every thread of that process; the broker and the collector are other processes and not in it). Alloc: V8 heap bytes allocated per message, reconstructed from GC statistics (Node has no allocation counter; Buffer contents are off-heap and not counted). Hop logs go to pino.destination('/dev/null'), except the transport row (pino.transport with hoptrace/transport to a collector in its own process). The two diagnostic rows set the hop logger to level \`silent\` (hop records are still built, not serialized or written), to show what the logging costs and what the rest of hoptrace costs.`,
      ],
      columns: ['variant', 'msg/s', '±', 'vs plain', 'CPU/msg', 'alloc/msg', 'made', 'target', 'met'],
      rows,
    };
  };
  return [phaseTable('roundtrip'), phaseTable('publish')];
}

export const roundtripScenario: Scenario = {
  name: 'roundtrip',
  description: 'per-message overhead on the real RabbitMQ: plain amqplib vs hoptrace vs instrumentation-amqplib',
  run,
};
