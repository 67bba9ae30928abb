/**
 * Messaging spans (from any language's OpenTelemetry instrumentation) → hop
 * records, so services that only speak OTLP join the same chains as services
 * using the hoptrace wrappers.
 *
 * | span | hops |
 * |---|---|
 * | operation `send` / `publish` / `create`, or kind PRODUCER | `send` at start (+ `confirm` / `return` from hoptrace's span events) |
 * | operation `receive` | `receive` at start |
 * | operation `process` / `deliver`, or kind CONSUMER | `receive` at start, `process` at end (outcome from status, error from `error.type` / the `exception` event); `settle` at end when the span says how it was settled |
 * | operation `settle`, or operation name `ack` / `nack` / `reject` | `settle` at start |
 *
 * Both the current attribute names and the pre-1.26 ones (the official
 * `@opentelemetry/instrumentation-amqplib` 0.71 still writes
 * `messaging.operation`, `messaging.destination`, `messaging.message_id`,
 * `messaging.conversation_id`, `messaging.rabbitmq.routing_key`) are read.
 * Spans that are not messaging spans are skipped.
 */
import { HOP_SCHEMA_VERSION, type HopError, type HopRecord } from '../src/contract/hop.ts';
import { exchangeOfProducerDestination, parseConsumerDestination } from '../src/contract/destination.ts';
import { SPAN_ID_PATTERN, TRACE_ID_PATTERN, ZERO_SPAN_ID, ZERO_TRACE_ID } from '../src/contract/ids.ts';
import { Attr, DEFAULT_EXCHANGE_DESTINATION, OperationType, SpanEvents } from '../src/contract/semconv.ts';
import { OtlpSpanKind, OtlpStatusCode, type OtlpAttributes, type OtlpResourceSpans, type OtlpSpan } from './otlp-model.ts';

/** Instrumentation scope of the official amqplib instrumentation: its consumer span ends at ack/nack/reject. */
export const AMQPLIB_INSTRUMENTATION_SCOPE = '@opentelemetry/instrumentation-amqplib';

/** Instrumentation scope of the hoptrace wrappers' own spans (`src/internal/version.ts` LIBRARY_NAME). */
export const HOPTRACE_SCOPE = 'hoptrace';

/** Instrumentation scope of the spans `chain-export.ts` writes (re-ingested from an exported file). */
export const CHAIN_EXPORT_SCOPE = 'hoptrace-chain-export';

/** Prefix of message ids made up from span ids when a span carries no message id. */
export const SYNTHETIC_MESSAGE_ID_PREFIX = 'otel:';

const SHORT = 1024;
const MESSAGE = 16 * 1024;
const STACK = 64 * 1024;

type Role = 'send' | 'receive' | 'process' | 'settle';

interface Located {
  span: OtlpSpan;
  service: string;
  instance: string;
  scope: string;
  role: Role | null;
}

const validTrace = (s: string): boolean => TRACE_ID_PATTERN.test(s) && s !== ZERO_TRACE_ID;
const validSpan = (s: string): boolean => SPAN_ID_PATTERN.test(s) && s !== ZERO_SPAN_ID;

function text(attrs: OtlpAttributes, ...keys: string[]): string | undefined {
  for (const k of keys) {
    const v = attrs.get(k);
    if (typeof v === 'string') return v.length > SHORT ? v.slice(0, SHORT) : v;
    if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  }
  return undefined;
}

function nonEmpty(attrs: OtlpAttributes, ...keys: string[]): string | undefined {
  for (const k of keys) {
    const v = text(attrs, k);
    if (v) return v;
  }
  return undefined;
}

function integer(attrs: OtlpAttributes, ...keys: string[]): number | undefined {
  for (const k of keys) {
    const v = attrs.get(k);
    const n = typeof v === 'string' && /^\d{1,15}$/.test(v) ? Number(v) : v;
    if (typeof n === 'number' && Number.isSafeInteger(n) && n >= 0) return n;
  }
  return undefined;
}

