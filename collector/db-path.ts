/**
 * Where the SQLite file goes: its directory must exist, or be one missing
 * level under a directory that does (created, and said so), unless the user
 * asked for the whole path to be created. A typo in `--db` should not
 * silently create a tree of directories (as root, anywhere), and a directory
 * that cannot be created should say why and what to do, not print a stack.
 */
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ConfigError } from './errors.ts';

export interface DbDirectoryOptions {
  /** Create every missing directory of the path (`--create-dirs`). @default false */
  createDirs?: boolean;
  /** The option that named the path, for the advice. @default '--db' */
  flag?: string;
  /** Where to say that a directory was created. @default process.stderr */
  report?: (line: string) => void;
}

/** The nearest ancestor of `dir` that exists (at worst the root). */
function existingAncestor(dir: string): string {
  let at = dir;
  while (!existsSync(at) && dirname(at) !== at) at = dirname(at);
  return at;
}

/** Make sure the database file's directory exists, or explain why it cannot. @throws ConfigError */
export function prepareDbDirectory(path: string, options: DbDirectoryOptions = {}): void {
  if (path === ':memory:') return;
  const flag = options.flag ?? '--db';
  const dir = dirname(resolve(path));
  if (existsSync(dir)) {
    if (statSync(dir).isDirectory()) return;
    throw new ConfigError(`cannot use ${resolve(path)} for the database: ${dir} is a file, not a directory; choose a ${flag} path in a directory you can write`);
  }
  const ancestor = existingAncestor(dir);
  if (!statSync(ancestor).isDirectory()) {
    throw new ConfigError(`cannot create the directory ${dir} for the database: ${ancestor} is a file, not a directory; choose a ${flag} path in a directory you can write`);
  }
  if (!options.createDirs && ancestor !== dirname(dir)) {
    throw new ConfigError(
      `the directory ${dir} for the database does not exist (nor does ${dirname(dir)}); create it, ` +
        'or pass --create-dirs (createDirs) to create every missing directory of the path',
    );
  }
  try {
    mkdirSync(dir, { recursive: true });
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    const why =
      code === 'EACCES' || code === 'EPERM'
        ? `permission denied in ${ancestor}`
        : code === 'EROFS'
          ? 'read-only file system'
          : code === 'ENOTDIR'
            ? 'a part of the path is a file, not a directory'
            : (cause as Error).message;
    throw new ConfigError(`cannot create the directory ${dir} for the database: ${why}; choose a ${flag} path in a directory you can write`, {
      cause,
    });
  }
  (options.report ?? ((line) => process.stderr.write(`${line}\n`)))(`hoptrace: created the directory ${dir} for the database`);
}
