/**
 * Realistic hop records for chain tests, UI work and benchmarks.
 *
 * A {@link ChainFixture} is written in *true* time (ms after `start`); each
 * hop's recorded `ts` is that time plus its service's clock error
 * (`skewMs`), the way hosts with badly synced clocks would log it. Store ids
 * are handed out in the order hops were added, from `firstId`.
 *
 * @example
 * const f = new ChainFixture({ skewMs: { billing: -180_000 } });
 * const order = f.publish({ service: 'order-api', at: 0, exchange: 'orders', routingKey: 'order.placed', messageType: 'OrderPlaced' });
 * f.consume({ messageId: order, service: 'billing', queue: 'billing.order-placed', at: 12 });
 * buildChain(f.correlationId, f.hops(), { ...DEFAULT_ENGINE_OPTIONS, now: f.now() });
 */
import type { DeathEntry, HopError, HopKind, HopRecord } from '../../src/contract/hop.ts';
import type { StoredHop } from '../../collector/api-types.ts';

/** 2026-03-02T09:00:00Z: a fixed start so fixtures are the same on every run. */
export const FIXTURE_START = Date.UTC(2026, 2, 2, 9, 0, 0);

const hex = (n: number, width: number): string => n.toString(16).padStart(width, '0').slice(-width);

/** A UUIDv7-shaped id, deterministic from a number (and a namespace for uniqueness across fixtures). */
export function fixtureUuid(n: number, namespace = 0): string {
  return `0195${hex(namespace, 4)}-${hex(n >>> 16, 4)}-7${hex(n & 0xfff, 3)}-8${hex(namespace >>> 4, 3)}-${hex(n, 12)}`;
}

export interface ChainFixtureOptions {
  /** @default a UUID derived from `seed` */
  correlationId?: string;
  /** True time 0, epoch ms. @default {@link FIXTURE_START} */
  start?: number;
  /** Clock error per service, ms added to its recorded `ts` (negative: its clock is behind). @default {} */
  skewMs?: Record<string, number>;
  /** Store id of the first hop. @default 1 */
  firstId?: number;
  /** Makes ids (correlation, message, trace, span) differ between fixtures. @default 1 */
  seed?: number;
}

export interface PublishSpec {
  service: string;
  /** True time, ms after `start`. */
  at: number;
  /** @default a fresh UUIDv7-shaped id */
  messageId?: string;
  /** @default `"events"` */
  exchange?: string;
  /** @default `"event"` */
  routingKey?: string;
  /** Message id whose handler publishes this one (`x-causation-id`). */
  causedBy?: string;
  messageType?: string;
  /** Record a broker confirm this many ms later (`ack`), or `{ outcome: 'nack' }`. */
  confirm?: number | { afterMs?: number; outcome: 'ack' | 'nack' };
  /** The broker returns it as unroutable this many ms later. */
  returned?: { afterMs?: number; replyCode?: number; replyText?: string };
  bodySize?: number;
}

export interface ConsumeSpec {
  messageId: string;
  service: string;
  queue: string;
  /** True time of the receive, ms after `start`. */
  at: number;
  /** Handler time. @default 5 */
  handleMs?: number;
  /** `none`: the handler never returned (no process hop). @default 'ok' */
  outcome?: 'ok' | 'error' | 'none';
  /** @default a TypeError when `outcome` is `error` */
  error?: HopError;
  /** `none`: never settled. @default 'ack' when ok, 'nack' (requeue false) on error, 'none' when the handler never returned */
  settle?: 'ack' | 'nack' | 'reject' | 'none';
  /** For nack/reject. @default false */
  requeue?: boolean;
  redelivered?: boolean;
  /** `x-death` as the broker would deliver it (newest first). */
  death?: DeathEntry[];
  /** Leave these fields out, as an OTLP-mapped hop might. */
  omit?: ('queue' | 'deliveryTag' | 'consumerTag' | 'causationId' | 'receive')[];
}

/** Hop ids a {@link ChainFixture.consume} call produced (absent where no hop was recorded). */
export interface ConsumeHops {
  receive?: number;
  process?: number;
  settle?: number;
}