function bool(attrs: OtlpAttributes, key: string): boolean | undefined {
  const v = attrs.get(key);
  return typeof v === 'boolean' ? v : undefined;
}

/** Unix nanoseconds → epoch milliseconds, keeping microseconds. */
function ms(nanos: bigint): number {
  return Number(nanos / 1000n) / 1000;
}

const MESSAGING_PREFIX = 'messaging.';

/**
 * A messaging span has some `messaging.*` attribute. Not only `messaging.system`:
 * the official amqplib instrumentation takes that from the broker's handshake,
 * so a connection it did not see open leaves its publish spans without it.
 */
function isMessaging(attrs: OtlpAttributes): boolean {
  if (attrs.has(Attr.MESSAGING_SYSTEM) || attrs.has(Attr.MESSAGING_OPERATION_TYPE) || attrs.has(Attr.LEGACY_MESSAGING_OPERATION)) return true;
  for (const key of attrs.keys()) if (key.startsWith(MESSAGING_PREFIX)) return true;
  return false;
}

const SETTLE_NAMES = new Set(['ack', 'nack', 'reject']);

function roleOf(span: OtlpSpan): Role | null {
  const a = span.attributes;
  if (!isMessaging(a)) return null;
  const op = text(a, Attr.MESSAGING_OPERATION_TYPE, Attr.LEGACY_MESSAGING_OPERATION)?.toLowerCase();
  switch (op) {
    case OperationType.SEND:
    case OperationType.PUBLISH:
    case OperationType.CREATE:
      return 'send';
    case OperationType.RECEIVE:
      return 'receive';
    case OperationType.PROCESS:
    case OperationType.DELIVER:
      return 'process';
    case OperationType.SETTLE:
      return 'settle';
  }
  const name = text(a, Attr.MESSAGING_OPERATION_NAME)?.toLowerCase();
  if (name !== undefined && SETTLE_NAMES.has(name)) return 'settle';
  if (span.kind === OtlpSpanKind.PRODUCER) return 'send';
  if (span.kind === OtlpSpanKind.CONSUMER) return 'process';
  return null;
}

function serviceOf(resource: OtlpAttributes): { service: string; instance: string } {
  const service = nonEmpty(resource, Attr.SERVICE_NAME) ?? 'unknown_service';
  const host = nonEmpty(resource, Attr.HOST_NAME);
  const pid = text(resource, Attr.PROCESS_PID);
  // `host/pid` first: the wrappers' own hops name their instance that way.
  const instance = (host && pid ? `${host}/${pid}` : undefined) ?? nonEmpty(resource, Attr.SERVICE_INSTANCE_ID) ?? host ?? (pid ? `pid ${pid}` : service);
  return { service, instance: instance.slice(0, SHORT) };
}

/** The default exchange, as various instrumentations spell it. */
function exchangeName(raw: string): string {
  return raw === '<default>' || raw === DEFAULT_EXCHANGE_DESTINATION ? '' : raw;
}

/**
 * Exchange and (consumer side) queue of a messaging span, most explicit first:
 * `hoptrace.exchange` / `hoptrace.queue` (the wrappers and the chain export
 * write them); then `messaging.destination.name`, which semconv 1.30+
 * composes from exchange, routing key and queue (`src/contract/destination.ts`).
 * Older spans name the bare exchange there (or, legacy, in `messaging.destination`):
 * the official amqplib instrumentation, and the wrappers and chain export before
 * they wrote `hoptrace.exchange` (whose consumer-side spans without `hoptrace.queue` named the queue).
 */
