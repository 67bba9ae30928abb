/**
 * A real collector for tests: port 0 (a free port), a SQLite file in a fresh
 * temp directory, a silent logger, no retention, no token unless you pass one.
 *
 * @example
 * import { startTestCollector, postHops, getJson, makeHop } from './helpers/collector.ts';
 *
 * const collector = await startTestCollector();           // or startTestCollector({ token: 's3cret' })
 * try {
 *   await postHops(collector.url, [makeHop({ kind: 'send' })]);
 *   const list = await getJson(collector.url, '/api/chains');
 * } finally {
 *   await collector.stop();                                // closes it and deletes the temp directory
 * }
 *
 * Restart on the same file: `const again = await collector.restart()` closes this
 * one and starts a new one on the same database (call `again.stop()` at the end).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { HopRecord } from '../../src/contract/hop.ts';
import { startCollector, type CollectorOptions, type RunningCollector } from '../../collector/server.ts';

export interface TestCollector extends RunningCollector {
  /** The SQLite file this collector uses. */
  dbPath: string;
  /** The temp directory holding it (deleted by `stop()`). */
  dir: string;
  /** Close the collector and start a new one on the same database file (same options, new port). */
  restart(overrides?: CollectorOptions): Promise<TestCollector>;
  /** Close the collector and delete its temp directory. Safe to call twice. */
  stop(): Promise<void>;
}

/**
 * Start a collector for a test. Every {@link CollectorOptions} may be overridden;
 * the defaults differ from production: `port: 0`, `db` in a temp dir, `token: ''`
 * (no auth, whatever HOPTRACE_TOKEN says), `retention: false`, silent logger.
 */
export async function startTestCollector(options: CollectorOptions = {}): Promise<TestCollector> {
  const dir = mkdtempSync(join(tmpdir(), 'hoptrace-test-'));
  return start(dir, { db: join(dir, 'hoptrace.db'), ...options });
}

async function start(dir: string, options: CollectorOptions): Promise<TestCollector> {
  const running = await startCollector({
    port: 0,
    token: '',
    retention: false,
    logger: pino({ level: 'silent' }),
    ...options,
  });
  let stopped = false;
  let handedOver = false;
  const dbPath = options.db as string;
  return {
    ...running,
    dbPath,
    dir,
    async restart(overrides: CollectorOptions = {}) {
      await running.close();
      // The directory is the new collector's now: its stop() removes it, this one's must not.
      handedOver = true;
      return start(dir, { ...options, port: 0, ...overrides, db: dbPath });
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await running.close();
      if (!handedOver) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** POST hop records (or pino lines) as NDJSON; returns status and parsed body. */
export async function postHops(
  url: string,
  records: readonly unknown[],
  init: { token?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: any }> {
  const res = await fetch(`${url}/v1/hops`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-ndjson',
      ...(init.token ? { authorization: `Bearer ${init.token}` } : {}),
      ...init.headers,
    },
    body: records.map((r) => JSON.stringify(r)).join('\n') + '\n',
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

/** GET a JSON resource; returns status and parsed body. */
export async function getJson(url: string, path: string): Promise<{ status: number; body: any }> {
  const res = await fetch(url + path);
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

/** A random W3C trace id (32 hex) / span id (16 hex). */
export const traceId = (): string => randomBytes(16).toString('hex');
export const spanId = (): string => randomBytes(8).toString('hex');

/** A valid hop record with fresh ids; override any field. */
export function makeHop(overrides: Partial<HopRecord> = {}): HopRecord {
  return {
    v: 1,
    kind: 'send',
    ts: Date.now(),
    service: 'orders',
    instance: 'test/1',
    traceId: traceId(),
    spanId: spanId(),
    correlationId: randomUUID(),
    messageId: randomUUID(),
    exchange: 'orders',
    routingKey: 'order.created',
    ...overrides,
  };
}

/**
 * The hops of one message going through one consumer: send → receive →
 * process → settle (ack), 1 ms apart from `ts`. Override fields per message.
 */
export function messageHops(
  m: { correlationId: string; messageId?: string; causationId?: string; traceId?: string; ts?: number },
  route: { publisher?: string; consumer?: string; exchange?: string; routingKey?: string; queue?: string } = {},
): HopRecord[] {
  const messageId = m.messageId ?? randomUUID();
  const trace = m.traceId ?? traceId();
  const ts = m.ts ?? Date.now();
  const base = {
    v: 1 as const,
    instance: 'test/1',
    traceId: trace,
    correlationId: m.correlationId,
    messageId,
    exchange: route.exchange ?? 'orders',
    routingKey: route.routingKey ?? 'order.created',
    ...(m.causationId ? { causationId: m.causationId } : {}),
  };
  const publisher = route.publisher ?? 'orders';
  const consumer = route.consumer ?? 'billing';
  const queue = route.queue ?? 'billing.orders';
  const sendSpan = spanId();
  return [
    { ...base, kind: 'send', ts, service: publisher, spanId: sendSpan },
    { ...base, kind: 'receive', ts: ts + 1, service: consumer, spanId: spanId(), parentSpanId: sendSpan, queue, deliveryTag: 1, redelivered: false },
    { ...base, kind: 'process', ts: ts + 2, service: consumer, spanId: spanId(), parentSpanId: sendSpan, queue, outcome: 'ok', durationMs: 1 },
    { ...base, kind: 'settle', ts: ts + 3, service: consumer, spanId: spanId(), parentSpanId: sendSpan, queue, outcome: 'ack', requeue: false },
  ];
}
