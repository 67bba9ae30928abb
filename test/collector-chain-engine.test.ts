import { describe, expect, it } from 'vitest';
import type { ChainDetail, StoredHop } from '../collector/api-types.ts';
import { buildChain, chainIsSettled, DEFAULT_ENGINE_OPTIONS, summarizeChain } from '../collector/chain-engine.ts';
import {
  ChainFixture,
  deadLetterChain,
  fanOutChain,
  hopKey,
  largeChain,
  lostMessageChain,
  redeliveryLoopChain,
  shuffled,
  stuckMessageChain,
  threeServiceChain,
  withFreshIds,
  type ChainFixtureResult,
} from './helpers/chain-fixtures.ts';

const build = (f: Pick<ChainFixtureResult, 'correlationId' | 'hops' | 'now'>, hops: readonly StoredHop[] = f.hops): ChainDetail =>
  buildChain(f.correlationId, hops, { ...DEFAULT_ENGINE_OPTIONS, now: f.now });

const sequence = (d: ChainDetail): string[] => d.hops.map(hopKey);

/** Every hop after every hop it must follow: send → receive → process/settle, parent handling → child send. */
function expectCausal(d: ChainDetail): void {
  const seqOf = (pred: (h: ChainDetail['hops'][number]) => boolean): number[] => d.hops.filter(pred).map((h) => h.seq);
  for (const m of d.messages) {
    const send = seqOf((h) => h.messageId === m.messageId && h.kind === 'send')[0];
    for (const h of d.hops.filter((x) => x.messageId === m.messageId && x.kind !== 'send')) {
      if (send !== undefined) expect(h.seq, `${hopKey(h)} after its send`).toBeGreaterThan(send);
    }
    for (const child of m.childMessageIds) {
      const childSend = seqOf((h) => h.messageId === child && h.kind === 'send')[0];
      const parentReceive = seqOf((h) => h.messageId === m.messageId && h.kind === 'receive')[0];
      if (childSend !== undefined && parentReceive !== undefined) expect(childSend).toBeGreaterThan(parentReceive);
    }
  }
  d.hops.forEach((h, i) => expect(h.seq).toBe(i));
}