/** A chain being written hop by hop. */
export class ChainFixture {
  readonly correlationId: string;
  readonly start: number;
  readonly traceId: string;
  private readonly skewMs: Record<string, number>;
  private readonly seed: number;
  private readonly records: StoredHop[] = [];
  private nextId: number;
  private messageCounter = 0;
  private spanCounter = 0;
  private readonly deliveryTags = new Map<string, number>();
  private readonly published = new Map<string, { exchange: string; routingKey: string; causedBy?: string; messageType?: string; spanId: string; bodySize: number }>();
  private lastTrueTime = 0;

  constructor(options: ChainFixtureOptions = {}) {
    this.seed = options.seed ?? 1;
    this.correlationId = options.correlationId ?? fixtureUuid(0, this.seed);
    this.start = options.start ?? FIXTURE_START;
    this.skewMs = { ...options.skewMs };
    this.nextId = options.firstId ?? 1;
    this.traceId = `${hex(this.seed, 16)}${hex(0x5eed + this.seed * 7919, 16)}`;
  }

  /** Every hop so far, in the order they were added (store ids ascending). */
  hops(): StoredHop[] {
    return this.records.map((h) => ({ ...h }));
  }

  /** A "now" just after the last hop (true time + 1 s), on the collector's clock. */
  now(afterMs = 1000): number {
    return this.start + this.lastTrueTime + afterMs;
  }

  private spanId(): string {
    this.spanCounter++;
    return `${hex(this.seed, 6)}${hex(this.spanCounter, 10)}`;
  }

  private add(service: string, trueAt: number, record: Omit<HopRecord, 'v' | 'ts' | 'service' | 'instance' | 'traceId' | 'correlationId'>): number {
    const id = this.nextId++;
    if (trueAt > this.lastTrueTime) this.lastTrueTime = trueAt;
    const hop: StoredHop = {
      v: 1,
      ts: this.start + trueAt + (this.skewMs[service] ?? 0),
      service,
      instance: `${service}-6f7c9d/${1000 + service.length * 37}`,
      traceId: this.traceId,
      correlationId: this.correlationId,
      ...record,
      id,
      receivedAt: this.start + trueAt + 40,
    } as StoredHop;
    for (const key of Object.keys(hop) as (keyof StoredHop)[]) if (hop[key] === undefined) delete hop[key];
    this.records.push(hop);
    return id;
  }

  /** Record a publish (and its confirm or return). Returns the message id. */
  publish(spec: PublishSpec): string {
    const messageId = spec.messageId ?? fixtureUuid(++this.messageCounter, this.seed);
    const exchange = spec.exchange ?? 'events';
    const routingKey = spec.routingKey ?? 'event';
    const bodySize = spec.bodySize ?? 180 + ((this.messageCounter * 37) % 400);
    const spanId = this.spanId();
    this.published.set(messageId, { exchange, routingKey, causedBy: spec.causedBy, messageType: spec.messageType, spanId, bodySize });
    const base = {
      messageId,
      exchange,
      routingKey,
      causationId: spec.causedBy,
      messageType: spec.messageType,
      contentType: 'application/json',
      bodySize,
    };
    this.add(spec.service, spec.at, {
      kind: 'send',
      spanId,
      ...base,
      headers: {
        'x-correlation-id': this.correlationId,
        ...(spec.causedBy === undefined ? {} : { 'x-causation-id': spec.causedBy }),
        traceparent: `00-${this.traceId}-${spanId}-01`,
      },
      properties: {
        messageId,
        correlationId: this.correlationId,
        timestamp: Math.floor((this.start + spec.at) / 1000),
        appId: spec.service,
        contentType: 'application/json',
        ...(spec.messageType === undefined ? {} : { type: spec.messageType }),
      },
    });
    if (spec.confirm !== undefined) {
      const c = typeof spec.confirm === 'number' ? { afterMs: spec.confirm, outcome: 'ack' as const } : spec.confirm;
      const after = c.afterMs ?? 2;
      this.add(spec.service, spec.at + after, { kind: 'confirm', spanId: this.spanId(), parentSpanId: spanId, ...base, outcome: c.outcome, durationMs: after });
    }
    if (spec.returned !== undefined) {
      this.add(spec.service, spec.at + (spec.returned.afterMs ?? 1), {
        kind: 'return',
        spanId: this.spanId(),
        parentSpanId: spanId,
        ...base,
        outcome: 'returned',
        replyCode: spec.returned.replyCode ?? 312,
        replyText: spec.returned.replyText ?? 'NO_ROUTE',
      });
    }
    return messageId;
  }

