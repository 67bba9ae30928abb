/**
 * Progress for long work goes to stderr, so stdout carries only the tables.
 */
const started = Date.now();

export function progress(message: string): void {
  const s = ((Date.now() - started) / 1000).toFixed(1).padStart(6);
  process.stderr.write(`[bench ${s}s] ${message}\n`);
}

/** A rate-limited progress reporter for loops: at most one line every `everyMs`. */
export function progressEvery(everyMs = 2000): (message: () => string) => void {
  let last = 0;
  return (message) => {
    const now = Date.now();
    if (now - last >= everyMs) {
      last = now;
      progress(message());
    }
  };
}
