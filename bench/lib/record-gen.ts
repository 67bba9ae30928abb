/**
 * The traffic of lib/hop-gen.ts as the version-2 library writes it (see
 * src/contract/hop.ts): per message one `publish` record (send and confirm), per
 * delivery attempt one `consume` record (receive, handler outcome, settle),
 * each written when its side is done with the message; a delivery never
 * settled is an `open` record. For the ingest and memory benchmarks'
 * "observed traffic" rows: messages per second, not hops.
 */
import type { ConsumeRecordV2, HopRecord, HopRecordV2, PublishRecordV2 } from '../../src/contract/hop.ts';
import { type GeneratedChain, type HopGenerator, MinHeap } from './hop-gen.ts';

/** A record and when its writer wrote it (its side's last event). */
interface Timed {
  record: HopRecordV2;
  writtenAt: number;
}

const round = (ms: number): number => Math.round(ms * 1000) / 1000;

/** The version-2 records of one generated chain. */
export function chainRecords(chain: GeneratedChain): Timed[] {
  const out: Timed[] = [];
  const byMessage = new Map<string, HopRecord[]>();
  for (const h of chain.hops) {
    const list = byMessage.get(h.messageId);
    if (list) list.push(h);
    else byMessage.set(h.messageId, [h]);
  }
  for (const hops of byMessage.values()) {
    const send = hops.find((h) => h.kind === 'send');
    if (send) {
      const confirm = hops.find((h) => h.kind === 'confirm');
      const { v: _v, kind: _k, instance: _i, correlationId, ...rest } = send;
      const pub: PublishRecordV2 = { ...rest, v: 2, kind: 'publish', instance: send.instance, routingKey: send.routingKey ?? '' };
      if (correlationId !== send.messageId) pub.correlationId = correlationId;
      if (confirm) pub.confirmMs = round(confirm.ts - send.ts);
      out.push({ record: pub, writtenAt: confirm?.ts ?? send.ts });
    }
    // One consume record per delivery attempt: its receive and the process and settle with the same tags.
    for (const r of hops.filter((h) => h.kind === 'receive')) {
      const same = (h: HopRecord) => h.consumerTag === r.consumerTag && h.deliveryTag === r.deliveryTag && h.instance === r.instance;
      const process = hops.find((h) => h.kind === 'process' && same(h));
      const settle = hops.find((h) => h.kind === 'settle' && same(h));
      const rec: ConsumeRecordV2 = {
        v: 2,
        kind: 'consume',
        ts: r.ts,
        service: r.service,
        instance: r.instance,
        traceId: r.traceId,
        spanId: r.spanId,
        messageId: r.messageId,
        queue: r.queue ?? '',
      };
      if (r.parentSpanId) rec.parentSpanId = r.parentSpanId;
      if (r.correlationId !== r.messageId) rec.correlationId = r.correlationId;
      if (r.causationId) rec.causationId = r.causationId;
      if (r.exchange) rec.exchange = r.exchange;
      if (r.routingKey !== r.queue) rec.routingKey = r.routingKey;
      if (r.consumerTag && !r.consumerTag.startsWith('amq.ctag-')) rec.consumerTag = r.consumerTag;
      if (r.deliveryTag !== undefined) rec.deliveryTag = r.deliveryTag;
      if (r.redelivered) rec.redelivered = true;
      if (r.death) rec.death = r.death;
      if (r.messageType) rec.messageType = r.messageType;
      if (r.contentType) rec.contentType = r.contentType;
      if (r.bodySize !== undefined) rec.bodySize = r.bodySize;
      if (r.headers) rec.headers = r.headers;
      if (r.properties) rec.properties = r.properties;
      if (process) {
        rec.processMs = round(process.durationMs ?? process.ts - r.ts);
        if (process.outcome === 'error' && process.error) rec.error = process.error;
      }
      if (settle) {
        rec.settle = settle.outcome as ConsumeRecordV2['settle'];
        rec.settleMs = round(Math.max(0, settle.ts - r.ts));
        if (settle.outcome !== 'ack') rec.requeue = settle.requeue ?? true;
      } else rec.open = true;
      out.push({ record: rec, writtenAt: Math.max(r.ts, settle?.ts ?? r.ts, process?.ts ?? r.ts) });
    }
  }
  return out;
}

/**
 * Version-2 records in the order a collector receives them (by when they were
 * written), chains overlapping as in {@link hopsInTimeOrder}. Yields exactly
 * `total` records; also counts the distinct messages they are about.
 */
export function* recordsInTimeOrder(generator: HopGenerator, total: number): Generator<HopRecordV2> {
  const heap = new MinHeap<Timed>((t) => t.writtenAt);
  let emitted = 0;
  for (;;) {
    const chain = generator.next();
    const start = chain.hops[0].ts;
    while (heap.size > 0 && heap.peekKey() < start) {
      yield heap.pop().record;
      if (++emitted >= total) return;
    }
    for (const t of chainRecords(chain)) heap.push(t);
    if (emitted + heap.size >= total + 5_000 && heap.size > 0) {
      while (heap.size > 0) {
        yield heap.pop().record;
        if (++emitted >= total) return;
      }
    }
  }
}
