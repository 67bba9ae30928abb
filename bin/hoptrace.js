#!/usr/bin/env node
// The `hoptrace` command. Runs the TypeScript source in a clone (Node 24 strips
// the types itself, so no build step is needed to run it), else the compiled CLI:
// in the hoptrace-collector package this file sits in dist/bin/, beside
// dist/collector/ (see scripts/build-collector.ts).
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { nodeTooOld } from './check-node.js';
import { COLLECTOR_NODE_FLAGS } from './node-flags.js';

const source = fileURLToPath(new URL('../collector/cli.ts', import.meta.url));
const built = fileURLToPath(new URL('../collector/cli.js', import.meta.url));
const tooOld = nodeTooOld(process.versions.node, 'hoptrace');
if (tooOld) {
  console.error(tooOld);
  process.exit(1);
}
// The long-running commands run with the collector's V8 flags: start again in their place
// (same process, same pid, via execve) when they were not given.
const command = process.argv[2];
if ((command === 'collector' || command === 'import') && typeof process.execve === 'function' && !process.env.HOPTRACE_NO_NODE_FLAGS) {
  const given = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)];
  const missing = COLLECTOR_NODE_FLAGS.filter((flag) => !given.some((g) => g.startsWith(flag.split('=')[0])));
  if (missing.length > 0) {
    process.execve(process.execPath, [process.execPath, ...missing, ...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)], process.env);
  }
}
const entry = existsSync(source) ? source : built;
const { main } = await import(pathToFileURL(entry).href);
process.exitCode = await main(process.argv.slice(2));
