#!/usr/bin/env node
// The `hoptrace` command. Runs the compiled CLI when the package is built (an
// installed package), else the TypeScript source directly (a clone: Node 24
// strips the types itself, so no build step is needed to run it).
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

const built = fileURLToPath(new URL('../dist/collector/cli.js', import.meta.url));
const source = fileURLToPath(new URL('../collector/cli.ts', import.meta.url));
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 15)) {
  console.error(`hoptrace needs Node.js 22.15 or newer; this is ${process.version}.`);
  process.exit(1);
}
const entry = existsSync(source) ? source : built;
const { main } = await import(pathToFileURL(entry).href);
process.exitCode = await main(process.argv.slice(2));
