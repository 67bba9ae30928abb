/**
 * The records the library writes (version 2), end to end: through the real
 * broker into a real log file, read back by the collector (`checkHopRecord`,
 * `hoptrace import`, `POST /v1/hops`) as complete chains; how lines reach the
 * logger's destination (batched, level, instance, fallback); the `open`
 * record of a side still unfinished after the grace period; and what a crash
 * inside the grace window can lose.
 */
import { fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ConsumeMessage } from 'amqplib';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChainDetail } from '../collector/api-types.ts';
import { DEFAULT_ENGINE_OPTIONS } from '../collector/chain-engine.ts';
import { checkHopRecord } from '../collector/hop-schema.ts';
import { importFiles } from '../collector/import.ts';
import { SqliteStore } from '../collector/sqlite-store.ts';
import type { AnyHopRecord, ConsumeRecordV2, PublishRecordV2 } from '../src/contract/hop.ts';
import { connect, instrument } from '../src/index.ts';
import { BATCH_MS } from '../src/internal/hop-writer.ts';
import { AMQP_URL, waitFor } from './helpers/broker.ts';
import { getJson, messageHops, postHops, startTestCollector } from './helpers/collector.ts';
import { type Fixture, capture, delay, fixture, hopsOf } from './lib-capture.ts';