function whereOf(loc: Located, routingKey: string | undefined): { exchange?: string; queue?: string } {
  const { span, scope } = loc;
  const a = span.attributes;
  const consumer = loc.role !== 'send';
  let queue = consumer ? text(a, Attr.HOPTRACE_QUEUE) : undefined;
  if (consumer && queue === undefined && scope === AMQPLIB_INSTRUMENTATION_SCOPE && span.name.endsWith(' process')) {
    queue = span.name.slice(0, -' process'.length).slice(0, SHORT); // it names consumer spans `${queue} process`
  }
  // Whoever writes hoptrace.exchange also writes hoptrace.queue where there is a queue.
  const explicit = text(a, Attr.HOPTRACE_EXCHANGE);
  if (explicit !== undefined) return { exchange: exchangeName(explicit), queue };
  const current = text(a, Attr.MESSAGING_DESTINATION_NAME);
  if (current === undefined || scope === HOPTRACE_SCOPE || scope === CHAIN_EXPORT_SCOPE) {
    const bare = current ?? text(a, Attr.LEGACY_MESSAGING_DESTINATION);
    if (bare === undefined) return { queue };
    if (scope === HOPTRACE_SCOPE && consumer && queue === undefined) return { queue: bare };
    return { exchange: exchangeName(bare), queue };
  }
  if (!consumer) return { exchange: exchangeName(exchangeOfProducerDestination(current, routingKey)) };
  const parsed = parseConsumerDestination(current, routingKey, queue);
  return { exchange: exchangeName(parsed.exchange), queue: parsed.queue };
}

/**
 * amqplib's official consumer span ends on ack/nack/reject and says which in
 * its status: `nack called on message without requeue` (ack leaves it unset).
 * Channel close, channel error and its own timeout end the span unsettled.
 */
const AMQPLIB_SETTLE_STATUS = /^(ack|nack|reject|ackAll|nackAll) called on message(?: (with|without) requeue)?$/;
const AMQPLIB_UNSETTLED_STATUS = new Set(['channel closed', 'channel error', 'instrumentation timeout']);

interface Settlement {
  outcome: 'ack' | 'nack' | 'reject';
  requeue?: boolean;
  multiple?: boolean;
  /** True when the span's error status only reported this nack/reject, not a handler failure. */
  explainsStatus: boolean;
}

function settlementOf(loc: Located): Settlement | undefined {
  // The wrappers record every settle as a span of its own (and also tag the consumer span).
  if (loc.scope === HOPTRACE_SCOPE) return undefined;
  const a = loc.span.attributes;
  const explicit = text(a, Attr.HOPTRACE_SETTLE_OUTCOME)?.toLowerCase();
  if (explicit === 'ack' || explicit === 'nack' || explicit === 'reject') {
    return {
      outcome: explicit,
      requeue: bool(a, Attr.HOPTRACE_REQUEUE),
      multiple: bool(a, Attr.HOPTRACE_SETTLE_MULTIPLE),
      explainsStatus: false,
    };
  }
  if (loc.scope !== AMQPLIB_INSTRUMENTATION_SCOPE) return undefined;
  const { code, message } = loc.span.status;
  if (code !== OtlpStatusCode.ERROR) return { outcome: 'ack', explainsStatus: false };
  if (AMQPLIB_UNSETTLED_STATUS.has(message)) return undefined;
  const m = AMQPLIB_SETTLE_STATUS.exec(message);
  if (!m) return undefined;
  const op = m[1];
  const outcome = op === 'reject' ? 'reject' : op.startsWith('nack') ? 'nack' : 'ack';
  // amqplib's nack and reject requeue unless told otherwise.
  const requeue = m[2] === 'with' ? true : m[2] === 'without' ? false : outcome !== 'ack' ? true : undefined;
  return { outcome, requeue, multiple: op.endsWith('All') || undefined, explainsStatus: true };
}

function errorOf(span: OtlpSpan): HopError {
  const ex = span.events.find((e) => e.name === SpanEvents.EXCEPTION)?.attributes;
  const type = nonEmpty(span.attributes, Attr.ERROR_TYPE) ?? (ex && nonEmpty(ex, Attr.EXCEPTION_TYPE)) ?? 'Error';
  const message = (ex && text(ex, Attr.EXCEPTION_MESSAGE)) || span.status.message;
  const stackRaw = ex?.get(Attr.EXCEPTION_STACKTRACE);
  const error: HopError = { type, message: message.slice(0, MESSAGE) };
  if (typeof stackRaw === 'string' && stackRaw) error.stack = stackRaw.slice(0, STACK);
  return error;
}

