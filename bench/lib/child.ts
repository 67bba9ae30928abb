/**
 * One child process per measurement. The OpenTelemetry SDK registers itself
 * globally and the official instrumentation patches amqplib globally, so
 * variants that share a process contaminate each other; a fresh process per
 * variant per round keeps them apart and lets the rounds interleave.
 */
import { fork } from 'node:child_process';
import { mkdirSync } from 'node:fs';

export interface WorkerOptions {
  /** Kill the child and fail after this long. */
  timeoutMs?: number;
  /** Extra Node flags (the profiling flags of {@link profileFlags} are added to every child). */
  execArgv?: string[];
  env?: NodeJS.ProcessEnv;
}

/**
 * Flags to profile the children: `BENCH_CPU_PROF=DIR` (V8 CPU profiles) and
 * `BENCH_HEAP_PROF=DIR` (sampled allocation profiles). Read them with
 * lib/profile-top.ts or Chrome DevTools. `BENCH_IMPORT=FILE` preloads a
 * module into every child (a counter of syscalls, say).
 */
export function profileFlags(): string[] {
  const flags: string[] = [];
  const cpu = process.env.BENCH_CPU_PROF;
  if (cpu) {
    mkdirSync(cpu, { recursive: true });
    flags.push('--cpu-prof', '--cpu-prof-dir', cpu);
  }
  const heap = process.env.BENCH_HEAP_PROF;
  if (heap) {
    mkdirSync(heap, { recursive: true });
    flags.push('--heap-prof', '--heap-prof-dir', heap, '--heap-prof-interval', '32768');
  }
  return flags;
}

/** Run `file` in a child process, hand it `input`, and resolve with what it sends back. */
export function runWorker<I, O>(file: string | URL, input: I, options: WorkerOptions = {}): Promise<O> {
  return new Promise((resolve, reject) => {
    const child = fork(file, [], {
      execArgv: [...profileFlags(), ...(options.execArgv ?? []), ...(process.env.BENCH_IMPORT ? ['--import', process.env.BENCH_IMPORT] : [])],
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'advanced',
    });
    let result: { ok: true; value: O } | { ok: false; error: string } | undefined;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${String(file)} did not finish within ${options.timeoutMs} ms`));
    }, options.timeoutMs ?? 300_000);
    child.on('message', (m) => {
      result = m as typeof result;
    });
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (result?.ok) resolve(result.value);
      else if (result) reject(new Error(`${String(file)}: ${result.error}`));
      else reject(new Error(`${String(file)} exited (${signal ?? code}) without a result`));
    });
    child.send({ input });
  });
}

/**
 * The child's side: wait for the input, run `main`, send the result back and
 * exit (after a short grace so profilers and pino can flush).
 */
export function workerMain<I, O>(main: (input: I) => Promise<O>): void {
  process.once('message', async (m: { input: I }) => {
    let message: { ok: true; value: O } | { ok: false; error: string };
    try {
      message = { ok: true, value: await main(m.input) };
    } catch (err) {
      message = { ok: false, error: (err as Error)?.stack ?? String(err) };
    }
    process.send!(message, () => {
      process.disconnect?.();
      // Exit explicitly in case a handle (a transport worker, a timer) would
      // keep the child alive; a moment first, so pending writes land.
      setTimeout(() => process.exit(0), 50);
    });
  });
}