describe('buildChain', () => {
  it('orders a linear three-service chain causally, message by message', () => {
    const f = threeServiceChain();
    const d = build(f);
    const [order, payment] = f.messageIds;
    expect(d.hops.map((h) => `${h.service} ${h.kind}`)).toEqual([
      'order-api send',
      'billing receive',
      'billing send',
      'billing process',
      'billing settle',
      'shipping receive',
      'shipping process',
      'shipping settle',
    ]);
    expectCausal(d);
    expect(d.status).toBe('ok');
    expect(d.problems).toEqual([]);
    expect(d.firstFailure).toBeUndefined();
    expect(d.services).toEqual(['order-api', 'billing', 'shipping']);
    expect(d.rootMessageIds).toEqual([order]);
    expect(d.messages.map((m) => m.messageId)).toEqual([order, payment]);
    expect(d.messages[0]).toMatchObject({ childMessageIds: [payment], status: 'ok', messageType: 'OrderPlaced' });
    expect(d.messages[1]).toMatchObject({ parentMessageId: order, childMessageIds: [], messageType: 'PaymentCaptured' });
    expect(d.hopCount).toBe(8);
    expect(d.messageCount).toBe(2);
    expect(d.traceIds).toHaveLength(1);
    expect(d.durationMs).toBe(d.endTs - d.startTs);
  });

  it('reports each message’s publisher, queue wait, handling time and settle', () => {
    const f = threeServiceChain();
    const d = build(f);
    const order = d.messages[0];
    expect(order.publisher).toMatchObject({ service: 'order-api', exchange: 'orders', routingKey: 'order.placed', ts: f.hops[0].ts });
    expect(order.deliveries).toEqual([
      expect.objectContaining({
        service: 'billing',
        queue: 'billing.order.placed',
        queueWaitMs: 12,
        handlingMs: 8,
        settle: { outcome: 'ack', requeue: false },
        errors: 0,
        redeliveries: 0,
      }),
    ]);
    expect(order.queueWaitMs).toBe(12);
    expect(order.handlingMs).toBe(8);
    expect(order.redeliveryCount).toBe(0);
    expect(order.deadLetters).toEqual([]);
    const ids = new Set(order.hopIds);
    expect(d.hops.filter((h) => ids.has(h.id)).map((h) => h.id)).toEqual(order.hopIds);
  });

  it('gives the same chain for hops arriving in reverse and shuffled order', () => {
    const f = largeChain(200, { skewMs: { billing: -90_000, shipping: 45_000 } });
    const reference = build(f);
    for (const arrival of [[...f.hops].reverse(), shuffled(f.hops, 7), shuffled(f.hops, 99)]) {
      const d = build(f, withFreshIds(arrival, 5000));
      expect(sequence(d)).toEqual(sequence(reference));
      expect(d.skew).toEqual(reference.skew);
      expect(d.messages.map((m) => [m.messageId, m.status, m.childMessageIds, m.queueWaitMs])).toEqual(
        reference.messages.map((m) => [m.messageId, m.status, m.childMessageIds, m.queueWaitMs]),
      );
      expect(d.hops.map((h) => h.adjustedTs)).toEqual(reference.hops.map((h) => h.adjustedTs));
    }
    expectCausal(reference);
  });

  it('gives a fan-out (one event, three consumers) one delivery per queue and service', () => {
    const f = fanOutChain();
    const d = build(f);
    expect(d.messageCount).toBe(1);
    expect(d.status).toBe('ok');
    const [m] = d.messages;
    expect(m.deliveries.map((x) => [x.service, x.queue, x.queueWaitMs, x.handlingMs, x.settle?.outcome])).toEqual([
      ['billing', 'billing.order-placed', 9, 14, 'ack'],
      ['shipping', 'shipping.order-placed', 11, 6, 'ack'],
      ['notifications', 'notifications.order-placed', 15, 30, 'ack'],
    ]);
    // The three consumers ran in parallel: the message's figures are the critical (longest) delivery's, never a sum.
    expect(m.criticalDelivery).toBe(2);
    expect(m.queueWaitMs).toBe(15);
    expect(m.handlingMs).toBe(30);
    expect(d.hops.slice(0, 2).map((h) => h.kind)).toEqual(['send', 'confirm']);
    expectCausal(d);
  });

  it('links a dead-lettered copy to the queue it came from and the dead-letter queue that got it', () => {
    const f = deadLetterChain();
    const d = build(f);
    const [m] = d.messages;
    expect(m.deliveries.map((x) => x.queue)).toEqual(['billing.order-placed', 'billing.order-placed.dlq']);
    expect(m.deadLetters).toEqual([
      {
        queue: 'billing.order-placed',
        reason: 'rejected',
        count: 1,
        exchange: 'orders',
        routingKeys: ['order.placed'],
        deadLetterQueue: 'billing.order-placed.dlq',
      },
    ]);
    // The copy waited in the DLQ from the reject on, not from the original publish.
    expect(m.deliveries[1].queueWaitMs).toBeCloseTo(25 - 17.2, 3);
    const kinds = d.hops.map((h) => `${h.service} ${h.kind}`);
    expect(kinds.indexOf('dlq-monitor receive')).toBeGreaterThan(kinds.indexOf('billing settle'));
  });

  it('never throws on hops without queue, tags, causation or a send (OTLP consumers)', () => {
    const f = new ChainFixture();
    const order = f.publish({ service: 'order-api', at: 0, exchange: 'orders', routingKey: 'order.placed' });
    f.consume({ messageId: order, service: 'billing', queue: 'billing.q', at: 5, omit: ['queue', 'deliveryTag', 'consumerTag', 'receive'] });
    const orphan = new ChainFixture({ correlationId: f.correlationId, firstId: 100, seed: 2 });
    const foreign = 'msg-from-an-uninstrumented-producer';
    orphan.consume({ messageId: foreign, service: 'python-worker', queue: 'work', at: 3, omit: ['consumerTag', 'deliveryTag'] });
    const hops = [...f.hops(), ...orphan.hops()];
    const d = buildChain(f.correlationId, hops, { ...DEFAULT_ENGINE_OPTIONS, now: f.now() });
    expect(d.hopCount).toBe(hops.length);
    expect(d.rootMessageIds).toEqual(expect.arrayContaining([order, foreign]));
    const billing = d.messages.find((m) => m.messageId === order)!;
    expect(billing.deliveries).toHaveLength(1);
    expect(billing.deliveries[0]).toMatchObject({ service: 'billing', queue: '', handlingMs: 5, settle: { outcome: 'ack' } });
    const worker = d.messages.find((m) => m.messageId === foreign)!;
    expect(worker.publisher).toBeUndefined();
    expect(worker.status).toBe('ok');
    expect(worker.deliveries[0].queueWaitMs).toBeUndefined();
    expect(d.status).toBe('ok');
  });

  it('returns an empty ok chain for no hops', () => {
    const d = buildChain('nothing', [], { ...DEFAULT_ENGINE_OPTIONS, now: 0 });
    expect(d).toMatchObject({ status: 'ok', problems: [], hopCount: 0, messageCount: 0, hops: [], messages: [], skew: [], startTs: 0, endTs: 0 });
  });

  it('never changes the hops it was given', () => {
    const f = deadLetterChain({ skewMs: { billing: -60_000 } });
    const before = structuredClone(f.hops);
    const d = build(f);
    expect(f.hops).toEqual(before);
    for (const h of d.hops) expect(h.ts).toBe(before.find((b) => b.id === h.id)!.ts);
  });

  it('builds a 1,000-hop chain completely and causally', () => {
    const f = largeChain(1000, { skewMs: { billing: -120_000, analytics: 30_000 } });
    expect(f.hops).toHaveLength(1000);
    const d = build(f);
    expect(d.hopCount).toBe(1000);
    expect(new Set(d.hops.map((h) => h.id)).size).toBe(1000);
    expect(d.messageCount).toBe(f.messageIds.length);
    expect(d.rootMessageIds).toEqual([f.messageIds[0]]);
    expect(d.status).toBe('ok');
    expectCausal(d);
    for (const m of d.messages) expect(m.queueWaitMs).toBeGreaterThanOrEqual(0);
  });
});

