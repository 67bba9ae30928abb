/**
 * `npm run demo` / `node demo/main.ts`: the command line around runDemo.
 * Ctrl-C (or SIGTERM) stops gracefully; a second one exits at once.
 */
import { runDemo, DemoError } from './run.ts';
import { HELP, parseDemoArgs, UsageError } from './options.ts';

async function main(argv: string[]): Promise<number> {
  let options;
  try {
    options = parseDemoArgs(argv);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`${err.message}\n\n${HELP}`);
      return 2;
    }
    throw err;
  }
  if (!options) {
    process.stdout.write(HELP);
    return 0;
  }

  const stop = new AbortController();
  const onSignal = (name: string): void => {
    if (stop.signal.aborted) {
      process.stderr.write(`\n${name} again: exiting without cleaning up.\n`);
      process.exit(130);
    }
    process.stderr.write(`\n${name}: stopping…\n`);
    stop.abort();
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));

  try {
    // A terminal can type commands ("learn"); a pipe or a container's closed stdin cannot.
    const input = process.stdin.isTTY ? process.stdin : undefined;
    const result = await runDemo(options, { out: process.stdout, signal: stop.signal, input });
    input?.pause();
    return result.exitCode;
  } catch (err) {
    if (err instanceof DemoError) {
      process.stderr.write(`\n${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

process.exitCode = await main(process.argv.slice(2));
// Everything was closed in order; a handle someone else left open must not
// keep a finished demo from exiting.
setTimeout(() => process.exit(), 5_000).unref();