  /**
   * Record the collector's replay of a dead-lettered message: `ack` republishes
   * it as a new message (returned, caused by `of`), other outcomes move nothing
   * (the hop is about `of`).
   */
  replay(spec: { of: string; at: number; deadLetterQueue: string; outcome?: 'ack' | 'nack' | 'returned' | 'not-found'; requestedBy?: string; count?: number }): string | undefined {
    const pub = this.published.get(spec.of);
    const outcome = spec.outcome ?? 'ack';
    const spanId = this.spanId();
    const base = { exchange: pub?.exchange ?? 'events', routingKey: pub?.routingKey ?? 'event', queue: spec.deadLetterQueue, requestedBy: spec.requestedBy ?? 'test' };
    if (outcome !== 'ack') {
      this.add('hoptrace-collector', spec.at, {
        kind: 'replay',
        spanId,
        messageId: spec.of,
        ...base,
        ...(outcome === 'not-found'
          ? { outcome: 'error' as const, error: { type: 'ReplayNotFoundError', code: 'HOPTRACE_ERR_REPLAY_NOT_FOUND', message: `not in queue "${spec.deadLetterQueue}"` } }
          : outcome === 'returned'
            ? { outcome: 'returned' as const, replyCode: 312, replyText: 'NO_ROUTE' }
            : { outcome: 'nack' as const, error: { type: 'ReplayRejectedError', message: 'the broker nacked the republish' } }),
      });
      return undefined;
    }
    const messageId = fixtureUuid(++this.messageCounter, this.seed);
    this.published.set(messageId, { exchange: base.exchange, routingKey: base.routingKey, causedBy: spec.of, messageType: pub?.messageType, spanId, bodySize: pub?.bodySize ?? 200 });
    this.add('hoptrace-collector', spec.at, {
      kind: 'replay',
      spanId,
      messageId,
      causationId: spec.of,
      ...base,
      outcome: 'ack',
      durationMs: 1.5,
      messageType: pub?.messageType,
      headers: { 'x-replay-of': spec.of, 'x-replay-count': String(spec.count ?? 1) },
    });
    return messageId;
  }

  /** Record one delivery attempt: receive, the handler's outcome, the settle. */
  consume(spec: ConsumeSpec): ConsumeHops {
    const pub = this.published.get(spec.messageId);
    const omit = new Set(spec.omit ?? []);
    const tagKey = `${spec.service}\u0000${spec.queue}`;
    const deliveryTag = (this.deliveryTags.get(tagKey) ?? 0) + 1;
    this.deliveryTags.set(tagKey, deliveryTag);
    const handleMs = spec.handleMs ?? 5;
    const outcome = spec.outcome ?? 'ok';
    const settle = spec.settle ?? (outcome === 'ok' ? 'ack' : outcome === 'error' ? 'nack' : 'none');
    const deathCount = spec.death?.reduce((n, e) => n + e.count, 0);
    const base = {
      messageId: spec.messageId,
      // A dead-lettered copy arrives through the dead-letter exchange.
      exchange: spec.death?.length ? `${spec.death[0].exchange}.dlx` : (pub?.exchange ?? 'events'),
      routingKey: pub?.routingKey ?? 'event',
      queue: omit.has('queue') ? undefined : spec.queue,
      consumerTag: omit.has('consumerTag') ? undefined : `amq.ctag-${spec.service}-${spec.queue}`,
      deliveryTag: omit.has('deliveryTag') ? undefined : deliveryTag,
      causationId: omit.has('causationId') ? undefined : pub?.causedBy,
      messageType: pub?.messageType,
      contentType: 'application/json',
      bodySize: pub?.bodySize ?? 200,
    };
    const out: ConsumeHops = {};
    const receiveSpan = this.spanId();
    if (!omit.has('receive')) {
      out.receive = this.add(spec.service, spec.at, {
        kind: 'receive',
        spanId: receiveSpan,
        parentSpanId: pub?.spanId,
        ...base,
        redelivered: spec.redelivered ?? false,
        deathCount,
        death: spec.death,
      });
    }
    if (outcome !== 'none') {
      out.process = this.add(spec.service, spec.at + handleMs, {
        kind: 'process',
        spanId: this.spanId(),
        parentSpanId: receiveSpan,
        ...base,
        outcome,
        durationMs: handleMs,
        error: outcome === 'error' ? (spec.error ?? { type: 'TypeError', message: "Cannot read properties of undefined (reading 'amount')" }) : undefined,
      });
    }
    if (settle !== 'none') {
      out.settle = this.add(spec.service, spec.at + handleMs + 0.2, {
        kind: 'settle',
        spanId: this.spanId(),
        parentSpanId: receiveSpan,
        ...base,
        outcome: settle,
        requeue: settle === 'ack' ? undefined : (spec.requeue ?? false),
        multiple: false,
      });
    }
    return out;
  }
}

