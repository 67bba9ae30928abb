/**
 * Shared by the library tests (test/lib-*.test.ts): a real pino logger
 * writing into memory, and a broker fixture that deletes what it creates.
 *
 * The library writes records (version 2: one per message per side); the
 * tests read them the way the collector does: every line through
 * `checkHopRecord` (a record it refuses fails the test), expanded into hops,
 * each hop kept once (an `open` record and its complete one share hops).
 */
import type { Channel, ChannelModel, Options } from 'amqplib';
import pino, { type Logger } from 'pino';
import { checkHopRecord } from '../collector/hop-schema.ts';
import type { AnyHopRecord, HopKind, HopRecord } from '../src/index.ts';
import { connectBroker, uniqueName } from './helpers/broker.ts';

export interface LogLine {
  level: number;
  msg?: string;
  hop?: AnyHopRecord;
  [key: string]: unknown;
}

export interface Capture {
  logger: Logger;
  lines: LogLine[];
  /** The records as written, in order. */
  records(): AnyHopRecord[];
  /** Lines carrying a record, with their level. */
  recordLines(): LogLine[];
  /** Hops as the collector reads them from the records, each once, optionally of one kind. */
  hops(kind?: HopKind): HopRecord[];
  /** Hops of one message, optionally of one kind. */
  of(messageId: string, kind?: HopKind): HopRecord[];
  warnings(): LogLine[];
}

/** Every hop the records stand for, each once, as the collector would store them; throws on a record it refuses. */
export function hopsOf(lines: readonly Record<string, unknown>[]): HopRecord[] {
  const seen = new Set<string>();
  const out: HopRecord[] = [];
  for (const line of lines) {
    if (line.hop === undefined) continue;
    const r = checkHopRecord(line);
    if (!r.ok) throw new Error(`the collector refuses a record the library wrote: ${r.field} ${r.reason}: ${JSON.stringify(line)}`);
    for (const hop of r.hops) {
      const key = JSON.stringify(hop);
      if (seen.has(key)) continue;
      seen.add(key);
      out.push(hop);
    }
  }
  return out;
}

/** A real pino logger whose lines land in `lines`, parsed. */
export function capture(): Capture {
  const lines: LogLine[] = [];
  const logger = pino(
    { level: 'trace' },
    {
      write: (s: string) => {
        for (const line of s.split('\n')) if (line !== '') lines.push(JSON.parse(line) as LogLine);
      },
    },
  );
  const hops = (kind?: HopKind) => hopsOf(lines).filter((h) => kind === undefined || h.kind === kind);
  return {
    logger,
    lines,
    records: () => lines.filter((l) => l.hop !== undefined).map((l) => l.hop!),
    recordLines: () => lines.filter((l) => l.hop !== undefined),
    hops,
    of: (messageId, kind) => hops(kind).filter((h) => h.messageId === messageId),
    warnings: () => lines.filter((l) => l.level === 40 && l.hop === undefined),
  };
}

export interface Fixture {
  conn: ChannelModel;
  admin: Channel;
  queue(prefix: string, options?: Options.AssertQueue): Promise<string>;
  exchange(prefix: string, type: string, options?: Options.AssertExchange): Promise<string>;
  cleanup(): Promise<void>;
}

/** A raw amqplib connection for set-up and tear-down; everything it declares is deleted in cleanup(). */
export async function fixture(): Promise<Fixture> {
  const conn = await connectBroker();
  const admin = await conn.createChannel();
  const queues: string[] = [];
  const exchanges: string[] = [];
  return {
    conn,
    admin,
    async queue(prefix, options) {
      const name = uniqueName(prefix);
      await admin.assertQueue(name, { durable: false, ...options });
      queues.push(name);
      return name;
    },
    async exchange(prefix, type, options) {
      const name = uniqueName(prefix);
      await admin.assertExchange(name, type, { durable: false, ...options });
      exchanges.push(name);
      return name;
    },
    async cleanup() {
      const ch = await conn.createChannel();
      for (const q of queues) await ch.deleteQueue(q);
      for (const e of exchanges) await ch.deleteExchange(e);
      await conn.close();
    },
  };
}

export const delay = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
