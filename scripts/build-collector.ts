/**
 * Builds the hoptrace-collector package (packages/collector) from the top-level
 * sources, which stay where they are:
 *   dist/collector/  the collector compiled by tsc (with the parts of src/ it imports, in dist/src/)
 *   dist/ui/         the timeline UI, copied from the root's dist/ui (`npm run build:ui`), without source maps
 *   dist/bin/        the `hoptrace` launcher and its helpers, copied from bin/
 * The collector finds its UI at `../ui` from dist/collector/ and starts its SQLite
 * writer worker from the file beside it, so this layout is the one it expects.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const out = `${root}packages/collector/dist`;
const uiBuilt = `${root}dist/ui/index.html`;

if (!existsSync(uiBuilt)) {
  console.error(`build-collector: ${uiBuilt} is missing; run \`npm run build:ui\` first (\`npm run build\` does both)`);
  process.exit(1);
}
rmSync(out, { recursive: true, force: true });
execFileSync(process.execPath, [`${root}node_modules/typescript/bin/tsc`, '-p', `${root}tsconfig.collector.json`], { stdio: 'inherit' });
// Without the source maps: they point at sources the package does not hold.
cpSync(`${root}dist/ui`, `${out}/ui`, { recursive: true, filter: (src) => !src.endsWith('.map') });
for (const file of ['hoptrace.js', 'check-node.js', 'node-flags.js']) cpSync(`${root}bin/${file}`, `${out}/bin/${file}`);
console.log(`build-collector: ${out}`);
