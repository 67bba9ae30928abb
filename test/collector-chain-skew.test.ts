import { describe, expect, it } from 'vitest';
import { buildChain, DEFAULT_ENGINE_OPTIONS } from '../collector/chain-engine.ts';
import { estimateSkew } from '../collector/chain-skew.ts';
import { ChainFixture, fanOutChain, hopKey, largeChain, threeServiceChain, type ChainFixtureResult } from './helpers/chain-fixtures.ts';

const build = (f: ChainFixtureResult) => buildChain(f.correlationId, f.hops, { ...DEFAULT_ENGINE_OPTIONS, now: f.now });
const offsetOf = (d: ReturnType<typeof build>, service: string) => d.skew.find((s) => s.service === service)!;

describe('clock skew', () => {
  it('keeps a chain causal when the consumer’s clock is 3 minutes behind, and reports the skew', () => {
    const fair = build(threeServiceChain());
    const f = threeServiceChain({ skewMs: { billing: -180_000 } });
    const d = build(f);

    // Raw timestamps would put billing's receive 3 minutes before the publish.
    const rawReceive = f.hops.find((h) => h.service === 'billing' && h.kind === 'receive')!;
    expect(rawReceive.ts).toBeLessThan(f.hops[0].ts);

    expect(d.hops.map(hopKey)).toEqual(fair.hops.map(hopKey));
    expect(offsetOf(d, 'order-api')).toEqual({ service: 'order-api', offsetMs: 0, samples: 1, reference: true, basis: 'reference' });
    const billing = offsetOf(d, 'billing');
    expect(billing.reference).toBe(false);
    expect(billing.samples).toBe(2);
    expect(billing.offsetMs).toBeGreaterThan(179_900);
    expect(billing.offsetMs).toBeLessThan(180_100);
    // Bounded from both sides (order-api's publish before it, shipping's receive after it): an interval round the estimate.
    expect(billing.basis).toBe('measured');
    expect(billing.lowerMs).toBeLessThanOrEqual(billing.offsetMs);
    expect(billing.upperMs).toBeGreaterThanOrEqual(billing.offsetMs);
    expect(billing.upperMs! - billing.lowerMs!).toBeLessThan(100);
    // shipping only receives: its clock is bounded, and left alone.
    expect(offsetOf(d, 'shipping')).toMatchObject({ basis: 'bounded', offsetMs: 0 });
    expect(offsetOf(d, 'shipping').upperMs).toBeUndefined();
    // The wait derived from it is marked as resting on the estimate.
    expect(d.messages[0].deliveries[0].queueWaitApprox).toBe(true);
    expect(fair.messages[0].deliveries[0].queueWaitApprox).toBeUndefined();
    expect(offsetOf(d, 'shipping').offsetMs).toBe(0);

    for (const h of d.hops) {
      const raw = f.hops.find((x) => x.id === h.id)!;
      expect(h.ts, 'raw ts untouched').toBe(raw.ts);
      expect(h.adjustedTs).toBeCloseTo(raw.ts + offsetOf(d, h.service).offsetMs, 6);
    }
    expect(d.messages[0].queueWaitMs).toBeGreaterThanOrEqual(0);
    expect(d.messages[0].queueWaitMs).toBeLessThan(100);
  });

  it('estimates a clock that runs ahead from the replies it sends back', () => {
    const f = new ChainFixture({ skewMs: { pricing: 240_000 } });
    const request = f.publish({ service: 'checkout', at: 0, exchange: '', routingKey: 'pricing.requests' });
    f.consume({ messageId: request, service: 'pricing', queue: 'pricing.requests', at: 6, handleMs: 10 });
    const reply = f.publish({ service: 'pricing', at: 12, exchange: '', routingKey: 'checkout.replies', causedBy: request });
    f.consume({ messageId: reply, service: 'checkout', queue: 'checkout.replies', at: 20 });
    const d = buildChain(f.correlationId, f.hops(), { ...DEFAULT_ENGINE_OPTIONS, now: f.now() });
    const pricing = offsetOf(d, 'pricing');
    expect(pricing.offsetMs).toBeLessThan(-239_900);
    expect(pricing.offsetMs).toBeGreaterThan(-240_100);
    expect(offsetOf(d, 'checkout').reference).toBe(true);
    expect(d.hops.map((h) => `${h.service} ${h.kind}`)).toEqual([
      'checkout send',
      'pricing receive',
      'pricing send',
      'pricing process',
      'pricing settle',
      'checkout receive',
      'checkout process',
      'checkout settle',
    ]);
  });

  it('reports zero skew for every service when the clocks agree, however long messages wait', () => {
    const f = new ChainFixture();
    const order = f.publish({ service: 'order-api', at: 0, routingKey: 'order.placed' });
    f.consume({ messageId: order, service: 'billing', queue: 'billing.q', at: 45_000 });
    const invoice = f.publish({ service: 'billing', at: 45_003, routingKey: 'invoice', causedBy: order });
    f.consume({ messageId: invoice, service: 'order-api', queue: 'order-api.invoices', at: 45_004 });
    const d = buildChain(f.correlationId, f.hops(), { ...DEFAULT_ENGINE_OPTIONS, now: f.now() });
    expect(d.skew.map((s) => s.offsetMs)).toEqual([0, 0]);
    for (const fx of [threeServiceChain(), fanOutChain(), largeChain(400)]) {
      const built = build(fx);
      expect(built.skew.every((s) => s.offsetMs === 0)).toBe(true);
      expect(built.hops.every((h) => h.adjustedTs === h.ts)).toBe(true);
    }
  });

  it('lists every service once, with the samples its estimate rests on', () => {
    const d = build(fanOutChain());
    expect(d.skew.map((s) => [s.service, s.samples, s.reference])).toEqual([
      ['order-api', 3, true],
      ['billing', 1, false],
      ['shipping', 1, false],
      ['notifications', 1, false],
    ]);
  });

  it('recovers several skewed services in a large chain to within a few milliseconds', () => {
    const skewMs = { billing: -120_000, shipping: 7_500, loyalty: -2_000 };
    const d = build(largeChain(1000, { skewMs }));
    for (const [service, skew] of Object.entries(skewMs)) expect(Math.abs(offsetOf(d, service).offsetMs + skew)).toBeLessThan(25);
    expect(offsetOf(d, 'gateway')).toMatchObject({ offsetMs: 0, reference: true });
  });
});

