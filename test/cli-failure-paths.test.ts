/**
 * The failure paths a newcomer hits on the `hoptrace` command line, each run
 * as a user runs it (`node bin/hoptrace.js …` in a child process) against real
 * files, a real SQLite store, real sockets and the real PostgreSQL: a message
 * that says what is wrong and what to do, one line rather than a stack trace,
 * and an exit code that is not 0.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { MIN_NODE, nodeTooOld } from '../bin/check-node.js';
import { DEFAULT_ENGINE_OPTIONS } from '../collector/chain-engine.ts';
import { importVerdict, type ImportResult } from '../collector/import.ts';
import { SqliteStore } from '../collector/sqlite-store.ts';
import { messageHops } from './helpers/collector.ts';
import { AMQP_URL } from './helpers/broker.ts';
import { closedPort } from './helpers/ports.ts';
import { PG_ADMIN_URL } from './helpers/postgres.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BIN = join(ROOT, 'bin', 'hoptrace.js');
const dir = mkdtempSync(join(tmpdir(), 'hoptrace-fail-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run `node bin/hoptrace.js ARGS` (or another command) to its end; a run that hangs is killed after 60 s and fails the test. */
function run(args: readonly string[], options: { node?: string; command?: string; env?: Record<string, string> } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const command = options.command ?? options.node ?? process.execPath;
    const argv = options.command ? [...args] : [BIN, ...args];
    const child = spawn(command, argv, {
      cwd: ROOT,
      env: { ...process.env, HOPTRACE_TOKEN: '', HOPTRACE_DB: '', HOPTRACE_STORE: '', ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** No stack frame (`    at fn (file:line)`) anywhere in the output. */
const STACK = /\n\s+at .*[:(]/;

const pinoLine = (hop: unknown) => JSON.stringify({ level: 30, time: Date.now(), pid: 42, hostname: 'box', msg: 'hop', hop });


async function storedHops(db: string): Promise<number> {
  const store = new SqliteStore({ path: db, engine: DEFAULT_ENGINE_OPTIONS });
  try {
    return (await store.stats()).hops;
  } finally {
    await store.close();
  }
}

describe('hoptrace import: the exit code says whether everything was imported', () => {
  // One chain of 4 valid hops, and two hops that fail validation on lines 3 and 5.
  const hops = messageHops({ correlationId: randomUUID() });
  const mixed = join(dir, 'mixed.log');
  writeFileSync(
    mixed,
    [pinoLine(hops[0]), pinoLine(hops[1]), pinoLine({ ...hops[2], traceId: 'not-hex' }), pinoLine(hops[2]), pinoLine({ ...hops[3], kind: 'teleport' }), pinoLine(hops[3])].join('\n') + '\n',
  );

  it('invalid records: exit 1, naming how many, their line numbers and --allow-invalid, while the valid records of the file are stored', async () => {
    const db = join(dir, `mixed-${randomUUID()}.db`);
    const r = await run(['import', '--db', db, mixed]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('2 invalid hop records were left out (reasons above); the 4 valid ones are stored. Pass --allow-invalid to accept that and exit 0.');
    expect(r.stderr).toContain(`${mixed}:3: field "hop.traceId"`);
    expect(r.stderr).toContain(`${mixed}:5: field "hop.kind"`);
    expect(await storedHops(db)).toBe(4);
  });

  it('with --allow-invalid: exit 0, and the summary says how many were skipped', async () => {
    const db = join(dir, `allowed-${randomUUID()}.db`);
    const r = await run(['import', '--allow-invalid', '--db', db, mixed]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('skipped 2 invalid hop records (--allow-invalid); 4 stored');
    expect(await storedHops(db)).toBe(4);
  });

  it('a file whose every hop record is invalid imports nothing: exit 1 even with --allow-invalid, saying so', async () => {
    const file = join(dir, 'all-invalid.log');
    writeFileSync(file, [pinoLine({ ...hops[0], traceId: 'x' }), pinoLine({ ...hops[1], ts: 'yesterday' })].join('\n') + '\n');
    const r = await run(['import', '--allow-invalid', '--db', join(dir, 'all-invalid.db'), file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('nothing was imported: 2 hop records were found and every one is invalid');
    expect(r.stderr).toContain(`${file}:1: field "hop.traceId"`);
  });

  it('a pino-pretty log imports nothing: exit 1, the first lines named, and the raw JSON log asked for', async () => {
    const file = join(dir, 'pretty.log');
    writeFileSync(file, '[12:00:00.000] INFO (42 on box): hop\n    hop: {\n[12:00:00.100] INFO (42 on box): listening\n');
    const r = await run(['import', '--db', join(dir, 'pretty.db'), file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('nothing was imported: none of the 3 lines holds a hop record (3 not JSON, 0 JSON without a "hop" field)');
    expect(r.stderr).toContain(`${file}:1: not JSON`);
    expect(r.stderr).toMatch(/pino-pretty output: import the raw JSON log/);
  });

  it('an empty file imports nothing: exit 1', async () => {
    const file = join(dir, 'empty.log');
    writeFileSync(file, '');
    const r = await run(['import', '--db', join(dir, 'empty.db'), file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('nothing was imported');
  });

  it('a directory given as a log file is one line naming it, exit 1', async () => {
    const r = await run(['import', '--db', join(dir, 'dir.db'), dir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`cannot read ${dir}: EISDIR`);
    expect(r.stderr).not.toMatch(STACK);
  });

  it('the verdict is decided in one place: success only with something stored and nothing refused (or refusals allowed)', () => {
    const base: ImportResult = { files: 1, lines: 5, hops: 5, duplicates: 0, notJson: 0, withoutHop: 0, invalidHops: 0, invalidReasons: [], ignoredSamples: [] };
    expect(importVerdict(base)).toEqual({ exitCode: 0, message: undefined });
    expect(importVerdict({ ...base, invalidHops: 1 }).exitCode).toBe(1);
    expect(importVerdict({ ...base, invalidHops: 1 }, { allowInvalid: true }).exitCode).toBe(0);
    expect(importVerdict({ ...base, hops: 0, withoutHop: 5 }, { allowInvalid: true }).exitCode).toBe(1);
    // Duplicates are stored records (an import run twice): a success.
    expect(importVerdict({ ...base, duplicates: 5 }).exitCode).toBe(0);
  });
});

describe('--db and --to in a directory that is missing or cannot be made', () => {
  const log = join(dir, 'dirs.log');
  writeFileSync(log, messageHops({ correlationId: randomUUID() }).map(pinoLine).join('\n') + '\n');
  const file = join(dir, 'file.txt');
  writeFileSync(file, 'a file, not a directory\n');

  it('the collector refuses a path two missing levels deep, naming --create-dirs, and creates nothing', async () => {
    const deep = join(dir, `deep-${randomUUID()}`, 'a', 'hoptrace.db');
    const r = await run(['collector', '--port', '0', '--db', deep]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/the directory .*a for the database does not exist .*pass --create-dirs/);
    expect(r.stderr).not.toMatch(STACK);
    expect(existsSync(dirname(dirname(deep)))).toBe(false);
  });

  it('a path under a regular file (ENOTDIR) is one line naming the file, exit 1, with and without --create-dirs', async () => {
    for (const args of [['collector', '--port', '0', '--create-dirs', '--db'], ['import', '--create-dirs', '--db'], ['import', '--db']]) {
      const target = join(file, 'sub', 'x.db');
      const r = await run([...args, target, ...(args[0] === 'import' ? [log] : [])]);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr).toContain(`cannot create the directory ${join(file, 'sub')} for the database: ${file} is a file, not a directory; choose a --db path in a directory you can write`);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
    const direct = await run(['collector', '--port', '0', '--db', join(file, 'x.db')]);
    expect(direct.code).toBe(1);
    expect(direct.stderr).toContain(`${file} is a file, not a directory`);
    expect(direct.stderr).not.toMatch(STACK);
  });

  it('hoptrace migrate: --to gets the same directory rules, named as --to', async () => {
    const source = join(dir, `source-${randomUUID()}.db`);
    expect((await run(['import', '--db', source, log])).code).toBe(0);
    const deep = join(dir, `to-${randomUUID()}`, 'a', 'copy.db');
    const refused = await run(['migrate', '--from', source, '--to', deep]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/does not exist .*pass --create-dirs/);
    const created = await run(['migrate', '--from', source, '--to', deep, '--create-dirs']);
    expect(created.code).toBe(0);
    expect(await storedHops(deep)).toBe(4);
    const underFile = await run(['migrate', '--from', source, '--to', join(file, 'copy.db')]);
    expect(underFile.code).toBe(1);
    expect(underFile.stderr).toContain('choose a --to path in a directory you can write');
  });

  it('hoptrace migrate: a --from file that does not exist is refused, and not created (it would read as an empty store)', async () => {
    const missing = join(dir, `typo-${randomUUID()}.db`);
    const r = await run(['migrate', '--from', missing, '--to', join(dir, 'out.db')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`there is no store at ${missing} (the file does not exist); check the path`);
    expect(existsSync(missing)).toBe(false);
    const existing = join(dir, `same-${randomUUID()}.db`);
    expect((await run(['import', '--db', existing, log])).code).toBe(0);
    // The same file, spelled two ways.
    const same = await run(['migrate', '--from', existing, '--to', `sqlite:${dir}/./${existing.slice(dir.length + 1)}`]);
    expect(same.code).toBe(2);
    expect(same.stderr).toContain('--from and --to name the same store');
  });
});

describe('the collector: a port, a host or a store it cannot use', () => {
  it('a port in use (EADDRINUSE) says another process has it and how to choose another, exit 1', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const { port } = taken.address() as AddressInfo;
    try {
      const r = await run(['collector', '--host', '127.0.0.1', '--port', String(port), '--db', join(dir, 'port.db')]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`the collector cannot listen on 127.0.0.1:${port}: listen EADDRINUSE`);
      expect(r.stderr).toContain('another process listens on port');
      expect(r.stderr).toContain('--port N (0 picks a free one)');
      expect(r.stderr).not.toMatch(STACK);
    } finally {
      taken.close();
    }
  });

  it('a --host that is not an address of this machine says which to use, exit 1', async () => {
    // 192.0.2.1 is TEST-NET-1 (RFC 5737): never an address of a real machine.
    const r = await run(['collector', '--host', '192.0.2.1', '--port', '0', '--db', join(dir, 'host.db')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('the collector cannot listen on 192.0.2.1:0: listen EADDRNOTAVAIL');
    expect(r.stderr).toContain('192.0.2.1 is not an address of this machine: use --host 127.0.0.1, or 0.0.0.0 for every interface');
  });

  it('a bad --port, an unknown flag: a usage error, exit 2', async () => {
    const big = await run(['collector', '--port', '70000']);
    expect(big.code).toBe(2);
    expect(big.stderr).toContain('--port must be at most 65535, got 70000');
    const negative = await run(['collector', '--port', '-1']);
    expect(negative.code).toBe(2);
    const unknown = await run(['import', '--allow-invalids', 'x.log']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("Unknown option '--allow-invalids'");
    expect(unknown.stderr).toContain('hoptrace --help');
  });

  it('a PostgreSQL URL nobody answers is refused with what to do, exit 1', async () => {
    const url = `postgres://postgres@127.0.0.1:${await closedPort()}/hoptrace`;
    const r = await run(['collector', '--port', '0', '--store', url]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/ECONNREFUSED.*no PostgreSQL accepts connections there: start it, or correct the host and port/);
    expect(r.stderr).not.toMatch(STACK);
  });

  it('a PostgreSQL database that does not exist is named, with how to create it (real PostgreSQL)', async () => {
    const url = new URL(PG_ADMIN_URL);
    url.pathname = `/hoptrace_missing_${randomUUID().slice(0, 8).replace(/-/g, '')}`;
    const r = await run(['import', '--store', url.toString(), join(dir, 'any.log')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/database "hoptrace_missing_[0-9a-f]+" does not exist; create the database first/);
  });

  it('a PostgreSQL role that does not exist is a refused login, with what to check (real PostgreSQL)', async () => {
    const url = new URL(PG_ADMIN_URL);
    url.username = `nobody_${randomUUID().slice(0, 8)}`;
    const r = await run(['import', '--store', url.toString(), join(dir, 'any.log')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/role "nobody_[0-9a-f]+" does not exist; PostgreSQL refused the login: check the user and password/);
  });

  it('a store URL of another kind says which kinds there are, exit 1', async () => {
    const r = await run(['collector', '--port', '0', '--store', 'mysql://root@localhost/hoptrace']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('hoptrace stores in sqlite:PATH or postgres://…, not mysql');
  });
});

describe('the demo against a RabbitMQ it cannot use', () => {
  it('a wrong password (403 ACCESS-REFUSED from the real broker) gets login advice, not the advice to start a broker', async () => {
    const url = new URL(AMQP_URL);
    url.password = 'wrong';
    const r = await run(['demo/main.ts', '--count', '1', '--port', '0', '--amqp-url', url.toString(), '--db', join(dir, 'demo.db')], { command: process.execPath });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/refused the login of user "guest" \(403 ACCESS-REFUSED\)/);
    expect(r.stderr).toMatch(/Check the user and password in AMQP_URL/);
    expect(r.stderr).not.toMatch(/docker run|rabbitmq-server/);
    expect(r.stderr).not.toContain(':wrong@');
    expect(r.stderr).not.toMatch(STACK);
  });

  it('a closed port gets the command that starts a broker', async () => {
    const url = `amqp://guest:guest@127.0.0.1:${await closedPort()}`;
    const r = await run(['demo/main.ts', '--count', '1', '--port', '0', '--amqp-url', url, '--db', join(dir, 'demo.db')], { command: process.execPath });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('docker run -d --name rabbitmq -p 5672:5672');
    expect(r.stderr).not.toMatch(STACK);
  });
});

describe('a Node.js older than the project needs', () => {
  it(`the version check names ${MIN_NODE} and how to install Node 24, and passes this Node`, () => {
    expect(nodeTooOld('20.20.2', 'npm run demo')).toMatch(/^npm run demo needs Node\.js 22\.15 or newer \(Node 24 LTS recommended\); this is v20\.20\.2\./);
    expect(nodeTooOld('22.14.0', 'hoptrace')).toContain('npm install --prefix "$HOME/.node24" node@24');
    expect(nodeTooOld('22.15.0', 'hoptrace')).toBeUndefined();
    expect(nodeTooOld('23.0.0', 'hoptrace')).toBeUndefined();
    expect(nodeTooOld(process.versions.node, 'hoptrace')).toBeUndefined();
  });

  it('`npm run demo` runs the version check before any TypeScript file', () => {
    const scripts = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
    expect(scripts.demo).toMatch(/^node bin\/check-node\.js "npm run demo" && /);
  });

  // The machine's own Node when it is an old one (Node 20 at /usr/bin/node here): the real thing, not a simulation.
  const oldNode = ['/usr/bin/node', '/usr/local/bin/node'].find((p) => {
    if (!existsSync(p) || p === process.execPath) return false;
    const out = spawnVersion(p);
    return out !== undefined && nodeTooOld(out, 'x') !== undefined;
  });

  it.runIf(oldNode !== undefined)(`on the machine's old Node (${oldNode ?? 'none found'}): the command and npm run demo say which version they need, exit 1, no ERR_UNKNOWN_FILE_EXTENSION`, async () => {
    const command = await run(['--version'], { node: oldNode });
    expect(command.code).toBe(1);
    expect(command.stderr).toMatch(/^hoptrace needs Node\.js 22\.15 or newer .*this is v\d+\./);
    const demo = await run(['run', 'demo'], { command: 'npm', env: { PATH: `${dirname(oldNode!)}:${process.env.PATH}` } });
    expect(demo.code).not.toBe(0);
    expect(demo.stderr).toMatch(/npm run demo needs Node\.js 22\.15 or newer/);
    expect(demo.stderr + demo.stdout).not.toContain('ERR_UNKNOWN_FILE_EXTENSION');
  });
});

/** `x.y.z` of the Node at `path`, or undefined when it does not run. */
function spawnVersion(path: string): string | undefined {
  try {
    // Synchronous on purpose: it decides, while the file is collected, whether the real-Node test runs.
    return execFileSync(path, ['-p', 'process.versions.node'], { encoding: 'utf8', timeout: 10_000 }).trim() || undefined;
  } catch {
    return undefined;
  }
}