/** Hops whose correlation id is only a trace id: no span of theirs carried an x-correlation-id. */
const traceCorrelated = new WeakSet<HopRecord>();

/** True when {@link spansToHops} made this hop's correlation id from a trace id (no conversation id was seen). */
export function hasTraceCorrelation(hop: HopRecord): boolean {
  return traceCorrelated.has(hop);
}

/**
 * Move hops whose correlation id is only a trace id into the chain a message
 * of theirs already belongs to: an OpenTelemetry-only consumer of a message
 * published through the hoptrace wrappers never saw its `x-correlation-id`,
 * but the store knows the message. Every hop that stood in for the same trace
 * moves along (the consumer and what its handler published).
 *
 * @param lookup the correlation id the store has for a message id, if any
 * @returns how many hops moved
 */
export async function adoptKnownCorrelations(
  hops: HopRecord[],
  lookup: (messageId: string) => Promise<string | undefined> | string | undefined,
): Promise<number> {
  const moves = new Map<string, string>();
  const asked = new Set<string>();
  for (const hop of hops) {
    if (!traceCorrelated.has(hop) || moves.has(hop.correlationId) || asked.has(hop.messageId)) continue;
    asked.add(hop.messageId);
    const known = await lookup(hop.messageId);
    if (known && known !== hop.correlationId) moves.set(hop.correlationId, known);
  }
  let moved = 0;
  for (const hop of hops) {
    const to = traceCorrelated.has(hop) ? moves.get(hop.correlationId) : undefined;
    if (to !== undefined) {
      hop.correlationId = to;
      traceCorrelated.delete(hop);
      moved++;
    }
  }
  return moved;
}

