/**
 * Top self-time functions of a V8 CPU profile (`node --cpu-prof`, or
 * `BENCH_CPU_PROF=DIR npm run bench -- roundtrip`, which profiles every
 * child): how the benchmarks find where a missed target's time goes.
 *
 *   node bench/lib/profile-top.ts FILE.cpuprofile [N] [--by-file]
 */
import { readFileSync } from 'node:fs';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

export function topSelfTime(path: string, n = 25, byFile = false): string {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as { nodes: Node[]; samples: number[]; timeDeltas: number[] };
  const selfUs = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    selfUs.set(profile.samples[i], (selfUs.get(profile.samples[i]) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const totals = new Map<string, number>();
  let all = 0;
  for (const node of profile.nodes) {
    const us = selfUs.get(node.id) ?? 0;
    all += us;
    const f = node.callFrame;
    const file = f.url.replace(/^file:\/\//, '').replace(/^.*\/node_modules\//, 'node_modules/').replace(/^.*\/work\/main\//, '');
    const key = byFile ? file || '(native)' : `${f.functionName || '(anonymous)'}  ${file}${file ? `:${f.lineNumber + 1}` : ''}`;
    totals.set(key, (totals.get(key) ?? 0) + us);
  }
  const rows = [...totals].sort((a, b) => b[1] - a[1]).slice(0, n);
  return rows.map(([k, us]) => `${((us / all) * 100).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(6)} ms  ${k}`).join('\n');
}

if (import.meta.main) {
  const [file, n] = process.argv.slice(2).filter((a) => !a.startsWith('--'));
  if (!file) {
    console.error('usage: node bench/lib/profile-top.ts FILE.cpuprofile [N] [--by-file]');
    process.exit(2);
  }
  console.log(topSelfTime(file, Number(n ?? 25), process.argv.includes('--by-file')));
}
