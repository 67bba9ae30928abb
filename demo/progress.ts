/**
 * The demo's one progress line: rewritten in place on a terminal, printed as
 * a plain line every few seconds when the output is a file or a pipe.
 */
import type { Writable } from 'node:stream';
import { STATUS_SEVERITY, type ChainStatus } from '../collector/api-types.ts';

export interface ProgressStats {
  flows: number;
  flowErrors: number;
  hopsLogged: number;
  /** Hops the collector has stored since the demo started; `undefined` when it cannot be reached. */
  hopsStored: number | undefined;
  chains: Map<ChainStatus, number>;
  uiUrl: string;
}

/** `ok` first, then the problems from most to least severe. */
export const DISPLAY_ORDER: ChainStatus[] = ['ok', 'in-flight', ...STATUS_SEVERITY.filter((s) => s !== 'ok' && s !== 'in-flight')];

/** `ok 4, dead-lettered 1, failed 2`: the statuses present, in display order. */
export function formatStatusCounts(counts: Map<ChainStatus, number>): string {
  return DISPLAY_ORDER.filter((status) => counts.get(status))
    .map((status) => `${status} ${counts.get(status)}`)
    .join(', ');
}

export function formatProgress(s: ProgressStats): string {
  const chains = formatStatusCounts(s.chains);
  const stored = s.hopsStored === undefined ? 'collector unreachable' : `${s.hopsStored} stored`;
  return [
    `flows ${s.flows}${s.flowErrors ? ` (${s.flowErrors} timed out)` : ''}`,
    `hops ${s.hopsLogged} shipped, ${stored}`,
    `chains: ${chains || 'none yet'}`,
    s.uiUrl,
  ].join(' │ ');
}

export class ProgressLine {
  readonly #out: Writable & { isTTY?: boolean; columns?: number };
  readonly #tty: boolean;
  #last = '';
  #shown = '';
  #lastPrintedAt = 0;
  #open = false;

  constructor(out: Writable & { isTTY?: boolean; columns?: number }, tty = out.isTTY === true) {
    this.#out = out;
    this.#tty = tty;
  }

  /** Rewrite the line (terminal) or print it if `plainEveryMs` passed since the last one (pipe). */
  update(line: string, plainEveryMs = 5_000): void {
    if (this.#tty) {
      const width = this.#out.columns ?? 120;
      // A line longer than the terminal wraps, and `\r` would then only
      // rewrite its last row.
      const fitted = line.length >= width ? `${line.slice(0, width - 2)}…` : line;
      this.#out.write(`\r\x1b[K${fitted}`);
      this.#shown = fitted;
      this.#open = true;
    } else if (line !== this.#last && Date.now() - this.#lastPrintedAt >= plainEveryMs) {
      this.#out.write(`${line}\n`);
      this.#lastPrintedAt = Date.now();
    }
    this.#last = line;
  }

  /** Print a message on its own line, keeping the progress line below it. */
  log(message: string): void {
    if (this.#tty && this.#open) this.#out.write('\r\x1b[K');
    this.#out.write(`${message}\n`);
    if (this.#tty && this.#open) this.#out.write(this.#shown);
  }

  /** End the progress line so what follows starts on a fresh one. */
  done(): void {
    if (this.#tty && this.#open) this.#out.write('\n');
    this.#open = false;
  }
}
