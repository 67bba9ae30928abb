import { describe, expect, it } from 'vitest';
import type { ChainDetail } from '../collector/api-types.ts';
import { buildChain, chainIsSettled, DEFAULT_ENGINE_OPTIONS, type ChainEngineOptions } from '../collector/chain-engine.ts';
import { formatDuration } from '../collector/chain-diagnose.ts';
import {
  ChainFixture,
  deadLetterChain,
  inFlightChain,
  lostMessageChain,
  redeliveryLoopChain,
  stuckMessageChain,
  twoProblemChain,
  unroutableChain,
  type ChainFixtureResult,
} from './helpers/chain-fixtures.ts';

const build = (f: ChainFixtureResult, options: Partial<ChainEngineOptions> = {}): ChainDetail =>
  buildChain(f.correlationId, f.hops, { ...DEFAULT_ENGINE_OPTIONS, now: f.now, ...options });
const hop = (d: ChainDetail, id: number | undefined) => d.hops.find((h) => h.id === id)!;

describe('diagnosis', () => {
  it('diagnoses a handler error, a nack without requeue and the DLQ receive as dead-lettered, with reason and queue', () => {
    const d = build(deadLetterChain());
    const [m] = d.messages;
    expect(d.status).toBe('dead-lettered');
    expect(d.problems).toEqual(['dead-lettered', 'failed']);
    expect(m.status).toBe('dead-lettered');
    expect(m.statusReason).toBe(
      'dead-lettered from queue "billing.order-placed" (rejected) to queue "billing.order-placed.dlq" after the handler failed with PaymentDeclinedError: card declined: insufficient funds',
    );
    expect(m.deliveries[0]).toMatchObject({ errors: 1, settle: { outcome: 'nack', requeue: false } });
    expect(d.firstFailure).toMatchObject({ kind: 'process', messageId: m.messageId, status: 'dead-lettered' });
    expect(d.firstFailure!.reason).toContain('PaymentDeclinedError: card declined');
    expect(hop(d, d.firstFailure!.hopId)).toMatchObject({ service: 'billing', kind: 'process', outcome: 'error' });
  });

  it('keeps a reject without requeue in flight while a dead-lettered copy may arrive, then calls it discarded', () => {
    const f = new ChainFixture();
    const id = f.publish({ service: 'order-api', at: 0, exchange: 'orders', routingKey: 'order.placed' });
    const { settle } = f.consume({ messageId: id, service: 'billing', queue: 'billing.q', at: 4, settle: 'reject', requeue: false });
    const early = buildChain(f.correlationId, f.hops(), { ...DEFAULT_ENGINE_OPTIONS, now: f.now() });
    expect(early.status).toBe('in-flight');
    expect(early.messages[0].statusReason).toBe('rejected without requeue by billing on queue "billing.q"; a dead-lettered copy may still arrive');
    expect(early.open).toEqual([expect.objectContaining({ kind: 'dead-letter', status: 'in-flight', hopId: settle, queue: 'billing.q' })]);
    expect(chainIsSettled(early)).toBe(false);

    const d = buildChain(f.correlationId, f.hops(), { ...DEFAULT_ENGINE_OPTIONS, now: f.now(120_000) });
    expect(d.status).toBe('discarded');
    expect(d.messages[0].statusReason).toBe(
      'billing rejected it on queue "billing.q" without requeue; no dead-lettered copy seen within 60 s: RabbitMQ discards such a message unless the queue has a dead-letter exchange',
    );
    expect(d.messages[0].deadLetters).toEqual([{ queue: 'billing.q', reason: 'rejected', count: 1, exchange: 'orders', routingKeys: ['order.placed'] }]);
    expect(d.firstFailure).toMatchObject({ hopId: settle, kind: 'settle', status: 'discarded' });
    expect(d.open).toEqual([]);
  });

  it('diagnoses a message sent and never received past the limit as lost, naming its send', () => {
    const f = lostMessageChain();
    const d = build(f);
    const [order, payment] = f.messageIds;
    expect(d.status).toBe('lost');
    expect(d.messages.find((m) => m.messageId === order)!.status).toBe('ok');
    const lost = d.messages.find((m) => m.messageId === payment)!;
    expect(lost.status).toBe('lost');
    expect(lost.statusReason).toBe('sent by billing to exchange "payments" with routing key "payment.captured" 5 min ago and never received (limit 60 s)');
    expect(d.firstFailure).toMatchObject({ messageId: payment, kind: 'send', status: 'lost' });
    expect(chainIsSettled(d)).toBe(true);
  });

  it('keeps a message sent within the limit in flight, and a returned one is never lost', () => {
    const f = lostMessageChain();
    const young = build(f, { lostAfterMs: 10 * 60_000 });
    expect(young.status).toBe('in-flight');
    expect(young.problems).toEqual(['in-flight']);
    expect(young.messages[1].statusReason).toMatch(/^sent 5 min ago, not received yet$/);
    expect(young.firstFailure).toBeUndefined();
    expect(chainIsSettled(young)).toBe(false);

    const returned = build(unroutableChain());
    expect(returned.problems).toEqual(['unroutable']);
  });

  it('diagnoses a message received and never settled past the limit as stuck, naming its receive', () => {
    const f = stuckMessageChain();
    const d = build(f);
    expect(d.status).toBe('stuck');
    expect(d.messages[0].statusReason).toBe('received by billing from queue "billing.order-placed" 5 min ago and never settled (limit 60 s)');
    expect(d.firstFailure).toMatchObject({ kind: 'receive', status: 'stuck' });
    expect(hop(d, d.firstFailure!.hopId).service).toBe('billing');
  });

  it('diagnoses a handler that returned without settling as stuck once the limit passes', () => {
    const f = new ChainFixture();
    const id = f.publish({ service: 'cashier', at: 0, routingKey: 'receipt.print' });
    f.consume({ messageId: id, service: 'printer', queue: 'receipts', at: 3, settle: 'none' });
    const d = buildChain(f.correlationId, f.hops(), { ...DEFAULT_ENGINE_OPTIONS, now: f.now(61_000) });
    expect(d.status).toBe('stuck');
  });

  it('keeps unsent, unsettled and requeued work in flight within the limits', () => {
    const d = build(inFlightChain());
    expect(d.status).toBe('in-flight');
    expect(d.problems).toEqual(['in-flight']);
    expect(d.messages.map((m) => m.status)).toEqual(['ok', 'in-flight', 'in-flight']);
    expect(d.messages[2].statusReason).toBe('being handled by accounting on queue "accounting.invoice-issued"');
    expect(d.firstFailure).toBeUndefined();
  });

  it('diagnoses a returned publish as unroutable with the reply code', () => {
    const d = build(unroutableChain());
    expect(d.status).toBe('unroutable');
    expect(d.messages[0].statusReason).toBe('returned by the broker (312 NO_ROUTE): no queue bound for exchange "orders" with routing key "order.cancelled"');
    expect(d.firstFailure).toMatchObject({ kind: 'return', status: 'unroutable' });
  });

  it('diagnoses a message redelivered past the threshold as a redelivery loop', () => {
    const recovered = build(redeliveryLoopChain({ attempts: 6, recovers: true }));
    expect(recovered.status).toBe('redelivery-loop');
    expect(recovered.messages[0]).toMatchObject({ redeliveryCount: 5, statusReason: 'redelivered 5 times (loop threshold 5)' });
    expect(recovered.messages[0].deliveries[0]).toMatchObject({ errors: 5, redeliveries: 5, settle: { outcome: 'ack', requeue: false } });
    expect(recovered.firstFailure).toMatchObject({ kind: 'process', status: 'redelivery-loop' });

    const spinning = build(redeliveryLoopChain({ attempts: 7 }));
    expect(spinning.status).toBe('failed');
    expect(spinning.problems).toEqual(['failed', 'redelivery-loop', 'in-flight']);

    const few = build(redeliveryLoopChain({ attempts: 3, recovers: true }));
    expect(few.status).toBe('ok');
    expect(few.messages[0].redeliveryCount).toBe(2);
  });

  it('counts dead-letter round trips towards a redelivery loop', () => {
    const f = new ChainFixture();
    const id = f.publish({ service: 'api', at: 0, exchange: 'jobs', routingKey: 'job' });
    f.consume({
      messageId: id,
      service: 'worker',
      queue: 'jobs.work',
      at: 100,
      death: [
        { queue: 'jobs.retry', reason: 'expired', count: 3, exchange: 'jobs.retry', routingKeys: ['job'] },
        { queue: 'jobs.work', reason: 'rejected', count: 3, exchange: 'jobs', routingKeys: ['job'] },
      ],
    });
    const d = buildChain(f.correlationId, f.hops(), { ...DEFAULT_ENGINE_OPTIONS, now: f.now() });
    expect(d.problems).toContain('redelivery-loop');
    expect(d.messages[0].deadLetters.map((x) => [x.queue, x.reason, x.count, x.deadLetterQueue])).toEqual([
      ['jobs.retry', 'expired', 3, 'jobs.work'],
      ['jobs.work', 'rejected', 3, undefined],
    ]);
  });

  it('diagnoses a handler error that no later attempt fixed as failed, and one that was retried fine as ok', () => {
    const f = new ChainFixture();
    const id = f.publish({ service: 'shop', at: 0, routingKey: 'order.placed' });
    f.consume({ messageId: id, service: 'loyalty', queue: 'loyalty.q', at: 2, outcome: 'error', settle: 'ack' });
    const failed = buildChain(f.correlationId, f.hops(), { ...DEFAULT_ENGINE_OPTIONS, now: f.now() });
    expect(failed.status).toBe('failed');
    expect(failed.messages[0].statusReason).toBe(
      `handler in loyalty failed on queue "loyalty.q": TypeError: Cannot read properties of undefined (reading 'amount')`,
    );

    const g = new ChainFixture();
    const id2 = g.publish({ service: 'shop', at: 0, routingKey: 'order.placed' });
    g.consume({ messageId: id2, service: 'loyalty', queue: 'loyalty.q', at: 2, outcome: 'error', settle: 'nack', requeue: true });
    g.consume({ messageId: id2, service: 'loyalty', queue: 'loyalty.q', at: 9, redelivered: true });
    const ok = buildChain(g.correlationId, g.hops(), { ...DEFAULT_ENGINE_OPTIONS, now: g.now() });
    expect(ok.status).toBe('ok');
    expect(ok.messages[0].deliveries[0]).toMatchObject({ errors: 1, redeliveries: 1 });
  });

  it('names the earliest failing hop in causal order when a chain has two problems', () => {
    const f = twoProblemChain({ skewMs: { billing: -30_000 } });
    const d = build(f);
    expect(d.status).toBe('discarded');
    expect(d.problems).toEqual(['discarded', 'failed', 'lost']);
    expect(d.messages.map((m) => m.status)).toEqual(['discarded', 'lost']);
    expect(d.firstFailure).toMatchObject({ messageId: f.messageIds[0], kind: 'process', status: 'discarded' });
    expect(hop(d, d.firstFailure!.hopId).service).toBe('billing');

    // The same chain judged before the limits: only the handler error is a failure so far.
    const early = build(f, { now: f.hops[0].ts + 1_000 });
    expect(early.problems).toEqual(['failed', 'in-flight']);
    expect(early.firstFailure?.hopId).toBe(d.firstFailure!.hopId);
  });

  it('names a lost message as first failure when it comes before a later failure', () => {
    const f = new ChainFixture();
    const a = f.publish({ service: 'api', at: 0, routingKey: 'a' });
    f.consume({ messageId: a, service: 'svc', queue: 'q.a', at: 5 });
    const lost = f.publish({ service: 'svc', at: 7, routingKey: 'b', causedBy: a });
    const c = f.publish({ service: 'svc', at: 8, routingKey: 'c', causedBy: a });
    f.consume({ messageId: c, service: 'other', queue: 'q.c', at: 50, outcome: 'error', settle: 'ack' });
    const d = buildChain(f.correlationId, f.hops(), { ...DEFAULT_ENGINE_OPTIONS, now: f.now(120_000) });
    expect(d.problems).toEqual(['failed', 'lost']);
    expect(d.status).toBe('failed');
    expect(d.firstFailure).toMatchObject({ messageId: lost, kind: 'send', status: 'lost' });
  });
});

describe('formatDuration', () => {
  it('reads as a person would say it', () => {
    expect([850, 2_500, 60_000, 300_000, 9_000_000].map(formatDuration)).toEqual(['850 ms', '2.5 s', '60 s', '5 min', '2.5 h']);
  });
});