describe('per-delivery figures and open waits', () => {
  it('gives a dead-lettered message the figures of its slowest delivery, and each delivery its own wait', () => {
    // The barista waits 167 ms and fails after 34 ms; the dead-letter monitor gets the copy 5 ms after the nack.
    const f = new ChainFixture();
    const id = f.publish({ service: 'customer', at: 0, exchange: '', routingKey: 'orders' });
    f.consume({ messageId: id, service: 'barista', queue: 'orders', at: 167, handleMs: 34, outcome: 'error', settle: 'nack', requeue: false });
    f.consume({
      messageId: id,
      service: 'dead-letter-monitor',
      queue: 'dead-letters',
      at: 206.2,
      handleMs: 0.2,
      death: [{ queue: 'orders', reason: 'rejected', count: 1, exchange: '', routingKeys: ['orders'], time: f.start + 201 }],
    });
    const d = build({ correlationId: f.correlationId, hops: f.hops(), now: f.now() });
    const [m] = d.messages;
    expect(m.deliveries.map((x) => [x.service, x.queueWaitMs, x.handlingMs])).toEqual([
      ['barista', 167, 34],
      ['dead-letter-monitor', expect.closeTo(5, 3), 0.2],
    ]);
    expect(m).toMatchObject({ criticalDelivery: 0, queueWaitMs: 167, handlingMs: 34 });
    // Each delivery lists its own hops, in causal order.
    expect(m.deliveries[1].hopIds).toEqual(d.hops.filter((h) => h.service === 'dead-letter-monitor').map((h) => h.id));
    // The copy's wait starts at the nack that dead-lettered it.
    const nack = d.hops.find((h) => h.kind === 'settle' && h.service === 'barista')!;
    const dlqReceive = d.hops.find((h) => h.kind === 'receive' && h.service === 'dead-letter-monitor')!;
    expect(dlqReceive.waitSinceHopId).toBe(nack.id);
    const firstReceive = d.hops.find((h) => h.kind === 'receive' && h.service === 'barista')!;
    expect(firstReceive.waitSinceHopId).toBe(d.hops[0].id);
  });

  it('starts each redelivery’s wait at the settle that requeued it', () => {
    const d = build(redeliveryLoopChain({ attempts: 4 }));
    const receives = d.hops.filter((h) => h.kind === 'receive');
    const settles = d.hops.filter((h) => h.kind === 'settle');
    expect(receives.map((r) => r.waitSinceHopId)).toEqual([d.hops[0].id, settles[0].id, settles[1].id, settles[2].id]);
  });

  it('lists what a chain still waits for, and how long, lost and stuck included', () => {
    const stuck = stuckMessageChain({ ageMs: 56_000 + 60_000 });
    const d = build(stuck);
    const receive = d.hops.find((h) => h.kind === 'receive')!;
    expect(d.judgedAt).toBe(stuck.now);
    expect(d.open).toEqual([
      { kind: 'unsettled', status: 'stuck', messageId: receive.messageId, hopId: receive.id, service: 'billing', queue: 'billing.order-placed', waitedMs: stuck.now - receive.ts },
    ]);
    expect(build(threeServiceChain()).open).toEqual([]);
  });

  it('says what failed before a retry succeeded', () => {
    const d = build(redeliveryLoopChain({ attempts: 3, recovers: true }));
    expect(d.status).toBe('ok');
    const firstError = d.hops.find((h) => h.kind === 'process' && h.outcome === 'error')!;
    expect(d.recoveries).toEqual([
      {
        messageId: d.messages[0].messageId,
        service: 'billing',
        queue: 'billing.order-placed',
        attempts: 3,
        errors: [{ text: 'SyntaxError: Unexpected token } in JSON at position 112', count: 2 }],
        requeues: 2,
        hopId: firstError.id,
      },
    ]);
  });
});

