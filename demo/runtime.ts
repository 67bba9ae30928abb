/**
 * What every demo service is handed: the names, a way to connect as itself
 * (its own instrumented connection, so the UI gets a lane per service), and
 * a tracker the flows use to know when a message they started has arrived
 * where it was going.
 */
import type { ChannelModel } from 'amqplib';
import type { DemoNames } from './topology.ts';

export interface ServiceContext {
  names: DemoNames;
  /** Open a hoptrace-instrumented connection for `serviceName`; closed by the demo on shutdown. */
  connect(serviceName: string): Promise<ChannelModel>;
  tracker: Tracker;
}

/**
 * Named one-shot signals between a flow and the consumers at its far end.
 * A signal may arrive before anyone waits for it; it is kept until awaited.
 */
export class Tracker {
  readonly #entries = new Map<string, { promise: Promise<void>; resolve: () => void }>();

  #entry(key: string): { promise: Promise<void>; resolve: () => void } {
    let entry = this.#entries.get(key);
    if (!entry) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      entry = { promise, resolve };
      this.#entries.set(key, entry);
    }
    return entry;
  }

  /** Mark `key` as reached. */
  signal(key: string): void {
    this.#entry(key).resolve();
  }

  /** Resolve when `key` is signalled; reject with a message naming it after `timeoutMs`. */
  async wait(key: string, timeoutMs: number): Promise<void> {
    const entry = this.#entry(key);
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        entry.promise,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${key}`)), timeoutMs);
          // A flow still waiting when the demo stops must not hold the process open.
          timer.unref();
        }),
      ]);
    } finally {
      clearTimeout(timer);
      this.#entries.delete(key);
    }
  }
}

const expectedFailures = new WeakSet<object>();

/**
 * Rethrow a handler's error so hoptrace records it on the `process` hop.
 * hoptrace passes a rejected handler promise on untouched, and amqplib does
 * not handle it, so it surfaces as an unhandled rejection: runDemo's
 * listener recognises the ones thrown through here and lets them pass,
 * where a real service's top-level error handler would log them.
 */
export function rethrow(err: unknown): never {
  if (err !== null && typeof err === 'object') expectedFailures.add(err);
  throw err;
}

/** True for an error a demo handler failed with on purpose (see {@link rethrow}). */
export function isExpectedFailure(err: unknown): boolean {
  return err !== null && typeof err === 'object' && expectedFailures.has(err);
}

/** JSON body of a demo message. */
export function json(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value));
}

/** Parse a demo message body; a body that is not JSON comes back as its text. */
export function parse<T>(content: Buffer): T {
  const text = content.toString('utf8');
  try {
    return JSON.parse(text) as T;
  } catch {
    return text as T;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A deadline to race against: resolves after `ms` without keeping the process alive. */
export function deadline(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/** A random integer in [min, max]. */
export function between(min: number, max: number): number {
  return min + Math.floor(Math.random() * (max - min + 1));
}

/** How long a flow waits for its far end before calling the flow failed. */
export const FLOW_TIMEOUT_MS = 15_000;