const dir = mkdtempSync(join(tmpdir(), 'hoptrace-records-'));
let fx: Fixture;
beforeAll(async () => {
  fx = await fixture();
});
afterAll(async () => {
  await fx.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

interface Line {
  level: number;
  time: number;
  pid?: number;
  hostname?: string;
  hop?: AnyHopRecord;
  [key: string]: unknown;
}

const readLines = (file: string): Line[] =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Line);

/** A logger writing hop lines to a file, synchronously, as the README recommends. */
function fileLogger(name: string): { file: string; logger: pino.Logger } {
  const file = join(dir, `${name}-${randomUUID().slice(0, 8)}.log`);
  return { file, logger: pino(pino.destination({ dest: file, sync: true })) };
}

async function storeWith(files: string[]): Promise<{ store: SqliteStore; db: string }> {
  const db = join(dir, `${randomUUID().slice(0, 8)}.db`);
  const store = new SqliteStore({ path: db, engine: DEFAULT_ENGINE_OPTIONS });
  const result = await importFiles(store, files);
  expect(result.invalidHops, JSON.stringify(result.invalidReasons)).toBe(0);
  return { store, db };
}

/** `service:kind` of a message's hops, in the chain's causal order; a handler that acks before returning has its settle before its process. */
const kindsOf = (chain: ChainDetail, messageId: string): string[] =>
  chain.hops.filter((h) => h.messageId === messageId).map((h) => `${h.service}:${h.kind}`);

async function chainFrom(db: string, correlationId: string): Promise<ChainDetail> {
  const collector = await startTestCollector({ db });
  try {
    const got = await waitFor(async () => {
      const r = await getJson(collector.url, `/api/chains/${encodeURIComponent(correlationId)}`);
      return r.status === 200 ? (r.body as ChainDetail) : undefined;
    }, 'the chain');
    return got;
  } finally {
    await collector.close();
  }
}

describe('version-2 records, end to end', () => {
  it('a round trip writes one publish and one consume record per message, and hoptrace import rebuilds the complete chain', async () => {
    const producerLog = fileLogger('producer');
    const consumerLog = fileLogger('consumer');
    const q = await fx.queue('lib.records.orders');
    const outQ = await fx.queue('lib.records.invoices');
    const producer = await connect(AMQP_URL, { serviceName: 'orders', logger: producerLog.logger });
    const consumer = await connect(AMQP_URL, { serviceName: 'billing', logger: consumerLog.logger });
    const pub = await producer.createConfirmChannel();
    const sub = await consumer.createConfirmChannel();
    let handled = 0;
    await sub.consume(q, (m: ConsumeMessage | null) => {
      // What the handler publishes is caused by the message it handles.
      sub.sendToQueue(outQ, Buffer.from('invoice'), { type: 'invoice.requested' });
      sub.ack(m!);
      handled++;
    });
    await sub.consume(outQ, async (m: ConsumeMessage | null) => {
      await delay(1);
      sub.ack(m!);
      handled++;
    });
    pub.sendToQueue(q, Buffer.from('{"order":1}'), { contentType: 'application/json', type: 'order.placed', persistent: true });
    await pub.waitForConfirms();
    await waitFor(() => handled === 2, 'both handlers');
    await sub.waitForConfirms();
    await producer.close();
    await consumer.close();

    const lines = [...readLines(producerLog.file), ...readLines(consumerLog.file)];
    // Every line is a pino line with the record under `hop`, and the collector's parser accepts it.
    for (const line of lines) {
      expect(typeof line.time).toBe('number');
      expect(line.level).toBe(30);
      expect(checkHopRecord(line).ok).toBe(true);
    }
    const records = lines.map((l) => l.hop!);
    expect(records.map((r) => `${r.service}:${r.kind}`).sort()).toEqual(['billing:consume', 'billing:consume', 'billing:publish', 'orders:publish']);
    // The lines say hostname and pid, so the records leave out `instance`.
    expect(records.every((r) => r.instance === undefined)).toBe(true);
    const root = records.find((r) => r.service === 'orders') as PublishRecordV2;
    expect(root).toMatchObject({ v: 2, routingKey: q, contentType: 'application/json', messageType: 'order.placed', properties: { deliveryMode: 2 } });
    expect(root.confirmMs).toBeGreaterThanOrEqual(0);

    const { store, db } = await storeWith([producerLog.file, consumerLog.file]);
    await store.close();
    const chain = await chainFrom(db, root.messageId);
    expect(chain.status).toBe('ok');
    const invoice = chain.messages.find((m) => m.messageId !== root.messageId)!;
    expect(invoice.parentMessageId).toBe(root.messageId);
    // Every hop of both messages; send first, receive before the handler's end and the settle (a confirm and a
    // receive race, and a handler that acks before it returns has its settle first: the collector orders by what happened).
    for (const [id, service] of [
      [root.messageId, 'orders'],
      [invoice.messageId, 'billing'],
    ] as const) {
      const kinds = kindsOf(chain, id);
      expect([...kinds].sort()).toEqual([`${service}:confirm`, `${service}:send`, 'billing:process', 'billing:receive', 'billing:settle'].sort());
      expect(kinds[0]).toBe(`${service}:send`);
      expect(kinds.indexOf('billing:receive')).toBeLessThan(Math.min(kinds.indexOf('billing:process'), kinds.indexOf('billing:settle')));
    }
    expect(chain.hops.every((h) => h.instance === `${hostname()}/${process.pid}`)).toBe(true);
  });

  it('a chain mixes version-1 hop lines (an older service) and version-2 records (this library) freely', async () => {
    const correlationId = randomUUID();
    const legacyId = randomUUID();
    // An older service's log: one line per hop, version 1.
    const legacyFile = join(dir, 'legacy.log');
    writeFileSync(
      legacyFile,
      messageHops({ correlationId, messageId: legacyId }, { publisher: 'legacy', consumer: 'legacy-worker' })
        .map((hop) => JSON.stringify({ level: 30, time: hop.ts, pid: 7, hostname: 'old', hop }))
        .join('\n') + '\n',
    );
    // Its handler's follow-up, published through the library (as if it carried the ids on).
    const log = fileLogger('mixed');
    const q = await fx.queue('lib.records.mixed');
    const ch = instrument(await fx.conn.createChannel(), { serviceName: 'modern', logger: log.logger });
    await ch.consume(q, (m) => ch.ack(m!));
    ch.sendToQueue(q, Buffer.from('follow-up'), { headers: { 'x-correlation-id': correlationId, 'x-causation-id': legacyId } });
    await waitFor(() => readLines(log.file).some((l) => l.hop?.kind === 'consume'), 'the consume record');
    await ch.close();

    const { store, db } = await storeWith([legacyFile, log.file]);
    await store.close();
    const chain = await chainFrom(db, correlationId);
    expect(chain.messages).toHaveLength(2);
    const followUp = chain.messages.find((m) => m.messageId !== legacyId)!;
    expect(followUp.parentMessageId).toBe(legacyId);
    expect(kindsOf(chain, legacyId)).toEqual(['legacy:send', 'legacy-worker:receive', 'legacy-worker:process', 'legacy-worker:settle']);
    expect(kindsOf(chain, followUp.messageId).slice(0, 2)).toEqual(['modern:send', 'modern:receive']);
    expect(kindsOf(chain, followUp.messageId).slice(2).sort()).toEqual(['modern:process', 'modern:settle']);
    // The legacy message comes before what its handler caused.
    expect(chain.hops.findIndex((h) => h.messageId === followUp.messageId)).toBeGreaterThan(chain.hops.findIndex((h) => h.messageId === legacyId));
    expect(chain.status).toBe('ok');
  });
});

describe('how lines reach the logger', () => {
  it("records to one of pino's destinations reach it in one write within the batch interval, not one write per line or per turn", async () => {
    const writes: string[] = [];
    // A stream with flushSync is batched like pino.destination; this one only keeps what it is given.
    const logger = pino({ level: 'info' }, { write: (s: string) => void writes.push(s), flushSync: () => {} } as never);
    const q = await fx.queue('lib.records.batch');
    const ch = instrument(await fx.conn.createChannel(), { logger });
    for (let i = 0; i < 3; i++) ch.sendToQueue(q, Buffer.from(String(i)));
    expect(writes).toHaveLength(0);
    await new Promise((resolve) => setImmediate(resolve));
    // A turn later the batch is still open: more lines join it.
    expect(writes).toHaveLength(0);
    ch.sendToQueue(q, Buffer.from('3'));
    await new Promise((resolve) => setTimeout(resolve, BATCH_MS * 4));
    expect(writes).toHaveLength(1);
    const lines = writes[0]!.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Line);
    expect(lines.map((l) => l.hop!.kind)).toEqual(['publish', 'publish', 'publish', 'publish']);
    await ch.close();
  });

  it("closing a channel hands the writer's pending lines to the destination at once, so ending the logger next loses none", async () => {
    const writes: string[] = [];
    const logger = pino({ level: 'info' }, { write: (s: string) => void writes.push(s), flushSync: () => {} } as never);
    const q = await fx.queue('lib.records.close-flush');
    const ch = instrument(await fx.conn.createChannel(), { logger });
    ch.sendToQueue(q, Buffer.from('a'));
    ch.sendToQueue(q, Buffer.from('b'));
    expect(writes).toHaveLength(0);
    // In the same turn as the sends, so no timer can have written the batch: close() itself does.
    const closed = ch.close();
    expect(writes).toHaveLength(1);
    expect(writes[0]!.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as Line).hop!.kind)).toEqual(['publish', 'publish']);
    await closed;
  });

  it('hop lines follow the logger level: info records are left out at warn, a nack is written', async () => {
    const cap = capture();
    cap.logger.level = 'warn';
    const q = await fx.queue('lib.records.level');
    const ch = instrument(await fx.conn.createChannel(), { logger: cap.logger });
    await ch.consume(q, (m) => (m!.content.toString() === 'bad' ? ch.nack(m!, false, false) : ch.ack(m!)));
    ch.sendToQueue(q, Buffer.from('good'));
    ch.sendToQueue(q, Buffer.from('bad'));
    await waitFor(() => cap.records().length === 1, 'the nack record');
    await delay(50);
    expect(cap.recordLines().map((l) => [l.level, l.hop!.kind, (l.hop as ConsumeRecordV2).settle])).toEqual([[40, 'consume', 'nack']]);
    await ch.close();
  });

  it('a pino logger with custom formatting gets records through logger.info({ hop }), each with its instance', async () => {
    const lines: Line[] = [];
    const logger = pino({ mixin: () => ({ app: 'shop' }) }, { write: (s: string) => void lines.push(JSON.parse(s) as Line) });
    const q = await fx.queue('lib.records.mixin');
    const ch = instrument(await fx.conn.createChannel(), { logger });
    ch.sendToQueue(q, Buffer.from('x'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ app: 'shop', level: 30, hop: { v: 2, kind: 'publish', instance: `${hostname()}/${process.pid}` } });
    expect(checkHopRecord(lines[0]).ok).toBe(true);
    await ch.close();
  });

  it('records carry instance when the pino line does not say hostname and pid', async () => {
    const lines: Line[] = [];
    const logger = pino({ base: null }, { write: (s: string) => void lines.push(JSON.parse(s) as Line) });
    const q = await fx.queue('lib.records.nobase');
    const ch = instrument(await fx.conn.createChannel(), { logger });
    ch.sendToQueue(q, Buffer.from('x'));
    expect(lines[0]!.pid).toBeUndefined();
    expect(lines[0]!.hop!.instance).toBe(`${hostname()}/${process.pid}`);
    await ch.close();
  });
});

