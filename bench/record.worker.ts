/**
 * What writing one round trip's records costs on its own, in a process of
 * its own: a `publish` and a `consume` record (version 2) shaped like the
 * round trip's; serialized only, then written by hoptrace's writer to a
 * synchronous and to an asynchronous pino.destination('/dev/null'), through
 * pino's own `logger.info({ hop })` (what hoptrace falls back to for a
 * logger with custom formatting), and the five version-1 hop lines the
 * library wrote before.
 */
import { hostname } from 'node:os';
import pino from 'pino';
import type { ConsumeRecordV2, HopRecord, PublishRecordV2 } from '../src/contract/hop.ts';
import { Level, writerFor } from '../src/internal/hop-writer.ts';
import { startAllocationMeter } from './lib/alloc.ts';
import { workerMain } from './lib/child.ts';
import { expandRecordV2 } from '../collector/hop-v2.ts';

export interface RecordInput {
  roundTrips: number;
}

export interface RecordRow {
  name: string;
  cpuUs: number;
  allocBytes: number;
  bytes: number;
}

const QUEUE = 'hoptrace.bench.rt.12345';

function records(i: number): [PublishRecordV2, ConsumeRecordV2] {
  const hex = (n: number, len: number) => (n.toString(16).padStart(8, '0').repeat(4)).slice(0, len);
  const messageId = `01a20fc6-3518-70f5-b5d3-${hex(i, 12)}`;
  const ts = 1_796_000_000_000 + i;
  const common = { service: 'bench', instance: undefined as string | undefined, traceId: hex(i + 1, 32), messageId, bodySize: 252, contentType: 'application/json', messageType: 'order.placed', properties: { deliveryMode: 2 } };
  return [
    { v: 2, kind: 'publish', ts, ...common, spanId: hex(i + 2, 16), routingKey: QUEUE, confirmMs: 1.234 },
    { v: 2, kind: 'consume', ts: ts + 2, ...common, spanId: hex(i + 3, 16), parentSpanId: hex(i + 2, 16), queue: QUEUE, deliveryTag: i + 1, processMs: 0.021, settle: 'ack', settleMs: 0.015 },
  ];
}

async function main(input: RecordInput): Promise<RecordRow[]> {
  const sample: [PublishRecordV2, ConsumeRecordV2][] = [];
  for (let i = 0; i < 1000; i++) sample.push(records(i));
  const instance = `${hostname()}/${process.pid}`;
  const v1: HopRecord[][] = sample.map(([p, c]) => [...expandRecordV2(p, instance), ...expandRecordV2(c, instance)]);

  const measure = async (name: string, bytes: number, write: (i: number) => void): Promise<RecordRow> => {
    // Warm up, then measure; yield to the event loop every 50 round trips, as a service does between socket reads.
    for (let i = 0; i < Math.min(20_000, input.roundTrips); i++) {
      write(i % sample.length);
      if (i % 50 === 0) await new Promise((r) => setImmediate(r));
    }
    await new Promise((r) => setImmediate(r));
    const cpu = process.cpuUsage();
    const meter = startAllocationMeter();
    for (let i = 0; i < input.roundTrips; i++) {
      write(i % sample.length);
      if (i % 50 === 0) await new Promise((r) => setImmediate(r));
    }
    const alloc = meter.stop();
    const used = process.cpuUsage(cpu);
    return { name, cpuUs: (used.user + used.system) / input.roundTrips, allocBytes: alloc.bytes / input.roundTrips, bytes };
  };

  let sink = 0;
  const lineOf = (r: PublishRecordV2 | ConsumeRecordV2) => JSON.stringify({ level: 30, time: r.ts, pid: process.pid, hostname: hostname(), hop: { ...r, instance: undefined } }).length + 1;
  const v2Bytes = lineOf(sample[0]![0]) + lineOf(sample[0]![1]);
  const rows = [
    await measure('JSON.stringify of the two records (how hoptrace serializes them)', v2Bytes, (i) => {
      sink += JSON.stringify(sample[i]![0]).length + JSON.stringify(sample[i]![1]).length;
    }),
  ];
  for (const [name, dest] of [
    ['hoptrace: two lines batched to pino.destination, synchronous (recommended)', pino.destination({ dest: '/dev/null', sync: true })],
    ['hoptrace: two lines batched to pino.destination, asynchronous (pino’s default)', pino.destination('/dev/null')],
  ] as const) {
    const writer = writerFor(pino(dest), () => {});
    rows.push(
      await measure(name, v2Bytes, (i) => {
        writer.write(Level.INFO, sample[i]![0]);
        writer.write(Level.INFO, sample[i]![1]);
      }),
    );
  }
  const viaPino = pino(pino.destination('/dev/null'));
  rows.push(
    await measure('two lines through pino, logger.info({ hop }), asynchronous (the fallback)', v2Bytes, (i) => {
      viaPino.info({ hop: sample[i]![0] });
      viaPino.info({ hop: sample[i]![1] });
    }),
  );
  const before = pino(pino.destination('/dev/null'));
  const v1Bytes = v1[0]!.reduce((s, h) => s + JSON.stringify({ level: 30, time: h.ts, pid: process.pid, hostname: hostname(), hop: h, msg: `${h.kind} ${h.messageId}` }).length + 1, 0);
  rows.push(
    await measure('before: five version-1 hop lines through pino, asynchronous', v1Bytes, (i) => {
      for (const hop of v1[i]!) before.info({ hop }, `${hop.kind} ${hop.messageId}`);
    }),
  );
  if (sink < 0) console.log(sink);
  return rows;
}

workerMain(main);
