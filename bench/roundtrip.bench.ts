/**
 * Per-message overhead on the real RabbitMQ: what instrumenting a service
 * with hoptrace costs, against plain amqplib and the official OpenTelemetry
 * instrumentation in the same run.
 *
 * Every variant runs in its own child process (roundtrip.worker.ts), a fresh
 * one per round, and the rounds interleave the variants (the order rotates
 * each round) so drift in the machine's load spreads over all of them.
 * hoptrace variants write their hop lines to a file; after each one the file
 * is read back with the collector's parser and every message must have all
 * its hops (lib/recorded.ts), or the variant is reported failed whatever its
 * speed.
 */
import { rmSync } from 'node:fs';
import { progress } from './lib/progress.ts';
import { runWorker } from './lib/child.ts';
import { startCollectorProcess, type CollectorProcess } from './lib/collector-process.ts';
import { checkRecorded, fullyRecorded, type Recorded } from './lib/recorded.ts';
import type { BenchContext, Scenario, ScenarioResult } from './lib/scenario.ts';
import { summarize } from './lib/stats.ts';
import { fmtBytes, fmtInt, fmtNum, fmtPct, fmtUs, verdict, type Table } from './lib/table.ts';
import type { HeaderRow, HeadersInput } from './headers.worker.ts';
import type { RecordInput, RecordRow } from './record.worker.ts';
import { RECORDING_VARIANTS, type PhaseResult, type RoundtripInput, type RoundtripOutput, type Variant } from './roundtrip.worker.ts';

const WORKER = new URL('./roundtrip.worker.ts', import.meta.url);
const RECORD_WORKER = new URL('./record.worker.ts', import.meta.url);
const HEADERS_WORKER = new URL('./headers.worker.ts', import.meta.url);

