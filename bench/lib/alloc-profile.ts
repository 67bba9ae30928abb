/**
 * Where allocations come from: V8's sampling heap profiler with collected
 * objects kept in the samples (`--heap-prof` keeps only what is still alive
 * at the end, which hides short-lived garbage: exactly what per-message
 * overhead is made of). Enabled in the round-trip worker by
 * `BENCH_ALLOC_PROF=DIR`; read with `node bench/lib/alloc-profile.ts FILE`.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { Session } from 'node:inspector/promises';

export async function startAllocationProfile(): Promise<(path: string) => Promise<void>> {
  const session = new Session();
  session.connect();
  await session.post('HeapProfiler.startSampling', {
    samplingInterval: 4096,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  } as never);
  return async (path) => {
    const { profile } = (await session.post('HeapProfiler.stopSampling')) as { profile: unknown };
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, JSON.stringify(profile));
    session.disconnect();
  };
}

/** A CPU profile of a stretch of code (the measured phase), written where the returned function says. */
export async function startCpuProfile(): Promise<(path: string) => Promise<void>> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.setSamplingInterval', { interval: 200 });
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  return async (path) => {
    const { profile } = (await session.post('Profiler.stop')) as { profile: unknown };
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, JSON.stringify(profile));
    session.disconnect();
  };
}

interface HeapNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: HeapNode[];
}

/** Bytes allocated per function (self), top `n`. */
export function topAllocations(path: string, n = 30): string {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as { head: HeapNode };
  const totals = new Map<string, number>();
  let all = 0;
  const walk = (node: HeapNode) => {
    const f = node.callFrame;
    const file = f.url.replace(/^file:\/\//, '').replace(/^.*\/node_modules\//, 'node_modules/').replace(/^.*\/work\/main\//, '');
    const key = `${f.functionName || '(anonymous)'}  ${file}${file ? `:${f.lineNumber + 1}` : ''}`;
    totals.set(key, (totals.get(key) ?? 0) + node.selfSize);
    all += node.selfSize;
    for (const c of node.children) walk(c);
  };
  walk(profile.head);
  return [...totals]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([k, b]) => `${((b / all) * 100).toFixed(1).padStart(5)}%  ${(b / 1024 / 1024).toFixed(1).padStart(7)} MiB  ${k}`)
    .join('\n');
}

if (import.meta.main) {
  const [file, n] = process.argv.slice(2);
  if (!file) {
    console.error('usage: node bench/lib/alloc-profile.ts FILE.heapprofile [N]');
    process.exit(2);
  }
  console.log(topAllocations(file, Number(n ?? 30)));
}
