/**
 * Version-2 records (one per message per side, see `src/contract/hop.ts`) expanded
 * into the hops the chain engine works on: a `publish` record into `send`
 * and `confirm`, a `consume` record into `receive`, `process` and `settle`.
 *
 * The expansion is a pure function of the record, so an `open` record and
 * the complete record that follows it expand to identical hops for what
 * both hold, and the store keeps each once.
 */
import type { ConsumeRecordV2, HopRecord, HopRecordV2, PublishRecordV2 } from '../src/contract/hop.ts';

/** The hop fields a version-2 record shares with every hop it expands to. */
function base(rec: HopRecordV2, instance: string): HopRecord {
  const hop: HopRecord = {
    v: 1,
    kind: 'send',
    ts: rec.ts,
    service: rec.service,
    instance,
    traceId: rec.traceId,
    spanId: rec.spanId,
    correlationId: rec.correlationId ?? rec.messageId,
    messageId: rec.messageId,
  };
  if (rec.parentSpanId !== undefined) hop.parentSpanId = rec.parentSpanId;
  if (rec.causationId !== undefined) hop.causationId = rec.causationId;
  return hop;
}

/** Fields a message carries whoever records it (body, headers, properties, payload). */
function messageFields(hop: HopRecord, rec: HopRecordV2): void {
  if (rec.messageType !== undefined) hop.messageType = rec.messageType;
  if (rec.contentType !== undefined) hop.contentType = rec.contentType;
  if (rec.bodySize !== undefined) hop.bodySize = rec.bodySize;
  if (rec.headers !== undefined) hop.headers = rec.headers;
  if (rec.properties !== undefined) hop.properties = rec.properties;
  if (rec.payload !== undefined) hop.payload = rec.payload;
  if (rec.payloadTruncated !== undefined) hop.payloadTruncated = rec.payloadTruncated;
  if (rec.truncated !== undefined) hop.truncated = rec.truncated;
}

/** Round to the microsecond: `ts + offset` must not grow float noise. */
const at = (ts: number, offsetMs: number): number => Math.round((ts + offsetMs) * 1000) / 1000;

function expandPublish(rec: PublishRecordV2, instance: string): HopRecord[] {
  const send = base(rec, instance);
  send.exchange = rec.exchange ?? '';
  send.routingKey = rec.routingKey;
  messageFields(send, rec);
  if (rec.confirmMs === undefined) return [send];
  const confirm = base(rec, instance);
  confirm.kind = 'confirm';
  confirm.ts = at(rec.ts, rec.confirmMs);
  confirm.exchange = send.exchange;
  confirm.routingKey = rec.routingKey;
  confirm.outcome = rec.confirm ?? 'ack';
  confirm.durationMs = rec.confirmMs;
  if (confirm.outcome === 'nack' && rec.error !== undefined) confirm.error = rec.error;
  return [send, confirm];
}

function expandConsume(rec: ConsumeRecordV2, instance: string): HopRecord[] {
  const where = (hop: HopRecord): HopRecord => {
    hop.exchange = rec.exchange ?? '';
    hop.routingKey = rec.routingKey ?? rec.queue;
    hop.queue = rec.queue;
    if (rec.consumerTag !== undefined) hop.consumerTag = rec.consumerTag;
    if (rec.deliveryTag !== undefined) hop.deliveryTag = rec.deliveryTag;
    return hop;
  };
  const receive = where(base(rec, instance));
  receive.kind = 'receive';
  receive.redelivered = rec.redelivered ?? false;
  if (rec.death !== undefined) {
    let count = 0;
    for (const d of rec.death) count += d.count;
    receive.deathCount = count;
    receive.death = rec.death;
  }
  messageFields(receive, rec);
  const hops = [receive];
  if (rec.processMs !== undefined) {
    const process = where(base(rec, instance));
    process.kind = 'process';
    process.ts = at(rec.ts, rec.processMs);
    process.outcome = rec.error === undefined ? 'ok' : 'error';
    process.durationMs = rec.processMs;
    if (rec.error !== undefined) process.error = rec.error;
    hops.push(process);
  }
  if (rec.settle !== undefined) {
    const settle = where(base(rec, instance));
    settle.kind = 'settle';
    settle.ts = at(rec.ts, rec.settleMs ?? 0);
    if (rec.settleSpanId !== undefined) {
      settle.spanId = rec.settleSpanId;
      settle.parentSpanId = rec.spanId;
    }
    settle.outcome = rec.settle;
    if (rec.settle !== 'ack') settle.requeue = rec.requeue ?? true;
    if (rec.multiple === true) settle.multiple = true;
    hops.push(settle);
  }
  return hops;
}

/**
 * The hops a version-2 record stands for.
 * @param instance the record's `instance`, or the one its pino line gave
 */
export function expandRecordV2(rec: HopRecordV2, instance: string): HopRecord[] {
  return rec.kind === 'publish' ? expandPublish(rec, instance) : expandConsume(rec, instance);
}