/** A fixture's hops with what a test needs to judge them. */
export interface ChainFixtureResult {
  correlationId: string;
  hops: StoredHop[];
  /** Message ids in the order the fixture published them. */
  messageIds: string[];
  /** A good `now` for the engine: after the last hop, past any lost/stuck limit the scenario means to trip. */
  now: number;
  /** The true skew used, ms per service (what the engine should estimate, relative to the first service). */
  skewMs: Record<string, number>;
}

export interface LinearChainOptions extends ChainFixtureOptions {
  /** Publisher first, then each consumer publishes to the next. @default ['order-api', 'billing', 'shipping'] */
  services?: string[];
  /** Queue wait before each receive. @default 12 */
  queueWaitMs?: number;
  /** Handler time of each consumer. @default 8 */
  handleMs?: number;
}

const EVENT_NAMES = ['OrderPlaced', 'PaymentCaptured', 'ShipmentBooked', 'CustomerNotified', 'InvoiceIssued', 'LoyaltyPointsAdded'];

/**
 * A linear chain: `services[0]` publishes, every next service consumes it
 * and (inside its handler) publishes the next event; the last one only
 * consumes. Everything acked.
 */
export function buildChainHops(options: LinearChainOptions = {}): ChainFixtureResult {
  const services = options.services ?? ['order-api', 'billing', 'shipping'];
  const wait = options.queueWaitMs ?? 12;
  const handle = options.handleMs ?? 8;
  const f = new ChainFixture(options);
  const ids: string[] = [];
  let t = 0;
  let previous: string | undefined;
  for (let k = 0; k < services.length - 1; k++) {
    const type = EVENT_NAMES[k % EVENT_NAMES.length];
    const key = type.replace(/([a-z])([A-Z])/g, '$1.$2').toLowerCase();
    const id = f.publish({ service: services[k], at: t, exchange: key.split('.')[0] + 's', routingKey: key, messageType: type, causedBy: previous });
    ids.push(id);
    t += wait;
    f.consume({ messageId: id, service: services[k + 1], queue: `${services[k + 1]}.${key}`, at: t, handleMs: handle });
    t += handle / 2; // the next publish happens mid-handler
    previous = id;
  }
  return { correlationId: f.correlationId, hops: f.hops(), messageIds: ids, now: f.now(), skewMs: { ...options.skewMs } };
}

/** order-api → billing → shipping, all fine. `skewMs` shifts clocks (e.g. `{ billing: -180_000 }`: billing 3 min behind). */
export function threeServiceChain(options: ChainFixtureOptions = {}): ChainFixtureResult {
  return buildChainHops({ ...options, services: ['order-api', 'billing', 'shipping'] });
}

/** One OrderPlaced event consumed by billing, shipping and notifications from three queues. */
export function fanOutChain(options: ChainFixtureOptions = {}): ChainFixtureResult {
  const f = new ChainFixture(options);
  const id = f.publish({ service: 'order-api', at: 0, exchange: 'orders', routingKey: 'order.placed', messageType: 'OrderPlaced', confirm: 3 });
  f.consume({ messageId: id, service: 'billing', queue: 'billing.order-placed', at: 9, handleMs: 14 });
  f.consume({ messageId: id, service: 'shipping', queue: 'shipping.order-placed', at: 11, handleMs: 6 });
  f.consume({ messageId: id, service: 'notifications', queue: 'notifications.order-placed', at: 15, handleMs: 30 });
  return { correlationId: f.correlationId, hops: f.hops(), messageIds: [id], now: f.now(), skewMs: { ...options.skewMs } };
}

/**
 * order-api publishes OrderPlaced; billing's handler throws and nacks it
 * without requeue; the broker dead-letters it to `billing.order-placed.dlq`,
 * where dlq-monitor receives it with `x-death` and acks it.
 */
