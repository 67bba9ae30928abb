/**
 * The two packages' manifests against what their code imports: the library
 * (`hoptrace`, from src/) must declare every package it loads and nothing of the
 * collector; `hoptrace-collector` must declare every package that the files
 * reachable from its entry points load, since it is installed without the
 * repository's devDependencies. Cheap and early; `npm run check:package` proves
 * the same with real installs.
 */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
interface Manifest {
  name: string;
  version: string;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  files?: string[];
  bin?: Record<string, string>;
}
const readJson = (path: string) => JSON.parse(readFileSync(join(root, path), 'utf8')) as Manifest;
const library = readJson('package.json');
const collector = readJson('packages/collector/package.json');

/** The package a bare specifier names (`pino/file` → `pino`, `@a/b/c` → `@a/b`). */
const packageOf = (specifier: string) => specifier.split('/').slice(0, specifier.startsWith('@') ? 2 : 1).join('/');

/** Relative and bare imports of one file; `valueOnly` leaves out `import type` (erased when compiled). */
function importsOf(file: string, valueOnly: boolean): { relative: string[]; bare: string[] } {
  const source = readFileSync(file, 'utf8');
  const found: string[] = [];
  const statement = /^\s*(import|export)\s+(type\s+)?(?:[^'";]*?\sfrom\s+)?'([^']+)'/gm;
  for (const m of source.matchAll(statement)) if (!(valueOnly && m[2])) found.push(m[3]!);
  for (const m of source.matchAll(/\bimport\(\s*'([^']+)'\s*\)/g)) found.push(m[1]!);
  for (const m of source.matchAll(/import\.meta\.resolve\(\s*'([^']+)'\s*\)/g)) found.push(m[1]!);
  return {
    relative: found.filter((s) => s.startsWith('.')).map((s) => resolve(dirname(file), s)),
    bare: found.filter((s) => !s.startsWith('.') && !s.startsWith('node:')).map(packageOf),
  };
}

/** Every file reachable from the entry points, and the packages they load. */
function reachable(entries: string[], valueOnly: boolean): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const queue = entries.map((e) => join(root, e));
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (files.has(file) || !file.endsWith('.ts')) continue;
    files.add(file);
    const { relative, bare } = importsOf(file, valueOnly);
    for (const p of bare) packages.add(p);
    queue.push(...relative);
  }
  return { files, packages };
}

const LIBRARY_ENTRIES = ['src/index.ts', 'src/otel.ts', 'src/transport.ts'];
const COLLECTOR_ENTRIES = ['collector/cli.ts', 'collector/sqlite-writer.worker.ts'];
/** What the library loads only through `startTracing`, from its optional peers. */
const OTEL_SDK = ['@opentelemetry/context-async-hooks', '@opentelemetry/core', '@opentelemetry/exporter-trace-otlp-proto', '@opentelemetry/resources', '@opentelemetry/sdk-node', '@opentelemetry/sdk-trace'];

describe('package manifests', () => {
  it('the library declares every package its entries load (types included), as a dependency or a peer', () => {
    const { packages } = reachable(LIBRARY_ENTRIES, false);
    const declared = new Set([...Object.keys(library.dependencies ?? {}), ...Object.keys(library.peerDependencies ?? {})]);
    expect([...packages].filter((p) => !declared.has(p)).sort()).toEqual([]);
  });

  it('the library depends on nothing it does not load, and never on the collector or the OpenTelemetry SDK', () => {
    const { packages } = reachable(LIBRARY_ENTRIES, true);
    const deps = Object.keys(library.dependencies ?? {});
    expect(deps.filter((d) => !packages.has(d)).sort()).toEqual([]);
    expect(deps.filter((d) => /^(express|pg|pg-copy-streams)$|^@opentelemetry\//.test(d))).toEqual([]);
  });

  it('the OpenTelemetry SDK packages are optional peers of the library, and its entries do not import them at load time', () => {
    for (const name of OTEL_SDK) {
      expect(library.peerDependencies?.[name], name).toBeDefined();
      expect(library.peerDependenciesMeta?.[name]?.optional, name).toBe(true);
    }
    // src/internal/otel-sdk.ts loads them inside startTracing (import.meta.resolve + require); a static import would
    // make `import 'hoptrace/otel'` fail where they are not installed.
    const { packages } = reachable(LIBRARY_ENTRIES, true);
    expect([...packages].filter((p) => p.startsWith('@opentelemetry/') && p !== '@opentelemetry/api')).toEqual([]);
  });

  it('the library ships only dist/src, and no command', () => {
    expect(library.files).toEqual(['dist/src']);
    expect(library.bin).toBeUndefined();
  });

  it('hoptrace-collector declares every package its compiled files load, and has the version of the library', () => {
    const { packages } = reachable(COLLECTOR_ENTRIES, true);
    const declared = Object.keys(collector.dependencies ?? {});
    expect([...packages].filter((p) => !declared.includes(p)).sort()).toEqual([]);
    expect(declared.filter((d) => !packages.has(d)).sort()).toEqual([]);
    expect(collector.version).toBe(library.version);
    expect(collector.bin).toEqual({ hoptrace: 'bin/hoptrace.js' });
  });
});
