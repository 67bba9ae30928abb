/**
 * Version-2 records as JSON, written by hand: each kind's fields in a fixed
 * order, the per-channel constant part (version, kind, service, instance,
 * queue) serialized once when the channel or consumer is set up and passed
 * in as `prefix`. Ids hoptrace generated (hex trace and span ids) go in as
 * they are; every other string goes through {@link jsonString}.
 *
 * `JSON.parse(publishJson(prefix, r))` equals `r` (without `instance` when
 * the prefix leaves it out: the pino line says it) (test/lib-record-json.test.ts);
 * a version-1 record (returns, settles of
 * messages hoptrace never saw delivered) is rare and uses JSON.stringify.
 */
import type { ConsumeRecordV2, DeathEntry, HopError, HopProperties, PublishRecordV2 } from '../hop.ts';

/**
 * A string as a JSON string literal. Short strings without quotes,
 * backslashes, control characters or surrogates (ids, names, routing keys:
 * nearly all) are wrapped as they are; anything else goes to JSON.stringify.
 */
export function jsonString(s: string): string {
  const n = s.length;
  if (n > 64) return JSON.stringify(s);
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 32 || c === 34 || c === 92 || (c >= 0xd800 && c <= 0xdfff)) return JSON.stringify(s);
  }
  return `"${s}"`;
}

/** `{"v":2,"kind":"publish","service":…[,"instance":…]` (no closing brace). */
export function publishPrefix(service: string, instance: string | undefined): string {
  return `{"v":2,"kind":"publish","service":${jsonString(service)}${instance === undefined ? '' : `,"instance":${jsonString(instance)}`}`;
}

/** `{"v":2,"kind":"consume","service":…[,"instance":…],"queue":…` (no closing brace). */
export function consumePrefix(service: string, instance: string | undefined, queue: string): string {
  return `{"v":2,"kind":"consume","service":${jsonString(service)}${instance === undefined ? '' : `,"instance":${jsonString(instance)}`},"queue":${jsonString(queue)}`;
}

function stringMap(m: Record<string, string>): string {
  let out = '{';
  let first = true;
  for (const key in m) {
    out += `${first ? '' : ','}${jsonString(key)}:${jsonString(m[key]!)}`;
    first = false;
  }
  return `${out}}`;
}

function properties(p: HopProperties): string {
  let out = '';
  if (p.contentType !== undefined) out += `,"contentType":${jsonString(p.contentType)}`;
  if (p.contentEncoding !== undefined) out += `,"contentEncoding":${jsonString(p.contentEncoding)}`;
  if (p.deliveryMode !== undefined) out += `,"deliveryMode":${p.deliveryMode}`;
  if (p.priority !== undefined) out += `,"priority":${p.priority}`;
  if (p.correlationId !== undefined) out += `,"correlationId":${jsonString(p.correlationId)}`;
  if (p.replyTo !== undefined) out += `,"replyTo":${jsonString(p.replyTo)}`;
  if (p.expiration !== undefined) out += `,"expiration":${jsonString(p.expiration)}`;
  if (p.messageId !== undefined) out += `,"messageId":${jsonString(p.messageId)}`;
  if (p.timestamp !== undefined) out += `,"timestamp":${p.timestamp}`;
  if (p.type !== undefined) out += `,"type":${jsonString(p.type)}`;
  if (p.userId !== undefined) out += `,"userId":${jsonString(p.userId)}`;
  if (p.appId !== undefined) out += `,"appId":${jsonString(p.appId)}`;
  return out === '' ? '{}' : `{${out.slice(1)}}`;
}

function error(e: HopError): string {
  let out = `{"type":${jsonString(e.type)},"message":${jsonString(e.message)}`;
  if (e.stack !== undefined) out += `,"stack":${jsonString(e.stack)}`;
  if (e.code !== undefined) out += `,"code":${jsonString(e.code)}`;
  if (e.truncated === true) out += ',"truncated":true';
  return `${out}}`;
}

