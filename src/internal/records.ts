/**
 * Pieces every record is built from, publish or consume side: the error of
 * a failed handler or a nack, the AMQP properties worth keeping, and the
 * version-1 hop still written for the rare events no version-2 record holds
 * (a return; a settle of a message hoptrace never saw delivered). Every
 * value is made to fit `HopLimits` (see clip.ts).
 */
import {
  type ConsumeRecordV2,
  type DeathEntry,
  HOP_RECORD_V2,
  HOP_SCHEMA_VERSION,
  type HopError,
  type HopKind,
  HopLimits,
  type HopProperties,
  type HopRecord,
  type PublishRecordV2,
} from '../contract/hop.ts';
import { type Cut, clip, finite, integer, text } from './clip.ts';
import type { Config } from './config.ts';

/**
 * A `publish` record with every field declared up front: one fixed shape
 * (no property added after construction: no hidden-class transitions, no
 * growing property store), fields left `undefined` are not serialized.
 * `reset` makes one object serve again (see {@link recordsReusable}).
 */
export class PublishRecord implements PublishRecordV2 {
  readonly v = HOP_RECORD_V2;
  readonly kind = 'publish' as const;
  ts!: number;
  service!: string;
  instance: string | undefined;
  traceId!: string;
  spanId!: string;
  parentSpanId: string | undefined;
  messageId!: string;
  correlationId: string | undefined;
  causationId: string | undefined;
  exchange: string | undefined;
  routingKey!: string;
  bodySize: number | undefined;
  contentType: string | undefined;
  messageType: string | undefined;
  headers: Record<string, string> | undefined;
  properties: HopProperties | undefined;
  payload: string | undefined;
  payloadTruncated: boolean | undefined;
  truncated: boolean | undefined;
  confirmMs: number | undefined;
  confirm: 'ack' | 'nack' | undefined;
  error: HopError | undefined;
  open: boolean | undefined;

  constructor(cfg: Config, ids: RecordIds, routingKey: string, ts: number) {
    this.reset(cfg, ids, routingKey, ts);
  }

  /** Start over as a new record (of a publish to `routingKey` sent at `ts`): every other field undefined. */
  reset(cfg: Config, ids: RecordIds, routingKey: string, ts: number): this {
    this.ts = ts;
    this.service = cfg.service;
    // Absent when the pino line's own hostname and pid say it.
    this.instance = cfg.recordInstance;
    this.traceId = ids.traceId;
    this.spanId = ids.spanId;
    this.parentSpanId = undefined;
    this.messageId = ids.messageId;
    this.correlationId = undefined;
    this.causationId = undefined;
    this.exchange = undefined;
    this.routingKey = routingKey;
    this.bodySize = undefined;
    this.contentType = undefined;
    this.messageType = undefined;
    this.headers = undefined;
    this.properties = undefined;
    this.payload = undefined;
    this.payloadTruncated = undefined;
    this.truncated = undefined;
    this.confirmMs = undefined;
    this.confirm = undefined;
    this.error = undefined;
    this.open = undefined;
    return this;
  }
}

/** A `consume` record with every field declared up front (see {@link PublishRecord}). */
export class ConsumeRecord implements ConsumeRecordV2 {
  readonly v = HOP_RECORD_V2;
  readonly kind = 'consume' as const;
  ts!: number;
  service!: string;
  instance: string | undefined;
  traceId!: string;
  spanId!: string;
  parentSpanId: string | undefined;
  messageId!: string;
  correlationId: string | undefined;
  causationId: string | undefined;
  queue!: string;
  exchange: string | undefined;
  routingKey: string | undefined;
  consumerTag: string | undefined;
  deliveryTag: number | undefined;
  redelivered: boolean | undefined;
  death: DeathEntry[] | undefined;
  bodySize: number | undefined;
  contentType: string | undefined;
  messageType: string | undefined;
  headers: Record<string, string> | undefined;
  properties: HopProperties | undefined;
  payload: string | undefined;
  payloadTruncated: boolean | undefined;
  truncated: boolean | undefined;
  processMs: number | undefined;
  error: HopError | undefined;
  settle: 'ack' | 'nack' | 'reject' | undefined;
  settleMs: number | undefined;
  requeue: boolean | undefined;
  multiple: boolean | undefined;
  settleSpanId: string | undefined;
  open: boolean | undefined;

