/**
 * The package version, read from the nearest package.json above this module
 * (works from the source tree and from `dist/collector/` of the hoptrace-collector package).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if ((pkg.name === 'hoptrace' || pkg.name === 'hoptrace-collector') && pkg.version) return pkg.version;
    }
    dir = dirname(dir);
  }
  return '0.0.0';
}

/** The hoptrace version, e.g. `0.1.0`. */
export const VERSION = findVersion();
