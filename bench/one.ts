/**
 * One round-trip variant, once, outside the interleaved scenario: for
 * profiling what a missed target spends its time on.
 *
 *   BENCH_CPU_PROF=/tmp/prof node bench/one.ts hoptrace [messages]
 *   BENCH_ALLOC_PROF=/tmp/prof node bench/one.ts hoptrace 20000
 *
 * Then `node bench/lib/profile-top.ts FILE.cpuprofile` or
 * `node bench/lib/alloc-profile.ts FILE.heapprofile`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { runWorker } from './lib/child.ts';
import { AMQP_URL } from './lib/machine.ts';
import { checkRecorded } from './lib/recorded.ts';
import { RECORDING_VARIANTS, type RoundtripInput, type RoundtripOutput, type Variant } from './roundtrip.worker.ts';

const variant = (process.argv[2] ?? 'hoptrace') as Variant;
const n = Number(process.argv[3] ?? 40_000);
const warmup = Math.max(1000, n / 10);
const dir = mkdtempSync(join(os.tmpdir(), 'hoptrace-one-'));
const hopFile = RECORDING_VARIANTS.includes(variant) && !process.argv.includes('--devnull') ? join(dir, 'hops.ndjson') : undefined;
try {
  const out = await runWorker<RoundtripInput, RoundtripOutput>(new URL('./roundtrip.worker.ts', import.meta.url), {
    variant,
    amqpUrl: AMQP_URL,
    roundtripMessages: n,
    publishMessages: n,
    warmupMessages: warmup,
    queuePrefix: 'hoptrace.bench.one',
    hopFile,
    asyncHopFile: process.argv.includes('--async'),
  });
  const f = (p: RoundtripOutput['roundtrip']) =>
    `${((p.messages / p.wallMs) * 1000).toFixed(0)} msg/s, ${(p.cpuUs / p.messages).toFixed(1)} µs CPU/msg, ${(p.allocBytes / p.messages / 1024).toFixed(2)} KiB/msg`;
  console.log(`${variant}: round trip ${f(out.roundtrip)}; fire-and-forget ${f(out.publish)}`);
  if (hopFile !== undefined) {
    const r = await checkRecorded(hopFile, out.queues, { roundtrip: warmup + n, publish: warmup + n });
    console.log(
      `recorded: ${r.roundtrip.complete}/${r.roundtrip.expected} round trips, ${r.publish.complete}/${r.publish.expected} publishes, ${r.invalid} lines refused; ${(r.roundtrip.bytes / r.roundtrip.expected).toFixed(0)} B per round trip`,
    );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
