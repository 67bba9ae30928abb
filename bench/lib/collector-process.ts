/**
 * The collector in a child process of its own (collector-main.ts: the same
 * `startCollector` the `hoptrace collector` command runs): its CPU and memory
 * are then its own, and we read them from outside through /proc.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'node:http';
import { COLLECTOR_NODE_FLAGS } from '../../bin/node-flags.js';
import { profileFlags } from './child.ts';

const MAIN = fileURLToPath(new URL('./collector-main.ts', import.meta.url));

export interface CollectorProcess {
  url: string;
  port: number;
  pid: number;
  child: ChildProcess;
  /** Hops the collector holds, from `GET /healthz`. */
  hopCount(): Promise<number>;
  /** Resident memory now and at its peak, from /proc/<pid>/status (bytes). */
  memory(): { rss: number; peakRss: number };
  /** CPU time the process has used so far (user + system, ms), from /proc/<pid>/stat. */
  cpuMs(): number;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

export interface CollectorProcessOptions {
  db: string;
  /** SQLite durability. @default 'full' (the collector's default) */
  durability?: 'full' | 'normal';
  /** Where the collector's own output goes. @default the db path + `.log` */
  logFile?: string;
  execArgv?: string[];
  /** How long to wait for /healthz. @default 60 s (opening a big database can take a while) */
  startTimeoutMs?: number;
}

export async function startCollectorProcess(options: CollectorProcessOptions): Promise<CollectorProcess> {
  const port = await freePort();
  const log = createWriteStream(options.logFile ?? `${options.db}.log`);
  await new Promise((r) => log.once('open', r));
  const child = spawn(
    process.execPath,
    // The flags `hoptrace collector` runs with (bin/node-flags.js).
    [...COLLECTOR_NODE_FLAGS, ...profileFlags(), ...(options.execArgv ?? []), MAIN, String(port), options.db, options.durability ?? 'full'],
    { stdio: ['ignore', log, log] },
  );
  let exited: string | undefined;
  child.once('exit', (code, signal) => {
    exited = `collector exited (${signal ?? code}); see ${options.logFile ?? `${options.db}.log`}`;
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + (options.startTimeoutMs ?? 60_000);
  for (;;) {
    if (exited) {
      const tail = readFileSync(options.logFile ?? `${options.db}.log`, 'utf8').split('\n').slice(-15).join('\n');
      throw new Error(`${exited}\n${tail}`);
    }
    if ((await getJson(`${url}/healthz`).catch(() => undefined)) !== undefined) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the collector did not answer /healthz within ${options.startTimeoutMs ?? 60_000} ms`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const pid = child.pid!;
  return {
    url,
    port,
    pid,
    child,
    async hopCount() {
      const health = (await getJson(`${url}/healthz`)) as { hops?: number };
      return health.hops ?? NaN;
    },
    memory() {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
      return { rss: kb('VmRSS'), peakRss: kb('VmHWM') };
    },
    cpuMs() {
      // Fields 14 and 15 of /proc/<pid>/stat (after the parenthesised name): utime, stime in clock ticks.
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const done = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await done;
      clearTimeout(timer);
      log.end();
    },
  };
}

const agent = new Agent({ keepAlive: true, maxSockets: 64 });

/** GET a JSON document; rejects on a non-2xx status. */
export function getJson(url: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        if ((res.statusCode ?? 0) >= 300) return reject(new Error(`GET ${url}: ${res.statusCode} ${text.slice(0, 300)}`));
        try {
          resolve(JSON.parse(text));
        } catch (err) {
          reject(err);
        }
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}