/** Map the decoded request's messaging spans onto hop records. */
export function spansToHops(request: readonly OtlpResourceSpans[]): HopRecord[] {
  const located: Located[] = [];
  const byId = new Map<string, Located>();
  for (const rs of request) {
    const { service, instance } = serviceOf(rs.resource);
    for (const ss of rs.scopeSpans) {
      for (const span of ss.spans) {
        if (!validTrace(span.traceId) || !validSpan(span.spanId) || span.startTimeUnixNano === 0n) continue;
        const loc: Located = { span, service, instance, scope: ss.scopeName, role: roleOf(span) };
        byId.set(`${span.traceId}/${span.spanId}`, loc);
        if (loc.role) located.push(loc);
      }
    }
  }

  const parentOf = (s: OtlpSpan): Located | undefined =>
    validSpan(s.parentSpanId) ? byId.get(`${s.traceId}/${s.parentSpanId}`) : undefined;

  /**
   * The span that published the message a consumer-side span is about: its
   * first link (semconv's way), else its parent (the amqplib way, and how a
   * consumer span is a child of its producer); a settle span asks its
   * consumer span.
   */
  const origin = (loc: Located, depth = 0): { traceId: string; spanId: string } | undefined => {
    const s = loc.span;
    const link = s.links.find((l) => validTrace(l.traceId) && validSpan(l.spanId));
    if (link) return link;
    const parent = parentOf(s);
    if (loc.role === 'settle' && parent && parent.role && parent.role !== 'send' && depth < 8) return origin(parent, depth + 1);
    if (validSpan(s.parentSpanId)) return { traceId: s.traceId, spanId: s.parentSpanId };
    return undefined;
  };

  const messageIds = new Map<Located, string>();
  const messageIdOf = (loc: Located): string => {
    const cached = messageIds.get(loc);
    if (cached !== undefined) return cached;
    const a = loc.span.attributes;
    let id = nonEmpty(a, Attr.MESSAGING_MESSAGE_ID, Attr.LEGACY_MESSAGING_MESSAGE_ID);
    if (id === undefined) {
      // Producer and consumer spans of one message must agree on an id, and
      // the only thing they share is the producer span: name the message after it.
      const o = loc.role === 'send' ? loc.span : origin(loc);
      const found = o && loc.role !== 'send' ? byId.get(`${o.traceId}/${o.spanId}`) : undefined;
      id =
        found?.role === 'send'
          ? messageIdOf(found)
          : `${SYNTHETIC_MESSAGE_ID_PREFIX}${(o ?? loc.span).traceId}:${(o ?? loc.span).spanId}`;
    }
    messageIds.set(loc, id);
    return id;
  };

  /** The nearest consumer-side span above a span, in this request. */
  const handlerOf = (loc: Located): Located | undefined => {
    let p = parentOf(loc.span);
    for (let i = 0; p && i < 32; i++) {
      if (p.role === 'process' || p.role === 'receive') return p;
      p = parentOf(p.span);
    }
    return undefined;
  };

  /** Correlation id per span, and whether a span said it (else it is a trace id standing in). */
  const correlations = new Map<Located, { id: string; said: boolean }>();
  const correlationOf = (loc: Located, depth = 0): { id: string; said: boolean } => {
    const cached = correlations.get(loc);
    if (cached !== undefined) return cached;
    const a = loc.span.attributes;
    const own = nonEmpty(a, Attr.HOPTRACE_CORRELATION_ID, Attr.MESSAGING_MESSAGE_CONVERSATION_ID, Attr.LEGACY_MESSAGING_CONVERSATION_ID);
    let found: { id: string; said: boolean } | undefined = own === undefined ? undefined : { id: own, said: true };
    if (found === undefined && depth < 16) {
      // No x-correlation-id seen: the chain is the trace — the trace the message was published in.
      if (loc.role === 'send') {
        const handler = handlerOf(loc);
        if (handler) found = correlationOf(handler, depth + 1);
      } else {
        const o = origin(loc);
        const producer = o && byId.get(`${o.traceId}/${o.spanId}`);
        if (producer?.role === 'send') found = correlationOf(producer, depth + 1);
        else if (o) found = { id: o.traceId, said: false };
      }
    }
    found ??= { id: loc.span.traceId, said: false };
    correlations.set(loc, found);
    return found;
  };

  const hops: HopRecord[] = [];
  const mark = (from: number, loc: Located): void => {
    if (!correlationOf(loc).said) for (let i = from; i < hops.length; i++) traceCorrelated.add(hops[i]);
  };
  for (const loc of located) {
    const before = hops.length;
    try {
      mapSpan(loc);
    } finally {
      mark(before, loc);
    }
  }
  return hops;

  function mapSpan(loc: Located): void {
    const { span, service, instance } = loc;
    const a = span.attributes;
    const start = ms(span.startTimeUnixNano);
    const end = span.endTimeUnixNano >= span.startTimeUnixNano ? ms(span.endTimeUnixNano) : start;

    const base: HopRecord = {
      v: HOP_SCHEMA_VERSION,
      kind: 'send',
      ts: start,
      service,
      instance,
      traceId: span.traceId,
      spanId: span.spanId,
      correlationId: correlationOf(loc).id,
      messageId: messageIdOf(loc),
    };
    if (validSpan(span.parentSpanId)) base.parentSpanId = span.parentSpanId;
    let causation = text(a, Attr.HOPTRACE_CAUSATION_ID);
    if (causation === undefined && loc.role === 'send') {
      const handler = handlerOf(loc);
      if (handler) causation = messageIdOf(handler);
    }
    if (causation) base.causationId = causation;
    const routingKey = text(
      a,
      Attr.RABBITMQ_DESTINATION_ROUTING_KEY,
      Attr.MESSAGING_RABBITMQ_ROUTING_KEY,
      Attr.LEGACY_MESSAGING_RABBITMQ_ROUTING_KEY,
    );
    const where = whereOf(loc, routingKey);
    if (where.exchange !== undefined) base.exchange = where.exchange;
    if (routingKey !== undefined) base.routingKey = routingKey;
    const bodySize = integer(a, Attr.MESSAGING_MESSAGE_BODY_SIZE);
    if (bodySize !== undefined) base.bodySize = bodySize;
    const messageType = nonEmpty(a, Attr.HOPTRACE_MESSAGE_TYPE);
    if (messageType) base.messageType = messageType;

    if (loc.role === 'send') {
      hops.push(base);
      for (const e of span.events) {
        if (e.name === SpanEvents.HOPTRACE_CONFIRM) {
          const outcome = text(e.attributes, Attr.HOPTRACE_OUTCOME) === 'nack' ? 'nack' : 'ack';
          const confirm: HopRecord = { ...base, kind: 'confirm', ts: ms(e.timeUnixNano), outcome };
          const d = e.attributes.get(Attr.HOPTRACE_DURATION_MS);
          if (typeof d === 'number' && Number.isFinite(d) && d >= 0) confirm.durationMs = d;
          hops.push(confirm);
        } else if (e.name === SpanEvents.HOPTRACE_RETURN) {
          const ret: HopRecord = { ...base, kind: 'return', ts: ms(e.timeUnixNano), outcome: 'returned' };
          const code = integer(e.attributes, Attr.HOPTRACE_REPLY_CODE);
          if (code !== undefined) ret.replyCode = code;
          const replyText = text(e.attributes, Attr.HOPTRACE_REPLY_TEXT);
          if (replyText !== undefined) ret.replyText = replyText;
          hops.push(ret);
        }
      }
      return;
    }

    // Consumer side: the queue, where something says it.
    if (where.queue !== undefined) base.queue = where.queue;
    const deliveryTag = integer(a, Attr.RABBITMQ_MESSAGE_DELIVERY_TAG, Attr.MESSAGING_RABBITMQ_DELIVERY_TAG);
    if (deliveryTag !== undefined) base.deliveryTag = deliveryTag;
    const consumerTag = nonEmpty(a, Attr.HOPTRACE_CONSUMER_TAG);
    if (consumerTag) base.consumerTag = consumerTag;

    if (loc.role === 'settle') {
      const name = (text(a, Attr.HOPTRACE_SETTLE_OUTCOME) ?? text(a, Attr.MESSAGING_OPERATION_NAME))?.toLowerCase();
      if (name !== 'ack' && name !== 'nack' && name !== 'reject') return;
      const settle: HopRecord = { ...base, kind: 'settle', outcome: name };
      const requeue = bool(a, Attr.HOPTRACE_REQUEUE);
      if (requeue !== undefined) settle.requeue = requeue;
      const multiple = bool(a, Attr.HOPTRACE_SETTLE_MULTIPLE);
      if (multiple !== undefined) settle.multiple = multiple;
      hops.push(settle);
      return;
    }

    const receive: HopRecord = { ...base, kind: 'receive' };
    const redelivered = bool(a, Attr.HOPTRACE_REDELIVERED);
    if (redelivered !== undefined) receive.redelivered = redelivered;
    const deathCount = integer(a, Attr.HOPTRACE_DEATH_COUNT);
    if (deathCount !== undefined) receive.deathCount = deathCount;
    hops.push(receive);
    if (loc.role === 'receive') return;

    const settlement = settlementOf(loc);
    const hasException = span.events.some((e) => e.name === SpanEvents.EXCEPTION);
    const failed = span.status.code === OtlpStatusCode.ERROR && (!settlement?.explainsStatus || hasException);
    const process: HopRecord = { ...base, kind: 'process', ts: end, outcome: failed ? 'error' : 'ok', durationMs: end - start };
    if (failed) process.error = errorOf(span);
    hops.push(process);
    if (settlement) {
      const settle: HopRecord = { ...base, kind: 'settle', ts: end, outcome: settlement.outcome };
      if (settlement.requeue !== undefined) settle.requeue = settlement.requeue;
      if (settlement.multiple !== undefined) settle.multiple = settlement.multiple;
      hops.push(settle);
    }
  }
}
