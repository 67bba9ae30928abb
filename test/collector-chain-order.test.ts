import { describe, expect, it } from 'vitest';
import type { StoredHop } from '../collector/api-types.ts';
import type { CausalEdge } from '../collector/chain-graph.ts';
import { causalOrder } from '../collector/chain-order.ts';
import { buildChain, DEFAULT_ENGINE_OPTIONS } from '../collector/chain-engine.ts';
import { ChainFixture } from './helpers/chain-fixtures.ts';

const hop = (kind: StoredHop['kind'], ts: number, id: number): StoredHop =>
  ({ v: 1, kind, ts, service: 's', instance: 'i', traceId: 't', spanId: `${id}`, correlationId: 'c', messageId: 'm', id, receivedAt: 0 }) as StoredHop;
const edge = (from: number, to: number): CausalEdge => ({ from, to, kind: 'handling' });

describe('causalOrder', () => {
  it('follows adjusted time where no edge says otherwise', () => {
    const hops = [hop('send', 30, 1), hop('send', 10, 2), hop('send', 20, 3)];
    expect(causalOrder(hops, [], [30, 10, 20])).toEqual([1, 2, 0]);
  });

  it('puts a hop after its cause even when its clock says earlier', () => {
    const hops = [hop('receive', 100, 1), hop('process', 50, 2), hop('send', 70, 3)];
    expect(causalOrder(hops, [edge(0, 1)], [100, 50, 70])).toEqual([2, 0, 1]);
  });

  it('breaks ties at the same instant by kind', () => {
    const hops = [hop('settle', 5, 1), hop('receive', 5, 2), hop('send', 5, 3), hop('process', 5, 4)];
    expect(causalOrder(hops, [], [5, 5, 5, 5]).map((i) => hops[i].kind)).toEqual(['send', 'receive', 'process', 'settle']);
  });

  it('still places every hop once when bad data makes the edges cyclic', () => {
    const hops = [hop('send', 1, 1), hop('receive', 2, 2), hop('process', 3, 3), hop('send', 4, 4)];
    const order = causalOrder(hops, [edge(0, 1), edge(1, 2), edge(2, 0), edge(2, 3)], [1, 2, 3, 4]);
    expect([...order].sort()).toEqual([0, 1, 2, 3]);
    expect(order.indexOf(3)).toBeGreaterThan(order.indexOf(2));
  });
});

describe('causal order of a chain', () => {
  it('puts a receive before its process and settle when a second instance of the service logs with another clock', () => {
    const f = new ChainFixture();
    const id = f.publish({ service: 'api', at: 0 });
    f.consume({ messageId: id, service: 'worker', queue: 'jobs', at: 10, handleMs: 3 });
    const hops = f.hops().map((h) => (h.kind === 'receive' ? { ...h, ts: h.ts + 10, instance: 'worker-5b2d/88' } : h));
    const d = buildChain(f.correlationId, hops, { ...DEFAULT_ENGINE_OPTIONS, now: f.now() });
    expect(d.hops.map((h) => h.kind)).toEqual(['send', 'receive', 'process', 'settle']);
  });

  it('places a child message after the parent delivery that caused it, and independent messages by time', () => {
    const f = new ChainFixture();
    const a = f.publish({ service: 'api', at: 0, routingKey: 'a' });
    const b = f.publish({ service: 'api', at: 1, routingKey: 'b' });
    f.consume({ messageId: a, service: 'worker', queue: 'qa', at: 20, handleMs: 10 });
    const child = f.publish({ service: 'worker', at: 25, routingKey: 'child', causedBy: a });
    f.consume({ messageId: b, service: 'other', queue: 'qb', at: 22 });
    const d = buildChain(f.correlationId, f.hops(), { ...DEFAULT_ENGINE_OPTIONS, now: f.now() });
    const at = (messageId: string, kind: string) => d.hops.findIndex((h) => h.messageId === messageId && h.kind === kind);
    expect(at(a, 'send')).toBeLessThan(at(b, 'send'));
    expect(at(a, 'receive')).toBeLessThan(at(b, 'receive'));
    expect(at(child, 'send')).toBeGreaterThan(at(a, 'receive'));
    expect(at(child, 'send')).toBeLessThan(at(a, 'process'));
    expect(d.rootMessageIds).toEqual([a, b]);
  });
});
