/**
 * Realistic hop records, fast and deterministic, for the ingest, query and
 * memory benchmarks: what a fleet of instrumented services would log.
 *
 * Chains are trees of messages. Each message is a `send` (and usually a
 * `confirm`) by its publisher, then per consumer a `receive`, `process` and
 * `settle`; handlers publish child messages. Most chains are small (3–12
 * hops: one to three messages, a fan-out of two); one chain in
 * `longChainEvery` is a 1,000-hop batch job (one message whose handler
 * publishes 199 children). A few per cent go wrong:
 * a handler error nacked into a dead-letter queue, a message never received
 * (lost), a delivery never settled (stuck), a redelivery. Services have small
 * clock offsets, as real hosts do.
 *
 * Records carry what the library writes (application headers, the AMQP
 * properties that are not hop fields, body size, addressing), so bytes per
 * hop in the store are representative.
 */
import type { HopRecord } from '../../src/contract/hop.ts';
import { seededRandom } from './stats.ts';

export interface GeneratorOptions {
  /** Same seed, same hops. Use another seed for hops that must not collide with an existing store. */
  seed: number;
  /** Time of the first chain, epoch ms. */
  startTs: number;
  /** Average gap between chain starts, ms. */
  chainGapMs: number;
  /** One chain in this many is a 1,000-hop chain. 0: none. @default 1200 */
  longChainEvery?: number;
}

export interface GeneratedChain {
  correlationId: string;
  /** The chain's hops, in the order they happened. */
  hops: HopRecord[];
  long: boolean;
}

interface Flow {
  publisher: string;
  exchange: string;
  routingKey: string;
  type: string;
  /** Consumers: service and the queue it reads. */
  consumers: { service: string; queue: string }[];
  /** Flows a consumer's handler may publish next (indexes into FLOWS). */
  next: number[];
}

const FLOWS: Flow[] = [
  { publisher: 'member', exchange: 'member.events', routingKey: 'member.auth.reset', type: 'member.auth.reset', consumers: [{ service: 'family-account', queue: 'family-account.member-events' }], next: [1] },
  { publisher: 'family-account', exchange: 'family.events', routingKey: 'family.member.withdrawn', type: 'family.member.withdrawn', consumers: [{ service: 'notification', queue: 'notification.family-events' }, { service: 'audit', queue: 'audit.all-events' }], next: [] },
  { publisher: 'storefront', exchange: 'orders', routingKey: 'order.placed', type: 'order.placed', consumers: [{ service: 'barista', queue: 'orders.coffee' }], next: [3, 4] },
  { publisher: 'barista', exchange: 'orders', routingKey: 'order.ready', type: 'order.ready', consumers: [{ service: 'notification', queue: 'notification.orders' }], next: [] },
  { publisher: 'barista', exchange: 'billing', routingKey: 'invoice.requested', type: 'invoice.requested', consumers: [{ service: 'billing', queue: 'billing.invoices' }], next: [5] },
  { publisher: 'billing', exchange: 'payments', routingKey: 'payment.captured', type: 'payment.captured', consumers: [{ service: 'ledger', queue: 'ledger.payments' }], next: [] },
  { publisher: 'inventory', exchange: '', routingKey: 'inventory.restock', type: 'inventory.restock', consumers: [{ service: 'warehouse', queue: 'inventory.restock' }], next: [7] },
  { publisher: 'warehouse', exchange: 'shipping', routingKey: 'shipment.created', type: 'shipment.created', consumers: [{ service: 'shipping', queue: 'shipping.shipments' }], next: [] },
  { publisher: 'search', exchange: 'search', routingKey: 'catalog.reindex', type: 'catalog.reindex', consumers: [{ service: 'indexer', queue: 'search.reindex' }], next: [9] },
  { publisher: 'indexer', exchange: 'search', routingKey: 'catalog.page.indexed', type: 'catalog.page.indexed', consumers: [{ service: 'search', queue: 'search.pages' }], next: [] },
];
const ROOT_FLOWS = [0, 2, 2, 2, 4, 6];
const LONG_ROOT = 8;
const LONG_CHILD = 9;

/** Small clock offsets per service, ms: hosts never agree exactly. */
const SKEW: Record<string, number> = { barista: 4, billing: -7, notification: 12, ledger: 2, warehouse: -3, audit: 25 };