export function deadLetterChain(options: ChainFixtureOptions = {}): ChainFixtureResult {
  const f = new ChainFixture(options);
  const id = f.publish({ service: 'order-api', at: 0, exchange: 'orders', routingKey: 'order.placed', messageType: 'OrderPlaced' });
  f.consume({
    messageId: id,
    service: 'billing',
    queue: 'billing.order-placed',
    at: 10,
    handleMs: 7,
    outcome: 'error',
    error: { type: 'PaymentDeclinedError', message: 'card declined: insufficient funds', code: 'card_declined' },
    settle: 'nack',
    requeue: false,
  });
  f.consume({
    messageId: id,
    service: 'dlq-monitor',
    queue: 'billing.order-placed.dlq',
    at: 25,
    death: [
      { queue: 'billing.order-placed', reason: 'rejected', count: 1, exchange: 'orders', routingKeys: ['order.placed'], time: f.start + 17 },
    ],
  });
  return { correlationId: f.correlationId, hops: f.hops(), messageIds: [id], now: f.now(), skewMs: { ...options.skewMs } };
}

export interface ReplayedChainOptions extends ChainFixtureOptions {
  /**
   * What the replay did: `ok` republished and the fixed consumer acked it; `fails-again` republished and the
   * consumer dead-lettered it again; `not-found` moved nothing (the copy was gone). @default 'ok'
   */
  replay?: 'ok' | 'fails-again' | 'not-found';
}

/**
 * {@link deadLetterChain}, then the collector replays the dead-lettered order from its dead-letter
 * queue `billing.order-placed.dlq` (nobody consumes it: the engine is told with `deadLetterQueues`)
 * and billing handles the replay.
 */
export function replayedChain(options: ReplayedChainOptions = {}): ChainFixtureResult {
  const f = new ChainFixture(options);
  const id = f.publish({ service: 'order-api', at: 0, exchange: 'orders', routingKey: 'order.placed', messageType: 'OrderPlaced' });
  f.consume({
    messageId: id,
    service: 'billing',
    queue: 'billing.order-placed',
    at: 10,
    handleMs: 7,
    outcome: 'error',
    error: { type: 'PaymentDeclinedError', message: 'card declined for order 4711: insufficient funds' },
    settle: 'nack',
    requeue: false,
  });
  const ids = [id];
  const mode = options.replay ?? 'ok';
  const replay = f.replay({ of: id, at: 60_000, deadLetterQueue: REPLAY_DLQ, outcome: mode === 'not-found' ? 'not-found' : 'ack', requestedBy: 'ui' });
  if (replay !== undefined) {
    ids.push(replay);
    f.consume(
      mode === 'ok'
        ? { messageId: replay, service: 'billing', queue: 'billing.order-placed', at: 60_010, handleMs: 6 }
        : {
            messageId: replay,
            service: 'billing',
            queue: 'billing.order-placed',
            at: 60_010,
            handleMs: 6,
            outcome: 'error',
            error: { type: 'PaymentDeclinedError', message: 'card declined for order 4711: insufficient funds' },
            settle: 'nack',
            requeue: false,
          },
    );
  }
  return { correlationId: f.correlationId, hops: f.hops(), messageIds: ids, now: f.now(), skewMs: { ...options.skewMs } };
}

/** The dead-letter queue of {@link replayedChain}, for `deadLetterQueues`. */
export const REPLAY_DLQ = 'billing.order-placed.dlq';

export interface LimitScenarioOptions extends ChainFixtureOptions {
  /** How long after the last hop "now" is. @default 5 min (past the default 60 s limits) */
  ageMs?: number;
}

/** order-api → billing (ok) → billing publishes PaymentCaptured, which nobody ever receives. */
export function lostMessageChain(options: LimitScenarioOptions = {}): ChainFixtureResult {
  const f = new ChainFixture(options);
  const order = f.publish({ service: 'order-api', at: 0, exchange: 'orders', routingKey: 'order.placed', messageType: 'OrderPlaced' });
  f.consume({ messageId: order, service: 'billing', queue: 'billing.order-placed', at: 10, handleMs: 12 });
  const payment = f.publish({ service: 'billing', at: 16, exchange: 'payments', routingKey: 'payment.captured', messageType: 'PaymentCaptured', causedBy: order, confirm: 2 });
  return { correlationId: f.correlationId, hops: f.hops(), messageIds: [order, payment], now: f.now(options.ageMs ?? 300_000), skewMs: { ...options.skewMs } };
}