const LABELS: Record<Variant, string> = {
  plain: 'plain amqplib (baseline)',
  hoptrace: 'hoptrace, no OTel SDK, hop lines to a file',
  'hoptrace-sdk': 'hoptrace + OTel SDK, hop lines to a file',
  'otel-amqplib-sdk': 'instrumentation-amqplib + OTel SDK',
  'hoptrace-transport': 'hoptrace, no SDK, transport → collector',
  'hoptrace-silent': '(diagnostic) hoptrace, no SDK, records off',
  'hoptrace-sdk-silent': '(diagnostic) hoptrace + OTel SDK, records off',
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

/** The targets of issue 9, each a ratio or difference within one run. */
const TARGET = {
  roundtripVsPlain: 0.85,
  cpuAddedUs: 8,
  allocBytes: 10 * 1024,
  sdkVsOfficial: 1,
  publishVsPlain: 0.9,
  bytesPerRoundTrip: 800,
} as const;

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

/** A round's result; for the transport row also the hops the collector gained meanwhile; for recording rows what the file proves. */
type RunResult = RoundtripOutput & { hopsDelivered?: number; recorded?: Recorded };
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
        const hopFile = RECORDING_VARIANTS.includes(variant) ? `${ctx.tmpDir}/hops-${variant}-${round}.ndjson` : undefined;
        const input: RoundtripInput = {
          variant,
          amqpUrl: ctx.amqpUrl,
          ...size,
          queuePrefix: 'hoptrace.bench',
          collectorUrl: collector?.url,
          hopFile,
        };
        try {
          const before = variant === 'hoptrace-transport' ? await collector!.hopCount() : 0;
          const out: RunResult = await runWorker<RoundtripInput, RoundtripOutput>(WORKER, input, { timeoutMs: 300_000 });
          if (variant === 'hoptrace-transport') out.hopsDelivered = (await collector!.hopCount()) - before;
          if (hopFile !== undefined) {
            out.recorded = await checkRecorded(hopFile, out.queues, {
              roundtrip: size.warmupMessages + size.roundtripMessages,
              publish: size.warmupMessages + size.publishMessages,
            });
            rmSync(hopFile, { force: true });
            if (!fullyRecorded(out.recorded)) progress(`roundtrip: ${variant} did not record everything: ${describeRecorded(out.recorded)}`);
          }
          runs.get(variant)!.push(out);
        } catch (err) {
          const message = (err as Error).message;
          // A variant whose dependency has not landed fails the same way every round: say so once.
          failures.set(variant, firstMeaningfulLine(message));
          runs.get(variant)!.push(undefined);
          progress(`roundtrip: ${variant} failed: ${firstMeaningfulLine(message)}`);
          if (hopFile !== undefined) rmSync(hopFile, { force: true });
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

  progress('roundtrip: what one round trip’s records cost on their own');
  const roundTrips = ctx.quick ? 20_000 : 200_000;
  const recordRows = await runWorker<RecordInput, RecordRow[]>(RECORD_WORKER, { roundTrips }, { timeoutMs: 300_000 });
  progress('roundtrip: what each header costs in amqplib');
  const iterations = ctx.quick ? 20_000 : 200_000;
  const headerRows = await runWorker<HeadersInput, HeaderRow[]>(HEADERS_WORKER, { iterations }, { timeoutMs: 300_000 });

  // The ingest scenario compares the collector's intake with this, in the same run.
  const plainRates = (runs.get('plain') ?? []).flatMap((o) => (o ? [rate(o.roundtrip)] : []));
  if (plainRates.length > 0) ctx.shared.plainRoundTripRate = summarize(plainRates).median;
  return {
    tables: [targetsTable(runs), ...tables(runs, size, failures), recordTable(recordRows, roundTrips), headersTable(headerRows, iterations)],
    raw: { sizes: size, runs: Object.fromEntries(runs), failures: Object.fromEntries(failures), recordRows, headerRows },
  };
}

function describeRecorded(r: Recorded): string {
  return `${fmtInt(r.roundtrip.complete)}/${fmtInt(r.roundtrip.expected)} round trips and ${fmtInt(r.publish.complete)}/${fmtInt(r.publish.expected)} publishes complete${r.invalid ? `, ${fmtInt(r.invalid)} lines refused (${r.firstInvalid})` : ''}`;
}

function recordTable(rows: RecordRow[], roundTrips: number): Table {
  return {
    title: 'One round trip’s records on their own (what the hop lines cost)',
    notes: [
      `${fmtInt(roundTrips)} round trips’ records (a publish and a consume record, shaped as the round trip writes them) in a process of its own, yielding to the event loop every 50 round trips; CPU and V8 heap bytes allocated per round trip, measured as above; bytes: the lines of one round trip. Destinations are pino.destination('/dev/null'). hoptrace serializes a record with JSON.stringify (V8's measured faster than a hand-built serializer of the same fields), builds the pino line around it from the logger's own level, time and bindings strings, and hands one batch per event-loop turn to the destination. pino's asynchronous destination (SonicBoom) costs several times its synchronous one per byte: on every write it measures the pending text and, after each write, copies what was written into a Buffer. The last row is the design this replaced: five version-1 hop lines per round trip, each through pino.`,
    ],
    columns: ['writing one round trip’s records with', 'CPU', 'alloc', 'bytes'],
    rows: rows.map((r) => [r.name, fmtUs(r.cpuUs), fmtBytes(r.allocBytes), fmtBytes(r.bytes)]),
  };
}

function headersTable(rows: HeaderRow[], iterations: number): Table {
  return {
    title: 'What each header and property hoptrace may add costs in amqplib',
    notes: [
      `amqplib's own publish path (Args.publish, then the BasicProperties encoder) and the consumer's decoder of the content-header frame, ${fmtInt(iterations)} messages a row, best of 7 rounds, in a process of its own; first row absolute, the others what they add to it. amqplib copies headers with Object.create(options.headers) and enumerates them with for-in, which V8 cannot run on its fast path once the prototype has keys: the first header costs several times what each further one does. The "reused" rows pass the same headers object every time with new values, as hoptrace does when a publish carries only its headers (V8 then makes the prototype once). hoptrace now adds a traceparent always, the correlation header only when the chain id is not the message's own id, the causation header only from a handler, and no appId or timestamp (the record carries them).`,
    ],
    columns: ['options', 'encode', 'decode', 'bytes', 'hoptrace adds it'],
    rows: rows.map((r, i) => [
      r.name,
      i === 0 ? `${fmtInt(r.encodeNs)} ns` : `${signed(r.encodeNs)} ns`,
      i === 0 ? `${fmtInt(r.decodeNs)} ns` : `${signed(r.decodeNs)} ns`,
      i === 0 ? `${r.bytes} B` : `+${r.bytes} B`,
      r.added,
    ]),
  };
}

/** A difference with its sign: +12, −3 (within the noise of a shared machine, a cheap addition can measure below zero). */
const signed = (n: number): string => (n < 0 ? `−${fmtInt(-n)}` : `+${fmtInt(n)}`);

function firstMeaningfulLine(message: string): string {
  const lines = message.split('\n').map((l) => l.trim());
  return lines.find((l) => /Error|error|not /.test(l)) ?? lines[0] ?? message;
}

/** Per-round ratio of a variant's rate to the baseline's rate in the same round. */
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

/** Per-round CPU per message the variant added to the baseline's in the same round, µs. */
function cpuAdded(runs: Runs, variant: Variant, baseline: Variant, phase: 'roundtrip' | 'publish'): number[] {
  const mine = runs.get(variant)!;
  const base = runs.get(baseline)!;
  const out: number[] = [];
  for (let i = 0; i < mine.length; i++) {
    const a = mine[i]?.[phase];
    const b = base[i]?.[phase];
    if (a && b) out.push(a.cpuUs / a.messages - b.cpuUs / b.messages);
  }
  return out;
}

const rate = (p: PhaseResult) => (p.messages / p.wallMs) * 1000;

function recordedCell(outs: RunResult[]): string {
  const rs = outs.map((o) => o.recorded).filter((r): r is Recorded => r !== undefined);
  if (rs.length === 0) return '';
  const complete = rs.reduce((s, r) => s + r.roundtrip.complete + r.publish.complete, 0);
  const expected = rs.reduce((s, r) => s + r.roundtrip.expected + r.publish.expected, 0);
  const invalid = rs.reduce((s, r) => s + r.invalid, 0);
  const ok = rs.every(fullyRecorded) && rs.length === outs.length;
  return `${ok ? '✓' : '✗ FAILED:'} ${fmtInt(complete)}/${fmtInt(expected)} messages${invalid ? `, ${fmtInt(invalid)} lines refused` : ''}`;
}

/** Bytes of hop lines per round trip over every round of a variant. */
function bytesPerRoundTrip(outs: (RunResult | undefined)[]): number | undefined {
  const rs = outs.map((o) => o?.recorded).filter((r): r is Recorded => r !== undefined);
  if (rs.length === 0) return undefined;
  return summarize(rs.map((r) => r.roundtrip.bytes / r.roundtrip.expected)).median;
}

function allRecorded(outs: (RunResult | undefined)[]): boolean {
  return outs.length > 0 && outs.every((o) => o?.recorded !== undefined && fullyRecorded(o.recorded));
}

function targetsTable(runs: Runs): Table {
  const rows: string[][] = [];
  const med = (xs: number[]) => (xs.length ? summarize(xs).median : undefined);
  const hop = runs.get('hoptrace')!;
  const recorded = allRecorded(hop);
  const sdkRecorded = allRecorded(runs.get('hoptrace-sdk')!);
  const row = (measure: string, value: string, target: string, met: boolean | undefined, before: string) =>
    rows.push([measure, before, value, target, verdict(met)]);
  const rt = med(ratios(runs, 'hoptrace', 'plain', 'roundtrip'));
  row('round trip, hoptrace without SDK, every hop recorded to a file, vs plain amqplib', rt === undefined ? 'n/a' : fmtPct(rt), `≥ ${fmtPct(TARGET.roundtripVsPlain)}`, rt === undefined ? undefined : recorded && rt >= TARGET.roundtripVsPlain, '52%');
  const cpu = med(cpuAdded(runs, 'hoptrace', 'plain', 'roundtrip'));
  row('CPU added per round-trip message', cpu === undefined ? 'n/a' : `+${fmtUs(cpu)}`, `≤ +${TARGET.cpuAddedUs} µs`, cpu === undefined ? undefined : cpu <= TARGET.cpuAddedUs, '+41 µs');
  const alloc = med(hop.filter((o): o is RunResult => o !== undefined).map((o) => o.roundtrip.allocBytes / o.roundtrip.messages));
  const plainAlloc = med(runs.get('plain')!.filter((o): o is RunResult => o !== undefined).map((o) => o.roundtrip.allocBytes / o.roundtrip.messages));
  row(
    `heap allocated per round-trip message (plain: ${plainAlloc === undefined ? 'n/a' : fmtBytes(plainAlloc)})`,
    alloc === undefined ? 'n/a' : fmtBytes(alloc),
    `≤ ${fmtBytes(TARGET.allocBytes)}`,
    alloc === undefined ? undefined : alloc <= TARGET.allocBytes,
    '62 KiB',
  );
  const sdk = med(ratios(runs, 'hoptrace-sdk', 'otel-amqplib-sdk', 'roundtrip'));
  row('round trip with SDK (batch processor, no-op exporter) vs instrumentation-amqplib with the same SDK', sdk === undefined ? 'n/a' : fmtPct(sdk), `≥ ${fmtPct(TARGET.sdkVsOfficial)}`, sdk === undefined ? undefined : sdkRecorded && sdk >= TARGET.sdkVsOfficial, '57%');
  const faf = med(ratios(runs, 'hoptrace', 'plain', 'publish'));
  row('fire-and-forget publish without SDK vs plain', faf === undefined ? 'n/a' : fmtPct(faf), `≥ ${fmtPct(TARGET.publishVsPlain)}`, faf === undefined ? undefined : recorded && faf >= TARGET.publishVsPlain, '67%');
  const bytes = bytesPerRoundTrip(hop);
  row('hop bytes written per round trip', bytes === undefined ? 'n/a' : `${fmtInt(bytes)} B`, `≤ ${fmtInt(TARGET.bytesPerRoundTrip)} B`, bytes === undefined ? undefined : bytes <= TARGET.bytesPerRoundTrip, '~3,000 B');
  row(
    'every message recorded (read back with the collector’s parser): send, confirm, receive, process, settle',
    `${recorded ? '✓' : '✗'} without SDK, ${sdkRecorded ? '✓' : '✗'} with SDK`,
    'all',
    recorded && sdkRecorded,
    '–',
  );
  return {
    title: 'Targets (issue 9): hoptrace’s cost to a service',
    notes: [
      'Ratios and differences between variants of this one run (tables below: medians of per-round values). "Before" is the design this replaced (one pino line per hop), from the full run at 0506ad2. A speed target counts as met only when the same variant also recorded every message.',
    ],
    columns: ['measure', 'before', 'now', 'target', 'met'],
    rows,
  };
}

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
      const added = summarize(cpuAdded(runs, variant, 'plain', phase));
      const alloc = summarize(phases.map((p) => p.allocBytes / p.messages));
      const first = outs[0][phase];
      const logged = outs.reduce((s, o) => s + (o.hopsLogged ?? 0), 0);
      const delivered = outs.reduce((s, o) => s + (o.hopsDelivered ?? 0), 0);
      const errors = outs.reduce((s, o) => s + (o.telemetryErrors ?? 0), 0);
      const bytes = phase === 'roundtrip' ? bytesPerRoundTrip(outs) : undefined;
      const extra = [
        first.spans === undefined ? '' : `${fmtNum(first.spans / first.messages)} span${first.spans === first.messages ? '' : 's'}`,
        outs[0].spansDroppedShare ? `${fmtPct(outs[0].spansDroppedShare)} of spans dropped by the batch queue` : '',
        first.records === undefined || first.records === 0
          ? ''
          : `${fmtNum(first.records / first.messages)} record${first.records === first.messages ? '' : 's'} (${fmtNum((first.hops ?? 0) / first.messages)} hops)`,
        bytes === undefined ? '' : `${fmtInt(bytes)} B of hop lines`,
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
        variant === 'plain' ? '' : added.n ? `${added.median >= 0 ? '+' : ''}${fmtUs(added.median)}` : 'n/a',
        fmtBytes(alloc.median),
        extra,
        recordedCell(outs),
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
        `Each variant ran in a fresh child process, ${rounds}, variants interleaved (order rotated per round). msg/s: median (min–max) over rounds, ±: relative stdev; vs plain: median (min–max) of the per-round ratio to plain amqplib in the same round. CPU: process user+system time per message (every thread of that process; the broker and the collector are other processes and not in it); added: median of the per-round difference to plain. Alloc: V8 heap bytes allocated per message, reconstructed from GC statistics (Node has no allocation counter; Buffer contents are off-heap and not counted). The two "hop lines to a file" rows write to pino.destination({ dest: file, sync: true }), a synchronous file destination as the README recommends for hop logs (the record table below shows pino's asynchronous default); after each round the file is read back with the collector's parser (checkHopRecord) and every message must have its send, confirm, receive, process and settle (a fire-and-forget message its send): "recorded". The transport row ships records through pino.transport with hoptrace/transport to a collector in its own process. The two diagnostic rows set the hop logger to level \`silent\`: hoptrace writes no records then (ids, headers, spans and bookkeeping remain), to show what recording costs.`,
      ],
      columns: ['variant', 'msg/s', '±', 'vs plain', 'CPU/msg', 'CPU added', 'alloc/msg', 'made', 'recorded'],
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