describe('sides unfinished after the grace period', () => {
  it('a delivery never settled gets an open record within recordGraceMs, and the collector calls it stuck', async () => {
    const cap = capture();
    const q = await fx.queue('lib.records.stuck');
    const ch = instrument(await fx.conn.createChannel(), { logger: cap.logger, recordGraceMs: 150 });
    const held: ConsumeMessage[] = [];
    await ch.consume(q, (m) => void held.push(m!));
    ch.sendToQueue(q, Buffer.from('never acked'));
    await waitFor(() => held.length === 1, 'the delivery');
    // Handled but unsettled: nothing is written before the grace period...
    await delay(50);
    expect(cap.records().filter((r) => r.kind === 'consume')).toHaveLength(0);
    // ...and an open record right after it.
    const open = (await waitFor(() => cap.records().find((r) => r.kind === 'consume'), 'the open record', 2_000)) as ConsumeRecordV2;
    expect(open).toMatchObject({ open: true, queue: q });
    expect(open.processMs).toBeGreaterThanOrEqual(0);
    expect(open.settle).toBeUndefined();

    const collector = await startTestCollector({ stuckAfterMs: 200, sweepIntervalMs: 50 });
    try {
      expect((await postHops(collector.url, cap.lines)).status).toBe(202);
      const correlationId = open.correlationId ?? open.messageId;
      const chain = await waitFor(async () => {
        const r = await getJson(collector.url, `/api/chains/${encodeURIComponent(correlationId)}`);
        return r.status === 200 && (r.body as ChainDetail).status === 'stuck' ? (r.body as ChainDetail) : undefined;
      }, 'the chain to turn stuck');
      expect(chain.hops.map((h) => h.kind)).toEqual(['send', 'receive', 'process']);

      // Settled after all: the complete record follows; the collector keeps each hop once.
      ch.ack(held[0]!);
      const records = cap.records().filter((r) => r.kind === 'consume');
      expect(records).toHaveLength(2);
      expect(records[1]).toMatchObject({ settle: 'ack' });
      expect(records[1]!.open).toBeUndefined();
      expect((await postHops(collector.url, cap.lines)).status).toBe(202);
      const settled = await waitFor(async () => {
        const r = await getJson(collector.url, `/api/chains/${encodeURIComponent(correlationId)}`);
        return (r.body as ChainDetail).status === 'ok' ? (r.body as ChainDetail) : undefined;
      }, 'the chain to settle');
      expect(settled.hops.map((h) => h.kind)).toEqual(['send', 'receive', 'process', 'settle']);
    } finally {
      await collector.stop();
    }
    await ch.close();
  });

  it('a publish whose confirm comes after the grace period gets an open record, then the complete one', async () => {
    const cap = capture();
    const q = await fx.queue('lib.records.slowconfirm');
    const conn = await connect(AMQP_URL, { logger: cap.logger, recordGraceMs: 1 });
    const ch = await conn.createConfirmChannel();
    ch.sendToQueue(q, Buffer.from('x'));
    // Keep the event loop busy past the grace period: the timer runs before the confirm is read off the socket.
    const until = Date.now() + 30;
    while (Date.now() < until) {
      // busy
    }
    await ch.waitForConfirms();
    const records = cap.records() as PublishRecordV2[];
    expect(records.map((r) => [r.open ?? false, r.confirmMs === undefined])).toEqual([
      [true, true],
      [false, false],
    ]);
    // Both expand to the same send hop: the collector stores it once.
    expect(hopsOf(cap.lines).map((h) => h.kind)).toEqual(['send', 'confirm']);
    await conn.close();
  });

  it('closing a channel writes what is pending: an open record for each unsettled delivery', async () => {
    const cap = capture();
    const q = await fx.queue('lib.records.close');
    const ch = instrument(await fx.conn.createChannel(), { logger: cap.logger, recordGraceMs: 60_000 });
    let handled = 0;
    await ch.consume(q, () => void handled++);
    for (let i = 0; i < 3; i++) ch.sendToQueue(q, Buffer.from(String(i)));
    await waitFor(() => handled === 3, 'three deliveries');
    expect(cap.records().filter((r) => r.kind === 'consume')).toHaveLength(0);
    await ch.close();
    const open = cap.records().filter((r) => r.kind === 'consume') as ConsumeRecordV2[];
    expect(open).toHaveLength(3);
    expect(open.every((r) => r.open === true && r.processMs !== undefined && r.settle === undefined)).toBe(true);
  });
});

