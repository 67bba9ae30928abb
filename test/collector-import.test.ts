import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { nodeTooOld } from '../bin/check-node.js';
import type { ChainDetail } from '../collector/api-types.ts';
import { importFiles, type ImportProgress } from '../collector/import.ts';
import { DEFAULT_ENGINE_OPTIONS } from '../collector/chain-engine.ts';
import { SqliteStore } from '../collector/sqlite-store.ts';
import { getJson, makeHop, messageHops, startTestCollector } from './helpers/collector.ts';

const BIN = fileURLToPath(new URL('../bin/hoptrace.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'hoptrace-import-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Run the real `hoptrace` command; resolves with its exit code and output. */
function hoptrace(args: string[], opts: { until?: RegExp; signal?: NodeJS.Signals } = {}) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, HOPTRACE_TOKEN: '', HOPTRACE_DB: '' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
      if (opts.until?.test(stdout)) child.kill(opts.signal ?? 'SIGTERM');
    });
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const pinoLine = (hop: unknown, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ level: 30, time: Date.now(), pid: 42, hostname: 'box', msg: 'hop', hop, ...extra });

function logFile(correlationId: string) {
  const hops = messageHops({ correlationId });
  const lines = [
    'starting service...',
    pinoLine(hops[0]),
    JSON.stringify({ level: 30, msg: 'listening on 8080' }),
    '',
    pinoLine(hops[1]),
    '{"truncated": ',
    pinoLine({ ...hops[2], traceId: 'zz' }),
    pinoLine(hops[2]),
    pinoLine(hops[3]),
    JSON.stringify({ level: 50, msg: 'something else', err: { message: 'x' } }),
  ];
  return { hops, text: lines.join('\n') + '\n' };
}