function death(entries: readonly DeathEntry[]): string {
  let out = '[';
  for (let i = 0; i < entries.length; i++) {
    const d = entries[i]!;
    let keys = '';
    for (let k = 0; k < d.routingKeys.length; k++) keys += `${k === 0 ? '' : ','}${jsonString(d.routingKeys[k]!)}`;
    out += `${i === 0 ? '' : ','}{"queue":${jsonString(d.queue)},"reason":${jsonString(d.reason)},"count":${d.count},"exchange":${jsonString(d.exchange)},"routingKeys":[${keys}]${d.time === undefined ? '' : `,"time":${d.time}`}}`;
  }
  return `${out}]`;
}

/** The fields both kinds share, after the prefix: ts and ids. */
function ids(r: PublishRecordV2 | ConsumeRecordV2): string {
  let out = `,"ts":${r.ts},"traceId":"${r.traceId}","spanId":"${r.spanId}"`;
  if (r.parentSpanId !== undefined) out += `,"parentSpanId":"${r.parentSpanId}"`;
  out += `,"messageId":${jsonString(r.messageId)}`;
  if (r.correlationId !== undefined) out += `,"correlationId":${jsonString(r.correlationId)}`;
  if (r.causationId !== undefined) out += `,"causationId":${jsonString(r.causationId)}`;
  return out;
}

/** What the message itself carried: size, types, headers, properties, payload. */
function message(r: PublishRecordV2 | ConsumeRecordV2): string {
  let out = '';
  if (r.bodySize !== undefined) out += `,"bodySize":${r.bodySize}`;
  if (r.contentType !== undefined) out += `,"contentType":${jsonString(r.contentType)}`;
  if (r.messageType !== undefined) out += `,"messageType":${jsonString(r.messageType)}`;
  if (r.headers !== undefined) out += `,"headers":${stringMap(r.headers)}`;
  if (r.properties !== undefined) out += `,"properties":${properties(r.properties)}`;
  if (r.payload !== undefined) out += `,"payload":${jsonString(r.payload)}`;
  if (r.payloadTruncated === true) out += ',"payloadTruncated":true';
  if (r.truncated === true) out += ',"truncated":true';
  return out;
}

/** A publish record, after its channel's {@link publishPrefix}. */
export function publishJson(prefix: string, r: PublishRecordV2): string {
  let out = prefix + ids(r);
  if (r.exchange !== undefined) out += `,"exchange":${jsonString(r.exchange)}`;
  out += `,"routingKey":${jsonString(r.routingKey)}`;
  out += message(r);
  if (r.confirmMs !== undefined) out += `,"confirmMs":${r.confirmMs}`;
  if (r.confirm !== undefined) out += `,"confirm":"${r.confirm}"`;
  if (r.error !== undefined) out += `,"error":${error(r.error)}`;
  if (r.open === true) out += ',"open":true';
  return `${out}}`;
}

/** A consume record, after its consumer's {@link consumePrefix}. */
export function consumeJson(prefix: string, r: ConsumeRecordV2): string {
  let out = prefix + ids(r);
  if (r.exchange !== undefined) out += `,"exchange":${jsonString(r.exchange)}`;
  if (r.routingKey !== undefined) out += `,"routingKey":${jsonString(r.routingKey)}`;
  if (r.consumerTag !== undefined) out += `,"consumerTag":${jsonString(r.consumerTag)}`;
  if (r.deliveryTag !== undefined) out += `,"deliveryTag":${r.deliveryTag}`;
  if (r.redelivered === true) out += ',"redelivered":true';
  if (r.death !== undefined) out += `,"death":${death(r.death)}`;
  out += message(r);
  if (r.processMs !== undefined) out += `,"processMs":${r.processMs}`;
  if (r.error !== undefined) out += `,"error":${error(r.error)}`;
  if (r.settle !== undefined) out += `,"settle":"${r.settle}"`;
  if (r.settleMs !== undefined) out += `,"settleMs":${r.settleMs}`;
  if (r.requeue !== undefined) out += `,"requeue":${r.requeue}`;
  if (r.multiple === true) out += ',"multiple":true';
  if (r.settleSpanId !== undefined) out += `,"settleSpanId":"${r.settleSpanId}"`;
  if (r.open === true) out += ',"open":true';
  return `${out}}`;
}