/** order-api → billing receives OrderPlaced and its handler never returns: no process, no settle. */
export function stuckMessageChain(options: LimitScenarioOptions = {}): ChainFixtureResult {
  const f = new ChainFixture(options);
  const order = f.publish({ service: 'order-api', at: 0, exchange: 'orders', routingKey: 'order.placed', messageType: 'OrderPlaced' });
  f.consume({ messageId: order, service: 'billing', queue: 'billing.order-placed', at: 10, outcome: 'none' });
  return { correlationId: f.correlationId, hops: f.hops(), messageIds: [order], now: f.now(options.ageMs ?? 300_000), skewMs: { ...options.skewMs } };
}

/** Like {@link lostMessageChain} / {@link stuckMessageChain} but judged 2 s after the last hop: still in flight. */
export function inFlightChain(options: ChainFixtureOptions = {}): ChainFixtureResult {
  const f = new ChainFixture(options);
  const order = f.publish({ service: 'order-api', at: 0, exchange: 'orders', routingKey: 'order.placed', messageType: 'OrderPlaced' });
  f.consume({ messageId: order, service: 'billing', queue: 'billing.order-placed', at: 10, handleMs: 12 });
  const payment = f.publish({ service: 'billing', at: 16, exchange: 'payments', routingKey: 'payment.captured', messageType: 'PaymentCaptured', causedBy: order });
  const shipment = f.publish({ service: 'billing', at: 17, exchange: 'invoices', routingKey: 'invoice.issued', messageType: 'InvoiceIssued', causedBy: order });
  f.consume({ messageId: shipment, service: 'accounting', queue: 'accounting.invoice-issued', at: 30, outcome: 'none' });
  return { correlationId: f.correlationId, hops: f.hops(), messageIds: [order, payment, shipment], now: f.now(2000), skewMs: { ...options.skewMs } };
}

/** order-api publishes `order.cancelled` as mandatory to an exchange with no binding: returned 312 NO_ROUTE. */
export function unroutableChain(options: ChainFixtureOptions = {}): ChainFixtureResult {
  const f = new ChainFixture(options);
  const id = f.publish({
    service: 'order-api',
    at: 0,
    exchange: 'orders',
    routingKey: 'order.cancelled',
    messageType: 'OrderCancelled',
    returned: { replyCode: 312, replyText: 'NO_ROUTE' },
    confirm: 3,
  });
  return { correlationId: f.correlationId, hops: f.hops(), messageIds: [id], now: f.now(300_000), skewMs: { ...options.skewMs } };
}

export interface RedeliveryLoopOptions extends ChainFixtureOptions {
  /** Attempts in total (the first delivery plus redeliveries). @default 7 */
  attempts?: number;
  /** Whether the last attempt finally succeeds. @default false */
  recovers?: boolean;
}

/** billing's handler throws and nacks with requeue, over and over: a poison message. */
export function redeliveryLoopChain(options: RedeliveryLoopOptions = {}): ChainFixtureResult {
  const f = new ChainFixture(options);
  const attempts = options.attempts ?? 7;
  const id = f.publish({ service: 'order-api', at: 0, exchange: 'orders', routingKey: 'order.placed', messageType: 'OrderPlaced' });
  for (let k = 0; k < attempts; k++) {
    const last = k === attempts - 1;
    const ok = last && options.recovers === true;
    f.consume({
      messageId: id,
      service: 'billing',
      queue: 'billing.order-placed',
      at: 10 + k * 25,
      handleMs: 4,
      redelivered: k > 0,
      outcome: ok ? 'ok' : 'error',
      error: { type: 'SyntaxError', message: 'Unexpected token } in JSON at position 112' },
      settle: ok ? 'ack' : 'nack',
      requeue: true,
    });
  }
  return { correlationId: f.correlationId, hops: f.hops(), messageIds: [id], now: f.now(), skewMs: { ...options.skewMs } };
}

/**
 * Two problems in one chain: billing's handler fails and rejects OrderPlaced
 * without requeue, and no dead-lettered copy ever shows up (discarded, once
 * past the lost limit); later shipping never receives the ShipmentRequested
 * that inventory published (lost).
 */