  constructor(cfg: Config, ids: RecordIds, queue: string, ts: number) {
    this.reset(cfg, ids, queue, ts);
  }

  /** Start over as a new record (of a delivery from `queue` received at `ts`): every other field undefined. */
  reset(cfg: Config, ids: RecordIds, queue: string, ts: number): this {
    this.ts = ts;
    this.service = cfg.service;
    // Absent when the pino line's own hostname and pid say it.
    this.instance = cfg.recordInstance;
    this.traceId = ids.traceId;
    this.spanId = ids.spanId;
    this.parentSpanId = undefined;
    this.messageId = ids.messageId;
    this.correlationId = undefined;
    this.causationId = undefined;
    this.queue = queue;
    this.exchange = undefined;
    this.routingKey = undefined;
    this.consumerTag = undefined;
    this.deliveryTag = undefined;
    this.redelivered = undefined;
    this.death = undefined;
    this.bodySize = undefined;
    this.contentType = undefined;
    this.messageType = undefined;
    this.headers = undefined;
    this.properties = undefined;
    this.payload = undefined;
    this.payloadTruncated = undefined;
    this.truncated = undefined;
    this.processMs = undefined;
    this.error = undefined;
    this.settle = undefined;
    this.settleMs = undefined;
    this.requeue = undefined;
    this.multiple = undefined;
    this.settleSpanId = undefined;
    this.open = undefined;
    return this;
  }
}

/**
 * Whether one scratch record object can serve every record: when the writer
 * builds the line itself and no hook keeps records, JSON.stringify reads the
 * record at once and nothing holds on to it. Else each record is a new object.
 */
export function recordsReusable(cfg: Config): boolean {
  return cfg.writer.direct && !cfg.hooked;
}

/** The ids a record starts from. */
interface RecordIds {
  traceId: string;
  spanId: string;
  messageId: string;
}

/** The class or `name` of a thrown value, for a record and for `error.type`. */
export function errorType(err: unknown): string {
  if (err instanceof Error) {
    const name: unknown = err.name;
    if (typeof name === 'string' && name !== '') return name;
    const ctor: unknown = err.constructor?.name;
    return typeof ctor === 'string' && ctor !== '' ? ctor : 'Error';
  }
  return err === null ? 'null' : typeof err;
}

/**
 * An error as a record carries it, every field cut to `HopLimits` (type and
 * code 1,024 characters, message 64 Ki, stack 1 Mi; a cut field ends with
 * `…` and the error says `truncated`). Never throws: an error whose getters
 * throw is recorded as unprintable.
 */
export function recordError(err: unknown): HopError {
  const cut: Cut = { truncated: false };
  let out: HopError;
  try {
    if (err instanceof Error) {
      out = { type: clip(errorType(err), HopLimits.SHORT, cut), message: clip(text(err.message), HopLimits.MEDIUM, cut) };
      const stack: unknown = err.stack;
      if (stack !== undefined && stack !== null) out.stack = clip(text(stack), HopLimits.LONG, cut);
      const code: unknown = (err as { code?: unknown }).code;
      if (typeof code === 'string' || typeof code === 'number') out.code = clip(String(code), HopLimits.SHORT, cut);
    } else {
      out = { type: err === null ? 'null' : typeof err, message: clip(text(err), HopLimits.MEDIUM, cut) };
    }
  } catch {
    return { type: 'Error', message: '[unprintable error]' };
  }
  if (cut.truncated) out.truncated = true;
  return out;
}

