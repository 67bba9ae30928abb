/**
 * A collector in a process of its own, started as a user starts one
 * (`hoptrace collector --port 0 …`), for tests where processes matter:
 * several collectors on one database, one of them killed.
 *
 * @example
 * const a = await spawnCollector(['--store', url]);
 * await postHops(a.url, hops);
 * a.kill('SIGKILL');                         // or: await a.stop() (SIGTERM, waits for exit)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../bin/hoptrace.js', import.meta.url));

export interface CollectorChild {
  url: string;
  pid: number;
  child: ChildProcess;
  /** What it printed so far (stdout and stderr). */
  output(): string;
  kill(signal: NodeJS.Signals): void;
  /** SIGTERM and wait for the exit (SIGKILL after 10 s). Safe to call after it died. */
  stop(): Promise<void>;
}

/** Start `hoptrace collector --port 0 --host 127.0.0.1 ARGS`; resolves once it logged its URL. */
export async function spawnCollector(args: readonly string[], env: Record<string, string> = {}): Promise<CollectorChild> {
  const child = spawn(process.execPath, [BIN, 'collector', '--port', '0', '--host', '127.0.0.1', ...args], {
    env: { ...process.env, HOPTRACE_TOKEN: '', HOPTRACE_DB: '', HOPTRACE_STORE: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the collector did not start within 20 s:\n${output.slice(-2000)}`)), 20_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const m = /"url":"(http:\/\/[^"]+)".*hoptrace collector listening/.exec(output);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`the collector exited (${signal ?? code}) before listening:\n${output.slice(-2000)}`));
    });
  });
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  return {
    url,
    pid: child.pid!,
    child,
    output: () => output,
    kill: (signal) => {
      child.kill(signal);
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const force = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(force);
      }
    },
  };
}
