/**
 * `npm run bench`: every scenario, or the ones named
 * (`npm run bench -- roundtrip queries`), printing a table per scenario and
 * writing them to bench/results/latest.md with the machine they ran on.
 *
 *   --quick   tiny sizes and one round: a smoke run of the harness, not a
 *             result; its tables go to stdout and bench/results/quick.json only.
 *   --rounds=N  rounds of the repeated scenarios (roundtrip; default 5).
 *   --list    name the scenarios and exit.
 *
 * A run of some scenarios replaces only their sections of latest.md; each
 * section says the command and date that produced it. Raw measurements go to
 * bench/results/<scenario>.json (not committed).
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ingestScenario } from './ingest.bench.ts';
import { machineInfo, AMQP_URL, type MachineInfo } from './lib/machine.ts';
import { progress } from './lib/progress.ts';
import type { BenchContext, Scenario, ScenarioResult } from './lib/scenario.ts';
import { renderTable, type Table } from './lib/table.ts';
import { memoryScenario } from './memory.bench.ts';
import { queriesPgScenario } from './queries-pg.bench.ts';
import { queriesScenario } from './queries.bench.ts';
import { roundtripScenario } from './roundtrip.bench.ts';

const SCENARIOS: Scenario[] = [roundtripScenario, ingestScenario, queriesScenario, queriesPgScenario, memoryScenario];

const RESULTS = fileURLToPath(new URL('./results/', import.meta.url));
const LATEST = join(RESULTS, 'latest.md');

function usage(): string {
  return [
    'usage: npm run bench [-- [--quick] [--rounds=N] [SCENARIO...]]',
    '',
    ...SCENARIOS.map((s) => `  ${s.name.padEnd(10)} ${s.description}`),
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const quick = argv.includes('--quick');
  if (argv.includes('--help') || argv.includes('-h') || argv.includes('--list')) {
    console.log(usage());
    return 0;
  }
  const names = argv.filter((a) => !a.startsWith('--'));
  const unknown = names.filter((n) => !SCENARIOS.some((s) => s.name === n));
  if (unknown.length > 0) {
    console.error(`unknown scenario: ${unknown.join(', ')}\n\n${usage()}`);
    return 2;
  }
  const selected = names.length > 0 ? SCENARIOS.filter((s) => names.includes(s.name)) : SCENARIOS;
  const roundsArg = argv.find((a) => a.startsWith('--rounds='));
  const rounds = roundsArg ? Number(roundsArg.slice('--rounds='.length)) : undefined;
  if (rounds !== undefined && !(Number.isInteger(rounds) && rounds > 0)) {
    console.error(`--rounds must be a positive integer, got ${roundsArg}`);
    return 2;
  }
  const command = `npm run bench${argv.length ? ` -- ${argv.join(' ')}` : ''}`;

  const machine = await machineInfo();
  progress(
    `${machine.cores} cores (${machine.cpuModel}), Node ${machine.node}, RabbitMQ ${machine.rabbitmq}, load ${machine.loadAverage.join(' ')}${quick ? ' — quick run' : ''}`,
  );
  const tmpDir = mkdtempSync(join(os.tmpdir(), 'hoptrace-bench-'));
  const cacheDir = fileURLToPath(new URL('./.cache/', import.meta.url));
  mkdirSync(cacheDir, { recursive: true });
  mkdirSync(RESULTS, { recursive: true });
  const ctx: BenchContext = { quick, rounds, amqpUrl: AMQP_URL, tmpDir, cacheDir, shared: {} };

  const sections: { scenario: Scenario; markdown: string }[] = [];
  const raw: Record<string, unknown> = {};
  let failed = 0;
  try {
    for (const scenario of selected) {
      progress(`${scenario.name}: ${scenario.description}`);
      const started = Date.now();
      let result: ScenarioResult;
      try {
        result = await scenario.run(ctx);
      } catch (err) {
        failed++;
        const message = (err as Error)?.stack ?? String(err);
        progress(`${scenario.name} failed: ${message}`);
        result = {
          tables: [{ title: `${scenario.name}: failed`, notes: ['The scenario did not finish:', '```', message, '```'], columns: [], rows: [] }],
          raw: { error: message },
        };
      }
      const seconds = Math.round((Date.now() - started) / 1000);
      const markdown = section(scenario, result.tables, command, started, seconds, os.loadavg());
      console.log(`\n${markdown}\n`);
      sections.push({ scenario, markdown });
      raw[scenario.name] = result.raw;
      if (!quick) writeFileSync(join(RESULTS, `${scenario.name}.json`), JSON.stringify({ machine, command, raw: result.raw }, null, 2));
    }
  } finally {
    rmSync(tmpDir, { recursive: true, force: true });
  }

  const after = os.loadavg().map((l) => Math.round(l * 100) / 100);
  progress(`done; load average now ${after.join(' ')}`);
  if (quick) {
    writeFileSync(join(RESULTS, 'quick.json'), JSON.stringify({ machine, command, raw }, null, 2));
    progress('quick run: bench/results/latest.md left as it was');
  } else {
    writeFileSync(LATEST, mergeLatest(machine, sections));
    progress(`wrote ${LATEST}`);
  }
  return failed > 0 ? 1 : 0;
}

function section(scenario: Scenario, tables: Table[], command: string, started: number, seconds: number, loadAtEnd: number[]): string {
  const load = loadAtEnd.map((l) => Math.round(l * 100) / 100).join(' ');
  return [
    `<!-- scenario:${scenario.name} -->`,
    `## ${scenario.name}`,
    '',
    `\`${command}\` — started ${new Date(started).toISOString().slice(0, 16).replace('T', ' ')} UTC, took ${seconds} s, load average at its end ${load}`,
    '',
    tables.map(renderTable).join('\n\n'),
    `<!-- /scenario:${scenario.name} -->`,
  ].join('\n');
}

/** latest.md: the machine header, then one section per scenario; sections not run now are kept from the previous file. */
function mergeLatest(machine: MachineInfo, fresh: { scenario: Scenario; markdown: string }[]): string {
  const previous = existsSync(LATEST) ? readFileSync(LATEST, 'utf8') : '';
  const bodies = SCENARIOS.map((s) => {
    const now = fresh.find((f) => f.scenario === s);
    if (now) return now.markdown;
    const old = new RegExp(`<!-- scenario:${s.name} -->[\\s\\S]*?<!-- /scenario:${s.name} -->`).exec(previous);
    return old?.[0];
  }).filter((b): b is string => b !== undefined);
  return [
    '# hoptrace benchmarks: latest results',
    '',
    'Produced by `npm run bench` (bench/run.ts); each section names the exact command and time that produced it.',
    '',
    `- Machine: ${machine.cores} cores, ${machine.cpuModel}, ${machine.memoryGiB} GiB RAM, ${machine.os}`,
    `- Node ${machine.node}; RabbitMQ ${machine.rabbitmq} on the same machine`,
    `- Run: ${machine.date}; load average at start ${machine.loadAverage.join(' ')} (1/5/15 min); commit ${machine.commit}`,
    `- Targets are reported, never asserted; ✓/✗ compares the median (throughput) or the p99 (latency) against the target.`,
    ...(machine.loadAverage[0] > machine.cores / 2
      ? [
          `- **Busy machine**: the load average was ${machine.loadAverage[0]} on ${machine.cores} cores when the run started (other work was running). Absolute numbers are pessimistic and noisier than on an idle machine; the ratios between variants measured side by side in the same rounds are the result to read.`,
        ]
      : []),
    '',
    ...bodies.map((b) => `${b}\n`),
  ].join('\n');
}

process.exitCode = await main(process.argv.slice(2));