export function twoProblemChain(options: LimitScenarioOptions = {}): ChainFixtureResult {
  const f = new ChainFixture(options);
  const order = f.publish({ service: 'order-api', at: 0, exchange: 'orders', routingKey: 'order.placed', messageType: 'OrderPlaced' });
  f.consume({
    messageId: order,
    service: 'billing',
    queue: 'billing.order-placed',
    at: 8,
    outcome: 'error',
    error: { type: 'PaymentDeclinedError', message: 'card declined' },
    settle: 'reject',
    requeue: false,
  });
  f.consume({ messageId: order, service: 'inventory', queue: 'inventory.order-placed', at: 20, handleMs: 10 });
  const shipment = f.publish({ service: 'inventory', at: 26, exchange: 'shipments', routingKey: 'shipment.requested', messageType: 'ShipmentRequested', causedBy: order });
  return { correlationId: f.correlationId, hops: f.hops(), messageIds: [order, shipment], now: f.now(options.ageMs ?? 300_000), skewMs: { ...options.skewMs } };
}

export interface LargeChainOptions extends ChainFixtureOptions {
  /** Services the messages travel between. @default 8 services */
  services?: string[];
}

/**
 * A healthy chain of exactly `n` hops (n ≥ 15): a tree of events where each
 * handler publishes up to two follow-ups, every message received, processed
 * and acked by one of `services` (some published with confirms to hit `n`
 * exactly). Deterministic for a given `n` and `seed`.
 */
export function largeChain(n: number, options: LargeChainOptions = {}): ChainFixtureResult {
  const services = options.services ?? ['gateway', 'orders', 'billing', 'inventory', 'shipping', 'notifications', 'analytics', 'loyalty'];
  const f = new ChainFixture(options);
  // n = 4a + 5b: b messages carry a confirm.
  let withConfirm = n % 4;
  let total = (n - 5 * withConfirm) / 4 + withConfirm;
  if (n < 15) {
    withConfirm = 0;
    total = Math.max(1, Math.floor(n / 4));
  }
  let rnd = (options.seed ?? 1) * 2654435761;
  const random = (): number => {
    rnd = (Math.imul(rnd ^ (rnd >>> 15), 2246822507) + 0x6d2b79f5) >>> 0;
    return rnd / 2 ** 32;
  };
  const ids: string[] = [];
  const queue: { id: string; consumer: string; at: number }[] = [];
  const publish = (service: string, at: number, causedBy: string | undefined): void => {
    const k = ids.length;
    const consumer = services[(services.indexOf(service) + 1 + Math.floor(random() * (services.length - 1))) % services.length];
    const type = EVENT_NAMES[k % EVENT_NAMES.length];
    const id = f.publish({
      service,
      at,
      exchange: 'events',
      routingKey: `${type.toLowerCase()}.${k}`,
      messageType: type,
      causedBy,
      confirm: k < withConfirm ? 2 : undefined,
    });
    ids.push(id);
    queue.push({ id, consumer, at: at + 3 + Math.floor(random() * 20) });
  };
  publish(services[0], 0, undefined);
  while (queue.length > 0) {
    const { id, consumer, at } = queue.shift()!;
    const handle = 2 + Math.floor(random() * 15);
    f.consume({ messageId: id, service: consumer, queue: `${consumer}.q${ids.indexOf(id) % 5}`, at, handleMs: handle });
    for (let c = 0; c < 2 && ids.length < total; c++) publish(consumer, at + 1 + c, id);
  }
  return { correlationId: f.correlationId, hops: f.hops(), messageIds: ids, now: f.now(), skewMs: { ...options.skewMs } };
}

/** A deterministic shuffle (seeded), for arrival-order tests. */
export function shuffled<T>(items: readonly T[], seed = 42): T[] {
  const out = [...items];
  let s = seed >>> 0 || 1;
  for (let i = out.length - 1; i > 0; i--) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** The same hops with new store ids (as if ingested in this order into a fresh store). */
export function withFreshIds(hops: readonly StoredHop[], firstId = 1000): StoredHop[] {
  return hops.map((h, k) => ({ ...h, id: firstId + k }));
}

/** A content key for one hop, independent of store ids: `service kind messageId queue#deliveryTag`. */
export function hopKey(h: Pick<HopRecord, 'service' | 'kind' | 'messageId' | 'queue' | 'deliveryTag'> & { kind: HopKind }): string {
  return `${h.service} ${h.kind} ${h.messageId}${h.queue ? ` ${h.queue}` : ''}${h.deliveryTag === undefined ? '' : `#${h.deliveryTag}`}`;
}