/** Publish options or a delivered message's properties, as amqplib spells them. */
export interface PropertySource {
  contentType?: unknown;
  contentEncoding?: unknown;
  deliveryMode?: unknown;
  persistent?: unknown;
  priority?: unknown;
  correlationId?: unknown;
  replyTo?: unknown;
  expiration?: unknown;
  messageId?: unknown;
  timestamp?: unknown;
  type?: unknown;
  userId?: unknown;
  appId?: unknown;
}

/** What of a record {@link recordProperties} compares with, to leave out what it already says. */
interface RecordFields {
  messageId: string;
  contentType?: string | undefined;
  messageType?: string | undefined;
}

function short(v: string, cut: Cut): string {
  return clip(v, HopLimits.SHORT, cut);
}

/**
 * AMQP basic properties as a record keeps them, leaving out what the
 * record's own fields hold: `messageId`, `contentType`, `type` (as
 * `messageType`) and `appId` when it equals `service`. Numbers are what AMQP
 * encodes (an integer priority or delivery mode, a finite timestamp).
 * `undefined` when nothing is left.
 */
export function recordProperties(p: PropertySource, rec: RecordFields, service: string, cut: Cut): HopProperties | undefined {
  let out: HopProperties | undefined;
  if (typeof p.contentType === 'string' && p.contentType !== rec.contentType) (out ??= {}).contentType = short(p.contentType, cut);
  if (typeof p.contentEncoding === 'string') (out ??= {}).contentEncoding = short(p.contentEncoding, cut);
  // Publish options say `persistent` (amqplib's preferred spelling) or `deliveryMode`.
  if (p.persistent !== undefined) (out ??= {}).deliveryMode = p.persistent ? 2 : 1;
  else if (p.deliveryMode === true) (out ??= {}).deliveryMode = 2;
  else {
    const mode = integer(p.deliveryMode);
    if (mode !== undefined) (out ??= {}).deliveryMode = mode;
  }
  const priority = integer(p.priority);
  if (priority !== undefined) (out ??= {}).priority = priority;
  if (typeof p.correlationId === 'string') (out ??= {}).correlationId = short(p.correlationId, cut);
  if (typeof p.replyTo === 'string') (out ??= {}).replyTo = short(p.replyTo, cut);
  if (typeof p.expiration === 'string' || typeof p.expiration === 'number') (out ??= {}).expiration = short(String(p.expiration), cut);
  if (typeof p.messageId === 'string' && p.messageId !== rec.messageId) (out ??= {}).messageId = short(p.messageId, cut);
  const timestamp = finite(p.timestamp);
  if (timestamp !== undefined) (out ??= {}).timestamp = timestamp;
  if (typeof p.type === 'string' && p.type !== rec.messageType) (out ??= {}).type = short(p.type, cut);
  if (typeof p.userId === 'string') (out ??= {}).userId = short(p.userId, cut);
  if (typeof p.appId === 'string' && p.appId !== service) (out ??= {}).appId = short(p.appId, cut);
  return out;
}

/** The ids a version-1 hop names. */
export interface HopIds {
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
  messageId: string;
  correlationId: string;
  causationId: string | undefined;
}

/** A version-1 hop (returns, settles of messages hoptrace never saw delivered): one line per event. */
export function hopV1(cfg: Config, kind: HopKind, ids: HopIds): HopRecord {
  const hop: HopRecord = {
    v: HOP_SCHEMA_VERSION,
    kind,
    ts: Date.now(),
    service: cfg.service,
    instance: cfg.instance,
    traceId: ids.traceId,
    spanId: ids.spanId,
    correlationId: ids.correlationId,
    messageId: ids.messageId,
  };
  if (ids.parentSpanId !== undefined) hop.parentSpanId = ids.parentSpanId;
  if (ids.causationId !== undefined) hop.causationId = ids.causationId;
  return hop;
}

/** Milliseconds between two `performance.now()` readings, to the microsecond, never negative. */
export function msBetween(from: number, to: number): number {
  const d = Math.round((to - from) * 1000) / 1000;
  return d > 0 ? d : 0;
}