describe('summarizeChain', () => {
  it('names the failing service and reason, and where lost and stuck messages stopped', () => {
    const lost = build(lostMessageChain());
    const s = summarizeChain(lost, 1);
    expect(s.failure).toEqual({ status: 'lost', service: 'billing', kind: 'send', reason: lost.firstFailure!.reason });
    expect(s.open).toBe(true);
    const send = lost.hops.find((h) => h.kind === 'send' && h.service === 'billing')!;
    expect(s.stalled).toEqual([{ status: 'lost', from: 'service:billing', to: 'exchange:payments', count: 1, ts: send.ts }]);

    const stuck = build(stuckMessageChain());
    const receive = stuck.hops.find((h) => h.kind === 'receive')!;
    expect(summarizeChain(stuck, 1).stalled).toEqual([
      { status: 'stuck', from: 'queue:billing.order-placed', to: 'service:billing', count: 1, ts: receive.ts },
    ]);

    // Through the default exchange, a lost message stopped at the queue its routing key names.
    const f = new ChainFixture();
    f.publish({ service: 'customer', at: 0, exchange: '', routingKey: 'refunds' });
    const refund = summarizeChain(build({ correlationId: f.correlationId, hops: f.hops(), now: f.now(120_000) }), 1);
    expect(refund.stalled).toEqual([{ status: 'lost', from: 'exchange:', to: 'queue:refunds', count: 1, ts: f.hops()[0].ts }]);
  });

  it('fills every list field from the chain and labels it by the root message', () => {
    const f = threeServiceChain();
    const d = build(f);
    expect(summarizeChain(d, 1234)).toEqual({
      correlationId: f.correlationId,
      status: 'ok',
      problems: [],
      redelivered: false,
      services: ['order-api', 'billing', 'shipping'],
      traceIds: d.traceIds,
      hopCount: 8,
      messageCount: 2,
      startTs: d.startTs,
      endTs: d.endTs,
      durationMs: d.durationMs,
      rootRoutingKey: 'order.placed',
      rootMessageType: 'OrderPlaced',
      updatedAt: 1234,
    });
  });

  it('labels a chain without a recorded publish by its first receive', () => {
    const f = new ChainFixture();
    f.consume({ messageId: 'm-1', service: 'worker', queue: 'jobs', at: 0 });
    const s = summarizeChain(build({ correlationId: f.correlationId, hops: f.hops(), now: f.now() }), 1);
    expect(s.rootRoutingKey).toBe('event');
    expect(chainIsSettled(build({ correlationId: f.correlationId, hops: f.hops(), now: f.now() }))).toBe(true);
  });
});
