/**
 * Shared by the library tests (test/lib-*.test.ts): a real pino logger
 * writing into memory, and a broker fixture that deletes what it creates.
 */
import type { Channel, ChannelModel, Options } from 'amqplib';
import pino, { type Logger } from 'pino';
import type { HopKind, HopRecord } from '../src/index.ts';
import { connectBroker, uniqueName } from './helpers/broker.ts';

export interface LogLine {
  level: number;
  msg: string;
  hop?: HopRecord;
  [key: string]: unknown;
}

export interface Capture {
  logger: Logger;
  lines: LogLine[];
  hops(kind?: HopKind): HopRecord[];
  /** Hops of one message, optionally of one kind. */
  of(messageId: string, kind?: HopKind): HopRecord[];
  warnings(): LogLine[];
}

/** A real pino logger whose lines land in `lines`, parsed. */
export function capture(): Capture {
  const lines: LogLine[] = [];
  const logger = pino({ level: 'trace' }, { write: (s: string) => void lines.push(JSON.parse(s) as LogLine) });
  const hops = (kind?: HopKind) =>
    lines.filter((l) => l.hop !== undefined && (kind === undefined || l.hop.kind === kind)).map((l) => l.hop!);
  return {
    logger,
    lines,
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
