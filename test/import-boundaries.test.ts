/**
 * The seams between the parts, kept by a test: what each folder may import
 * from another. The library is a package of its own, so:
 *
 * - `collector/`, `demo/`, `ui/` and `bench/` reach the library only through
 *   what its package exports (`src/index.ts`, `src/otel.ts`,
 *   `src/transport.ts`) and the contract (`src/contract/`), never
 *   `src/internal/` or another library file;
 * - the library (`src/`) never imports the collector, the demo or the UI;
 * - the contract (`src/contract/`) imports only itself: every part may
 *   depend on it, so it depends on no part.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Library files other folders may import: the package's entry points. */
const LIBRARY_ENTRIES = new Set(['src/index.ts', 'src/otel.ts', 'src/transport.ts']);

/**
 * Files allowed past the rule, each with its reason. A benchmark of the
 * library's record writer measures that internal piece on its own, as
 * pino's benchmarks measure pino's internals.
 */
const EXEMPT: Record<string, string> = {
  'bench/record.worker.ts': 'benchmarks the hop writer (src/internal/hop-writer.ts) in isolation',
};

/** Every module specifier a source file names: static and dynamic imports, re-exports, `new URL(…, import.meta.url)`. */
export function specifiersOf(source: string): string[] {
  const out: string[] = [];
  const patterns = [
    /\b(?:import|export)\s[^'"`;]*?\bfrom\s*(['"])([^'"]+)\1/g,
    /\bimport\s*(['"])([^'"]+)\1/g,
    /\bimport\s*\(\s*(['"])([^'"]+)\1/g,
    /\bnew\s+URL\(\s*(['"])([^'"]+)\1\s*,\s*import\.meta\.url/g,
  ];
  for (const re of patterns) for (const m of source.matchAll(re)) out.push(m[2]);
  return out;
}

/** Why `file` (relative to the repository) may not import `specifier`, or undefined when it may. */
export function boundaryViolation(file: string, specifier: string): string | undefined {
  if (!specifier.startsWith('.')) return undefined;
  const target = relative(ROOT, resolve(ROOT, dirname(file), specifier)).split('\\').join('/');
  const part = file.split('/')[0];
  if (file.startsWith('src/contract/')) {
    return target.startsWith('src/contract/') ? undefined : `the contract imports ${target}: it may import only src/contract/`;
  }
  if (part === 'src') {
    return /^(collector|demo|ui|bench)\//.test(target) ? `the library imports ${target}` : undefined;
  }
  if (!target.startsWith('src/')) return undefined;
  if (target.startsWith('src/contract/') || LIBRARY_ENTRIES.has(target)) return undefined;
  return target.startsWith('src/internal/')
    ? `${part}/ imports the library's internals (${target})`
    : `${part}/ imports ${target}, which the library package does not export (use src/contract/ or a package entry)`;
}

/** Every violation in one source text, as `file: specifier — why`. */
export function violationsIn(file: string, source: string): string[] {
  if (EXEMPT[file] !== undefined) return [];
  const out: string[] = [];
  for (const spec of specifiersOf(source)) {
    const why = boundaryViolation(file, spec);
    if (why !== undefined) out.push(`${file}: '${spec}' — ${why}`);
  }
  return out;
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory()) {
      if (entry.name !== 'node_modules' && entry.name !== 'results') out.push(...sourceFiles(path));
    } else if (/\.(ts|tsx|js|mjs)$/.test(entry.name)) out.push(path);
  }
  return out;
}

describe('import boundaries', () => {
  it('names the file and the import when the collector, the demo or the UI reach into src/internal/', () => {
    expect(violationsIn('collector/otlp-hops.ts', "import { Attr } from '../src/internal/semconv.ts';")).toEqual([
      "collector/otlp-hops.ts: '../src/internal/semconv.ts' — collector/ imports the library's internals (src/internal/semconv.ts)",
    ]);
    expect(violationsIn('demo/tracing.ts', "const m = await import('../src/internal/ids.ts');")).toHaveLength(1);
    expect(violationsIn('ui/src/api.ts', "export { x } from '../../src/internal/config.ts';")).toHaveLength(1);
    expect(violationsIn('collector/routes/api-routes.ts', "import type {\n  A,\n  B,\n} from '../../src/errors.ts';")).toHaveLength(1);
    expect(violationsIn('demo/run.ts', "new URL('../src/internal/transport-shipper.ts', import.meta.url)")).toHaveLength(1);
  });

  it('lets them import the contract and the package entries', () => {
    const ok = [
      "import { Attr } from '../src/contract/semconv.ts';",
      "import { connect } from '../src/index.ts';",
      "import { startTracing } from '../src/otel.ts';",
      "new URL('../src/transport.ts', import.meta.url)",
      "import express from 'express';",
      "import { Env } from './settings.ts';",
    ].join('\n');
    expect(violationsIn('collector/server.ts', ok)).toEqual([]);
  });

  it('keeps the library away from the collector and the contract away from everything else', () => {
    expect(violationsIn('src/internal/publish.ts', "import { x } from '../../collector/store.ts';")).toHaveLength(1);
    expect(violationsIn('src/contract/hop.ts', "import { x } from '../internal/ids.ts';")).toHaveLength(1);
    expect(violationsIn('src/contract/hop.ts', "import { x } from './ids.ts';")).toEqual([]);
  });

  it('holds for every source file of the repository', () => {
    const files = ['src', 'collector', 'demo', 'ui/src', 'bench'].flatMap(sourceFiles);
    expect(files.length).toBeGreaterThan(100);
    const violations = files.flatMap((file) => violationsIn(file, readFileSync(join(ROOT, file), 'utf8')));
    expect(violations).toEqual([]);
  });
});