const HEX = '0123456789abcdef';
const TENANTS = ['acme', 'globex', 'initech', 'umbrella', 'hooli'];

export class HopGenerator {
  readonly #random: () => number;
  readonly #options: Required<GeneratorOptions>;
  #chainIndex = 0;
  #nextStart: number;
  #deliveryTags = new Map<string, number>();

  constructor(options: GeneratorOptions) {
    this.#options = { longChainEvery: 1200, ...options };
    this.#random = seededRandom(options.seed);
    this.#nextStart = options.startTs;
  }

  #hex(n: number): string {
    let s = '';
    for (let i = 0; i < n; i++) s += HEX[(this.#random() * 16) | 0];
    return s;
  }

  /** UUIDv7-shaped: 48-bit ms timestamp, version 7, variant 10, random rest. */
  #uuidv7(ts: number): string {
    const ms = Math.floor(ts).toString(16).padStart(12, '0');
    const r = this.#hex(19);
    return `${ms.slice(0, 8)}-${ms.slice(8)}-7${r.slice(0, 3)}-${HEX[8 + ((this.#random() * 4) | 0)]}${r.slice(3, 6)}-${r.slice(6, 18)}`;
  }

  #between(lo: number, hi: number): number {
    return lo + this.#random() * (hi - lo);
  }

  #instance(service: string): string {
    return `${service}-${(this.#random() * 3) | 0}.prod.internal/${1000 + ((this.#random() * 40) | 0)}`;
  }

  #tag(key: string): number {
    const n = (this.#deliveryTags.get(key) ?? 0) + 1;
    this.#deliveryTags.set(key, n);
    return n;
  }

  /** The next chain; start times advance by about `chainGapMs` each. */
  next(): GeneratedChain {
    const index = this.#chainIndex++;
    const startTs = this.#nextStart;
    this.#nextStart += this.#options.chainGapMs * this.#between(0.2, 1.8);
    const every = this.#options.longChainEvery;
    const long = every > 0 && index % every === every - 1;
    const hops: HopRecord[] = [];
    const traceId = this.#hex(32);
    const ctx = { hops, traceId, correlationId: '' };
    if (long) this.#longChain(ctx, startTs);
    else this.#smallChain(ctx, startTs);
    hops.sort((a, b) => a.ts - b.ts);
    return { correlationId: ctx.correlationId, hops, long };
  }

  #smallChain(ctx: ChainCtx, startTs: number): void {
    const flow = ROOT_FLOWS[(this.#random() * ROOT_FLOWS.length) | 0];
    // Depth: one message, or the flow's follow-ups (one or two levels).
    const depth = this.#random() < 0.45 ? 0 : this.#random() < 0.7 ? 1 : 2;
    this.#message(ctx, flow, startTs, undefined, undefined, depth);
  }

  #longChain(ctx: ChainCtx, startTs: number): void {
    // A reindex job: one message (5 hops) whose handler publishes 199 pages (5 hops each): 1,000 hops.
    const root = this.#message(ctx, LONG_ROOT, startTs, undefined, undefined, -1, { alwaysOk: true, confirm: true });
    let t = root.processStart;
    for (let i = 0; i < 199; i++) {
      t += this.#between(5, 60);
      this.#message(ctx, LONG_CHILD, t, root.messageId, root.spanId, -1, { alwaysOk: true, confirm: true });
    }
  }

  /**
   * Emit one message's hops (and, `depth` > 0, its children's). Returns what
   * a child needs: the message id, the consumer's process span and start.
   */
  #message(
    ctx: ChainCtx,
    flowIndex: number,
    sendTs: number,
    causationId: string | undefined,
    parentSpanId: string | undefined,
    depth: number,
    force?: { alwaysOk?: boolean; confirm?: boolean },
  ): { messageId: string; spanId: string; processStart: number } {
    const flow = FLOWS[flowIndex];
    const messageId = this.#uuidv7(sendTs);
    if (!ctx.correlationId) ctx.correlationId = messageId;
    const sendSpan = this.#hex(16);
    const bodySize = 180 + ((this.#random() * 900) | 0);
    const publisherInstance = this.#instance(flow.publisher);
    // As the library records them: the application's own headers only (hoptrace's
    // traceparent and id headers are already fields of the hop), and the AMQP
    // properties that are not fields of the hop either.
    const headers: Record<string, string> | undefined =
      this.#random() < 0.6 ? { 'x-tenant': TENANTS[(this.#random() * TENANTS.length) | 0], 'x-schema-version': '3' } : undefined;
    const sendProperties = { deliveryMode: 2 };
    const properties = { deliveryMode: 2, timestamp: Math.floor(sendTs / 1000) };
    const common = {
      v: 1 as const,
      traceId: ctx.traceId,
      correlationId: ctx.correlationId,
      messageId,
      exchange: flow.exchange,
      routingKey: flow.routingKey,
      messageType: flow.type,
      contentType: 'application/json',
      bodySize,
    };
    const skewP = SKEW[flow.publisher] ?? 0;
    ctx.hops.push({
      ...common,
      kind: 'send',
      ts: sendTs + skewP,
      service: flow.publisher,
      instance: publisherInstance,
      spanId: sendSpan,
      ...(parentSpanId ? { parentSpanId } : {}),
      ...(causationId ? { causationId } : {}),
      ...(headers ? { headers } : {}),
      properties: sendProperties,
    });
    if (force?.confirm || this.#random() < 0.7) {
      const latency = this.#between(0.4, 6);
      ctx.hops.push({
        ...common,
        kind: 'confirm',
        ts: sendTs + skewP + latency,
        service: flow.publisher,
        instance: publisherInstance,
        spanId: sendSpan,
        ...(causationId ? { causationId } : {}),
        outcome: 'ack',
        durationMs: Math.round(latency * 1000) / 1000,
      });
    }

    // What happens to it, decided once per message.
    const roll = force?.alwaysOk ? 1 : this.#random();
    const lost = roll < 0.004;
    const fails = roll >= 0.004 && roll < 0.034;
    const stuck = roll >= 0.034 && roll < 0.038;
    const redelivered = roll >= 0.038 && roll < 0.048;
    let processStart = sendTs;
    let processSpan = sendSpan;
    if (lost) return { messageId, spanId: sendSpan, processStart };

    for (const consumer of flow.consumers) {
      const skewC = SKEW[consumer.service] ?? 0;
      const instance = this.#instance(consumer.service);
      const consumerTag = `amq.ctag-${this.#hex(22)}`;
      const wait = this.#random() < 0.03 ? this.#between(500, 30_000) : this.#between(0.5, 40);
      let t = sendTs + wait;
      const attempts = redelivered ? 2 : 1;
      for (let attempt = 0; attempt < attempts; attempt++) {
        const span = this.#hex(16);
        const deliveryTag = this.#tag(instance + consumer.queue);
        const delivery = {
          ...common,
          service: consumer.service,
          instance,
          queue: consumer.queue,
          consumerTag,
          deliveryTag,
          spanId: span,
          parentSpanId: sendSpan,
          ...(causationId ? { causationId } : {}),
        };
        ctx.hops.push({ ...delivery, kind: 'receive', ts: t + skewC, redelivered: attempt > 0, ...(headers ? { headers } : {}), properties });
        if (stuck) break;
        const handling = this.#between(0.3, 120);
        processStart = t + 0.05;
        processSpan = span;
        const last = attempt === attempts - 1;
        const error = fails || (redelivered && !last);
        ctx.hops.push({
          ...delivery,
          kind: 'process',
          ts: t + handling + skewC,
          outcome: error ? 'error' : 'ok',
          durationMs: Math.round(handling * 1000) / 1000,
          ...(error
            ? {
                error: fails
                  ? { type: 'TypeError', message: "Cannot read properties of undefined (reading 'memberId')", stack: STACK }
                  : { type: 'Error', message: 'connect ECONNRESET 10.0.4.17:5432', code: 'ECONNRESET', stack: STACK },
              }
            : {}),
        });
        ctx.hops.push({
          ...delivery,
          kind: 'settle',
          ts: t + handling + 0.2 + skewC,
          outcome: error ? 'nack' : 'ack',
          ...(error ? { requeue: !fails } : {}),
        });
        t += handling + this.#between(1, 20);
      }
      if (fails) {
        // Nacked without requeue: the dead-letter queue's consumer sees x-death.
        const dlqTs = t + this.#between(1, 10);
        const death = [
          { queue: consumer.queue, reason: 'rejected', count: 1, exchange: flow.exchange, routingKeys: [flow.routingKey], time: Math.floor(dlqTs / 1000) * 1000 },
        ];
        const span = this.#hex(16);
        const dlq = {
          ...common,
          exchange: 'dead-letters',
          service: 'dead-letter-monitor',
          instance: this.#instance('dead-letter-monitor'),
          queue: 'dead-letters.all',
          consumerTag: `amq.ctag-${this.#hex(22)}`,
          deliveryTag: this.#tag('dlq'),
          spanId: span,
          parentSpanId: sendSpan,
          ...(causationId ? { causationId } : {}),
        };
        ctx.hops.push({ ...dlq, kind: 'receive', ts: dlqTs, redelivered: false, deathCount: 1, death, ...(headers ? { headers } : {}), properties });
        ctx.hops.push({ ...dlq, kind: 'process', ts: dlqTs + 1.5, outcome: 'ok', durationMs: 1.4 });
        ctx.hops.push({ ...dlq, kind: 'settle', ts: dlqTs + 1.7, outcome: 'ack' });
        return { messageId, spanId: processSpan, processStart };
      }
      if (stuck) return { messageId, spanId: processSpan, processStart };
    }

    if (depth > 0 && flow.next.length > 0) {
      const child = flow.next[(this.#random() * flow.next.length) | 0];
      this.#message(ctx, child, processStart + this.#between(0.2, 5), messageId, processSpan, depth - 1);
    }
    return { messageId, spanId: processSpan, processStart };
  }
}

interface ChainCtx {
  hops: HopRecord[];
  traceId: string;
  correlationId: string;
}

const STACK = [
  "TypeError: Cannot read properties of undefined (reading 'memberId')",
  '    at withdrawMember (/srv/app/src/handlers/withdraw-member.ts:42:31)',
  '    at handle (/srv/app/src/consumer.ts:88:13)',
  '    at process.processTicksAndRejections (node:internal/process/task_queues:105:5)',
].join('\n');

/**
 * Hops in arrival order, the way a collector sees them: chains overlap in
 * time (a 1,000-hop chain spans a minute of other traffic), so hops are
 * merged by timestamp across chains. Yields exactly `total` hops; the chains
 * cut at the end are left incomplete, as in any real window.
 */
export function* hopsInTimeOrder(generator: HopGenerator, total: number): Generator<HopRecord> {
  const heap = new MinHeap<HopRecord>((h) => h.ts);
  let emitted = 0;
  for (;;) {
    const chain = generator.next();
    const start = chain.hops[0].ts;
    // Everything pending that happened before this chain began can go out now.
    while (heap.size > 0 && heap.peekKey() < start) {
      yield heap.pop();
      if (++emitted >= total) return;
    }
    for (const hop of chain.hops) heap.push(hop);
    if (emitted + heap.size >= total + 5_000 && heap.size > 0) {
      // Enough queued to finish: drain in order.
      while (heap.size > 0) {
        yield heap.pop();
        if (++emitted >= total) return;
      }
    }
  }
}

/** Whole chains one after another (each contiguous): the cheapest order to bulk-load a store. */
export function* chainsUpTo(generator: HopGenerator, total: number): Generator<GeneratedChain> {
  let hops = 0;
  while (hops < total) {
    const chain = generator.next();
    if (hops + chain.hops.length > total) chain.hops.length = total - hops;
    hops += chain.hops.length;
    yield chain;
  }
}

/** A binary min-heap ordered by a number each item has. */
export class MinHeap<T> {
  #items: T[] = [];
  readonly #key: (item: T) => number;
  constructor(key: (item: T) => number) {
    this.#key = key;
  }
  get size(): number {
    return this.#items.length;
  }
  peekKey(): number {
    return this.#key(this.#items[0]);
  }
  push(item: T): void {
    const a = this.#items;
    const k = this.#key;
    a.push(item);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (k(a[p]) <= k(a[i])) break;
      [a[p], a[i]] = [a[i], a[p]];
      i = p;
    }
  }
  pop(): T {
    const a = this.#items;
    const k = this.#key;
    const top = a[0];
    const last = a.pop()!;
    if (a.length > 0) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && k(a[l]) < k(a[m])) m = l;
        if (r < a.length && k(a[r]) < k(a[m])) m = r;
        if (m === i) break;
        [a[m], a[i]] = [a[i], a[m]];
        i = m;
      }
    }
    return top;
  }
}