describe('estimateSkew', () => {
  it('moves only the service a violated constraint points at, by the smallest amount, and calls it bounded', () => {
    const { skew } = estimateSkew(['a', 'b', 'c'], [{ fromService: 'a', toService: 'b', minDifference: 500 }], 'a');
    expect(skew).toEqual([
      { service: 'a', offsetMs: 0, samples: 1, reference: true, basis: 'reference' },
      { service: 'b', offsetMs: 500, samples: 1, reference: false, basis: 'bounded', lowerMs: 500 },
      { service: 'c', offsetMs: 0, samples: 0, reference: false, basis: 'none' },
    ]);
  });

  it('keeps a clock that one direction of traffic leaves causal at 0, reporting only the bound', () => {
    // b received 36 ms after a sent: any offset ≥ −36 ms keeps that order.
    const { skew } = estimateSkew(['a', 'b'], [{ fromService: 'a', toService: 'b', minDifference: -36 }], 'a');
    expect(skew[1]).toEqual({ service: 'b', offsetMs: 0, samples: 1, reference: false, basis: 'bounded', lowerMs: -36 });
  });

  it('reports the interval a two-way estimate lies in', () => {
    // a → b → c → a: b is bounded below by a and above by c, which a bounds in turn.
    const { skew } = estimateSkew(
      ['a', 'b', 'c'],
      [
        { fromService: 'a', toService: 'b', minDifference: 2_000 },
        { fromService: 'b', toService: 'c', minDifference: -2_300 },
        { fromService: 'c', toService: 'a', minDifference: -50 },
      ],
      'a',
    );
    const b = skew[1];
    expect(b.basis).toBe('measured');
    expect(b.lowerMs).toBe(2_000);
    // b ≤ c + 2300, with c left at 0.
    expect(b.upperMs).toBe(2_300);
    expect(b.offsetMs).toBe(2_150);
    expect(skew[2]).toMatchObject({ basis: 'measured', offsetMs: 0, lowerMs: -150, upperMs: 50 });
  });

  it('centres a service bounded from both sides', () => {
    const { offsets } = estimateSkew(
      ['a', 'b'],
      [
        { fromService: 'a', toService: 'b', minDifference: 1_000 },
        { fromService: 'b', toService: 'a', minDifference: -1_100 },
      ],
      'a',
    );
    expect(offsets.get('b')).toBe(1_050);
  });

  it('never moves a clock more than twice its smallest correction', () => {
    const { offsets } = estimateSkew(
      ['a', 'b'],
      [
        { fromService: 'a', toService: 'b', minDifference: 2 },
        { fromService: 'b', toService: 'a', minDifference: -10_000 },
      ],
      'a',
    );
    expect(offsets.get('b')).toBe(4);
  });

  it('ignores same-service samples and settles on something for contradictory ones', () => {
    const { skew } = estimateSkew(
      ['a', 'b'],
      [
        { fromService: 'a', toService: 'a', minDifference: 1e9 },
        { fromService: 'a', toService: 'b', minDifference: 1_000 },
        { fromService: 'b', toService: 'a', minDifference: 1_000 },
      ],
      'a',
    );
    expect(skew.map((s) => Number.isFinite(s.offsetMs))).toEqual([true, true]);
    expect(skew[0]).toMatchObject({ offsetMs: 0, samples: 2 });
    // No interval can hold constraints that contradict each other: none is claimed.
    expect(skew[1]).toMatchObject({ basis: 'conflicting' });
    expect(skew[1].lowerMs).toBeUndefined();
    expect(skew[1].upperMs).toBeUndefined();
  });
});