describe('hoptrace import', () => {
  it('loads the hop lines of a pino log file and counts every other line', async () => {
    const correlationId = randomUUID();
    const { text } = logFile(correlationId);
    const file = join(dir, 'service.log');
    writeFileSync(file, text);
    const db = join(dir, 'import-1.db');
    // One record of the file is invalid: left out, and the exit code says so unless told otherwise.
    const run = await hoptrace(['import', '--db', db, file]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('1 invalid hop record was left out (reasons above); the 4 valid ones are stored. Pass --allow-invalid to accept that and exit 0.');
    expect(run.stderr).toContain('imported 4 hops (0 already stored) from 1 file, 10 lines');
    expect(run.stderr).toContain('ignored 4 lines (2 not JSON, 2 without a hop); 1 invalid hop records');
    expect(run.stderr).toContain(`${file}:7: field "hop.traceId" must be 32 lowercase hex characters`);

    // Importing again stores nothing twice.
    const again = await hoptrace(['import', '--allow-invalid', '--db', db, file]);
    expect(again.code).toBe(0);
    expect(again.stderr).toContain('imported 4 hops (4 already stored)');

    // A collector on the same file serves the chain.
    const c = await startTestCollector({ db });
    try {
      const chain = (await getJson(c.url, `/api/chains/${correlationId}`)).body as ChainDetail;
      expect(chain.hops.map((h) => h.kind)).toEqual(['send', 'receive', 'process', 'settle']);
    } finally {
      await c.close();
    }
  });

  it('reads gzipped logs and several files, in batches, reporting progress', async () => {
    const a = randomUUID();
    const b = randomUUID();
    const fileA = join(dir, 'a.log.gz');
    const fileB = join(dir, 'b.log');
    writeFileSync(fileA, gzipSync(logFile(a).text));
    // A bigger file: 3,000 hops in 750 chains.
    const many = Array.from({ length: 750 }, () => messageHops({ correlationId: randomUUID() })).flat();
    writeFileSync(fileB, logFile(b).text + many.map((h) => pinoLine(h)).join('\n'));
    const store = new SqliteStore({ path: join(dir, 'import-2.db'), engine: DEFAULT_ENGINE_OPTIONS });
    const progress: ImportProgress[] = [];
    try {
      const result = await importFiles(store, [fileA, fileB], { batchSize: 100, onProgress: (p) => progress.push(p) });
      expect(result).toMatchObject({ files: 2, hops: 3008, duplicates: 0, notJson: 4, withoutHop: 4, invalidHops: 2 });
      expect(result.invalidReasons).toHaveLength(2);
      expect(await store.stats()).toMatchObject({ hops: 3008, chains: 752 });
      const done = progress.filter((p) => p.done);
      expect(done.map((p) => p.file)).toEqual([fileA, fileB]);
      expect(done[1]).toMatchObject({ bytesRead: done[1].fileBytes, hops: 3008 });
    } finally {
      await store.close();
    }
  });

  it('a file without a single hop record imports nothing and exits 1, saying so', async () => {
    const file = join(dir, 'not-a-service-log.log');
    writeFileSync(file, 'just text\n{"level":30,"msg":"no hop here"}\n');
    const run = await hoptrace(['import', '--allow-invalid', '--db', join(dir, 'nothing.db'), file]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('nothing was imported: none of the 2 lines holds a hop record (1 not JSON, 1 JSON without a "hop" field)');
  });

  it('--db in a missing directory: one missing level is created and said so, more needs --create-dirs, a path that cannot be made is a clear error', async () => {
    const file = join(dir, 'service-dirs.log');
    writeFileSync(file, logFile(randomUUID()).text);
    const oneLevel = join(dir, `one-${randomUUID()}`, 'hops.db');
    const one = await hoptrace(['import', '--allow-invalid', '--db', oneLevel, file]);
    expect(one.code).toBe(0);
    expect(one.stderr).toContain(`created the directory ${dirname(oneLevel)} for the database`);
    const deep = join(dir, `deep-${randomUUID()}`, 'a', 'b', 'hops.db');
    const refused = await hoptrace(['import', '--allow-invalid', '--db', deep, file]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/the directory .*a[/\\]b for the database does not exist .*pass --create-dirs/);
    expect(refused.stderr).not.toMatch(/\n\s+at /);
    const created = await hoptrace(['import', '--allow-invalid', '--create-dirs', '--db', deep, file]);
    expect(created.code).toBe(0);
    // A directory under a file cannot be made, whoever runs it: an error that says what to do, no stack.
    const underFile = join(file, 'x', 'hops.db');
    const impossible = await hoptrace(['import', '--create-dirs', '--db', underFile, file]);
    expect(impossible.code).toBe(1);
    expect(impossible.stderr).toMatch(/cannot create the directory .* for the database: .*; choose a --db path in a directory you can write/);
    expect(impossible.stderr).not.toMatch(/\n\s+at /);
  });

  it('a file that cannot be read is a clear error, exit code 1', async () => {
    const run = await hoptrace(['import', '--db', join(dir, 'x.db'), join(dir, 'missing.log')]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/cannot read .*missing\.log.*HOPTRACE_ERR_IMPORT_FILE/);
  });
});

describe('hoptrace command line', () => {
  it('--help lists every option with its default', async () => {
    const run = await hoptrace(['--help']);
    expect(run.code).toBe(0);
    for (const flag of ['--port', '--host', '--db', '--token', '--jaeger-url', '--lost-after-ms', '--retention-max-age-ms']) {
      expect(run.stdout).toContain(flag);
    }
    expect(run.stdout).toContain('(default 4400)');
  });

  it('on a Node older than 22.15 the command and the demo say which version they need and how to get it', () => {
    expect(nodeTooOld('20.20.2', 'npm run demo')).toMatch(/^npm run demo needs Node\.js 22\.15 or newer .*this is v20\.20\.2\./);
    expect(nodeTooOld('20.20.2', 'hoptrace')).toContain('npm install --prefix "$HOME/.node24" node@24');
    expect(nodeTooOld('22.14.9', 'hoptrace')).toBeDefined();
    expect(nodeTooOld('22.15.0', 'hoptrace')).toBeUndefined();
    expect(nodeTooOld(process.versions.node, 'hoptrace')).toBeUndefined();
  });

  it('a bad flag or command is an error that says what is wrong, exit code 2', async () => {
    const flag = await hoptrace(['collector', '--prot', '1']);
    expect(flag.code).toBe(2);
    expect(flag.stderr).toContain("Unknown option '--prot'");
    const port = await hoptrace(['collector', '--port', 'abc']);
    expect(port.code).toBe(2);
    expect(port.stderr).toContain('--port must be a non-negative integer, got "abc"');
    const cmd = await hoptrace(['colector']);
    expect(cmd.code).toBe(2);
    expect(cmd.stderr).toContain('unknown command "colector"');
    expect((await hoptrace(['import'])).stderr).toContain('at least one FILE');
  });

  it('hoptrace collector serves until SIGTERM, then closes cleanly', async () => {
    const db = join(dir, 'cli.db');
    const hop = makeHop();
    let checked = false;
    const run = await new Promise<{ code: number | null; stdout: string }>((resolve, reject) => {
      const child = spawn(process.execPath, [BIN, 'collector', '--port', '0', '--db', db], {
        env: { ...process.env, HOPTRACE_TOKEN: '' },
      });
      let stdout = '';
      child.stdout.on('data', async (d) => {
        stdout += d;
        const m = /"url":"(http:[^"]+)"/.exec(stdout);
        if (m && !checked) {
          checked = true;
          const res = await fetch(`${m[1]}/v1/hops`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify([hop]),
          });
          expect(res.status).toBe(202);
          child.kill('SIGTERM');
        }
      });
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout }));
    });
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('hoptrace collector closed');
    const store = new SqliteStore({ path: db, engine: DEFAULT_ENGINE_OPTIONS });
    try {
      expect((await store.chainHops(hop.correlationId)).length).toBe(1);
    } finally {
      await store.close();
    }
  });
});
