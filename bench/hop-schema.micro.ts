/**
 * A micro-benchmark of the hop schema alone (the check on the collector's
 * ingest path): validateRecords over 200,000 parsed records, half version 1
 * and half version 2 (as pino lines, the way the transport ships them), in
 * requests of 1,000. Run `node bench/hop-schema.micro.ts [schema module …]`
 * to compare several versions of the schema in one process, interleaved
 * round by round so the machine's load falls on each alike; the figure is
 * the median of the rounds, in ns per record.
 */
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import { HopGenerator, hopsInTimeOrder } from './lib/hop-gen.ts';
import { recordsInTimeOrder } from './lib/record-gen.ts';

type Validate = (values: readonly unknown[]) => { records: unknown[]; rejected: number };

const TOTAL = 200_000;
const BATCH = 1_000;
const ROUNDS = Number(process.env.ROUNDS ?? 9);

function records(): unknown[][] {
  const v1 = [...hopsInTimeOrder(new HopGenerator({ seed: 7, startTs: 1_750_000_000_000, chainGapMs: 5 }), TOTAL / 2)];
  const v2 = [...recordsInTimeOrder(new HopGenerator({ seed: 8, startTs: 1_750_000_000_000, chainGapMs: 5 }), TOTAL / 2)];
  const lines: unknown[] = [];
  for (let i = 0; i < TOTAL / 2; i++) {
    lines.push(JSON.parse(JSON.stringify(v1[i])));
    const { instance, ...rest } = v2[i];
    const [hostname, pid] = (instance ?? 'host/1').split('/');
    lines.push(JSON.parse(JSON.stringify({ level: 30, time: v2[i].ts, pid: Number(pid), hostname, hop: rest })));
  }
  const batches: unknown[][] = [];
  for (let i = 0; i < lines.length; i += BATCH) batches.push(lines.slice(i, i + BATCH));
  return batches;
}

const modules = process.argv.length > 2 ? process.argv.slice(2) : ['collector/hop-schema.ts'];
const validators: { name: string; validate: Validate }[] = [];
for (const m of modules) {
  const mod = (await import(pathToFileURL(resolve(m)).href)) as { validateRecords: Validate };
  validators.push({ name: m, validate: mod.validateRecords });
}
const batches = records();
const times = new Map<string, number[]>(validators.map((v) => [v.name, []]));
for (let round = 0; round < ROUNDS; round++) {
  for (const { name, validate } of validators) {
    const start = process.hrtime.bigint();
    let valid = 0;
    for (const b of batches) valid += validate(b).records.length;
    const ns = Number(process.hrtime.bigint() - start);
    if (valid !== TOTAL) throw new Error(`${name}: ${TOTAL - valid} of the generated records were refused`);
    times.get(name)!.push(ns / TOTAL);
  }
}
for (const [name, list] of times) {
  const sorted = list.slice(1).sort((a, b) => a - b); // the first round warms up
  const median = sorted[Math.floor(sorted.length / 2)];
  console.log(`${name}: median ${median.toFixed(0)} ns/record, best ${sorted[0].toFixed(0)} ns/record (${ROUNDS - 1} rounds of ${TOTAL} records)`);
}