describe('crash loss', () => {
  it('a service killed with SIGKILL inside the grace window has every record older than the window in its log', async () => {
    const hopLog = join(dir, 'crash-hops.log');
    const truth = join(dir, 'crash-truth.log');
    const q = await fx.queue('lib.records.crash');
    const GRACE = 300;
    const child = fork(fileURLToPath(new URL('./helpers/crash-service.ts', import.meta.url)), [], {
      env: { ...process.env, AMQP_URL, HOP_LOG: hopLog, TRUTH_LOG: truth, QUEUE: q, GRACE_MS: String(GRACE) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    await new Promise<void>((resolve, reject) => {
      child.once('message', () => resolve());
      child.once('error', reject);
    });
    // It publishes every 10 ms and acks four messages in five (the fifth is held, unsettled, forever).
    await delay(2_500);
    const killedAt = Date.now();
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');

    // What the service did, in the order it did it, written before each publish.
    const sent = readFileSync(truth, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => {
        const [messageId, ts, held] = l.split(' ');
        return { messageId: messageId!, ts: Number(ts), held: held === 'held' };
      });
    const records = readLines(hopLog).map((l) => {
      expect(checkHopRecord(l).ok).toBe(true);
      return l.hop!;
    });
    // The bound: recordGraceMs, then the writer's 25 ms batch; 1 s of slack for a loaded machine.
    const window = GRACE + 1_000;
    const old = sent.filter((m) => m.ts < killedAt - window);
    expect(old.length).toBeGreaterThan(50);
    const publishes = new Set(records.filter((r) => r.kind === 'publish').map((r) => r.messageId));
    const consumes = new Map<string, ConsumeRecordV2[]>();
    for (const r of records) if (r.kind === 'consume') consumes.set(r.messageId, [...(consumes.get(r.messageId) ?? []), r as ConsumeRecordV2]);
    for (const m of old) {
      expect(publishes.has(m.messageId), `publish record of ${m.messageId}, sent ${killedAt - m.ts} ms before the kill`).toBe(true);
      const c = consumes.get(m.messageId) ?? [];
      if (m.held) {
        // Never settled: its open record is there, so the collector can call it stuck.
        expect(c.some((r) => r.open === true), `open consume record of held ${m.messageId}`).toBe(true);
      } else {
        expect(c.some((r) => r.settle === 'ack'), `consume record of ${m.messageId}`).toBe(true);
      }
    }
  }, 30_000);
});
