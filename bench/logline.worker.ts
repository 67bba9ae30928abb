/**
 * What one hop log line costs on its own, in a process of its own: the
 * per-message overhead of hoptrace is mostly these lines (five per round
 * trip), so the round-trip table is read next to this one. Baseline:
 * `JSON.stringify` of the same record; then pino into
 * `pino.destination('/dev/null')` (asynchronous, the default, as the round
 * trip uses it) and into a synchronous destination.
 */
import pino from 'pino';
import type { HopRecord } from '../src/hop.ts';
import { startAllocationMeter } from './lib/alloc.ts';
import { workerMain } from './lib/child.ts';
import { HopGenerator } from './lib/hop-gen.ts';

export interface LoglineInput {
  lines: number;
}

export interface LoglineRow {
  name: string;
  cpuUs: number;
  allocBytes: number;
  bytesPerLine: number;
}

async function main(input: LoglineInput): Promise<LoglineRow[]> {
  const generator = new HopGenerator({ seed: 7, startTs: Date.UTC(2026, 0, 1), chainGapMs: 100 });
  const sample: HopRecord[] = [];
  while (sample.length < 2000) sample.push(...generator.next().hops);
  // The record plus pino's own fields (level, time, pid, hostname, msg): about 100 bytes more.
  const bytesPerLine = sample.reduce((s, h) => s + JSON.stringify({ hop: h }).length, 0) / sample.length + 100;

  const measure = async (name: string, log: (hop: HopRecord) => void, yieldEvery: number): Promise<LoglineRow> => {
    // Warm up, then measure; yield to the event loop now and then so an asynchronous destination can write.
    for (let i = 0; i < Math.min(20_000, input.lines); i++) log(sample[i % sample.length]);
    await new Promise((r) => setImmediate(r));
    const cpu = process.cpuUsage();
    const meter = startAllocationMeter();
    for (let i = 0; i < input.lines; i++) {
      log(sample[i % sample.length]);
      if (yieldEvery && i % yieldEvery === 0) await new Promise((r) => setImmediate(r));
    }
    const alloc = meter.stop();
    const used = process.cpuUsage(cpu);
    return { name, cpuUs: (used.user + used.system) / input.lines, allocBytes: alloc.bytes / input.lines, bytesPerLine };
  };

  let sink = 0;
  const rows = [await measure('JSON.stringify({ hop }) only (baseline)', (hop) => (sink += JSON.stringify({ hop }).length), 0)];
  const asyncLogger = pino(pino.destination('/dev/null'));
  rows.push(await measure("pino → pino.destination('/dev/null') (async, the default)", (hop) => asyncLogger.info({ hop }, 'hop'), 25));
  const syncLogger = pino(pino.destination({ dest: '/dev/null', sync: true }));
  rows.push(await measure("pino → pino.destination({ dest: '/dev/null', sync: true })", (hop) => syncLogger.info({ hop }, 'hop'), 25));
  if (sink < 0) console.log(sink); // keep the baseline's work observable
  return rows;
}

workerMain(main);
