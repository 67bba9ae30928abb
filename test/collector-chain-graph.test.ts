import { describe, expect, it } from 'vitest';
import type { StoredHop } from '../collector/api-types.ts';
import { buildGraph, compareHopContent, type ChainGraph } from '../collector/chain-graph.ts';
import { ChainFixture, deadLetterChain, redeliveryLoopChain, shuffled, threeServiceChain, withFreshIds } from './helpers/chain-fixtures.ts';

const idsOf = (g: ChainGraph, indexes: readonly (number | undefined)[]) => indexes.map((i) => (i === undefined ? undefined : g.hops[i].id));
const edgeList = (g: ChainGraph) =>
  g.edges.map((e) => `${g.hops[e.from].service} ${g.hops[e.from].kind} → ${g.hops[e.to].service} ${g.hops[e.to].kind} (${e.kind})`);

describe('buildGraph', () => {
  it('groups hops into messages and links each to the message that caused it', () => {
    const f = threeServiceChain();
    const g = buildGraph(f.hops);
    const [order, payment] = f.messageIds;
    expect(g.messages.map((m) => [m.messageId, m.parentMessageId, m.childMessageIds, m.root])).toEqual([
      [order, undefined, [payment], true],
      [payment, order, [], false],
    ]);
  });

  it('puts the hops in one content order whatever order they arrived in', () => {
    const f = threeServiceChain();
    const a = buildGraph(f.hops);
    const b = buildGraph(withFreshIds(shuffled(f.hops, 3)));
    expect(b.hops.map((h) => [h.kind, h.service, h.ts])).toEqual(a.hops.map((h) => [h.kind, h.service, h.ts]));
    expect([...f.hops].sort(compareHopContent).map((h) => h.id)).toEqual(a.hops.map((h) => h.id));
  });

  it('two settles of a delivery whose receive and process were never recorded still make a graph', () => {
    const base = { v: 1 as const, service: 'billing', instance: 'b/1', traceId: 'a'.repeat(32), correlationId: 'c', messageId: 'm', exchange: '', routingKey: 'q', queue: 'q', receivedAt: 0 };
    const hops: StoredHop[] = [
      { ...base, id: 1, kind: 'settle', ts: 10, spanId: '1'.repeat(16), outcome: 'nack', requeue: true },
      { ...base, id: 2, kind: 'settle', ts: 20, spanId: '2'.repeat(16), outcome: 'ack' },
    ];
    const g = buildGraph(hops);
    expect(g.messages[0].deliveries[0].attempts).toHaveLength(1);
    expect(g.hops).toHaveLength(2);
  });

  it('draws publish, delivery, handling and causation edges between hops', () => {
    const g = buildGraph(threeServiceChain().hops);
    expect(edgeList(g)).toEqual([
      'order-api send → billing receive (delivery)',
      'billing receive → billing process (handling)',
      'billing receive → billing settle (handling)',
      'billing send → shipping receive (delivery)',
      'shipping receive → shipping process (handling)',
      'shipping receive → shipping settle (handling)',
      'billing receive → billing send (causation)',
    ]);
  });

  it('splits redeliveries into attempts and orders each after the previous settle', () => {
    const f = redeliveryLoopChain({ attempts: 3, recovers: true });
    const g = buildGraph(f.hops);
    const [d] = g.messages[0].deliveries;
    expect(d.attempts).toHaveLength(3);
    for (const a of d.attempts) {
      expect(a.processes).toHaveLength(1);
      expect(a.settles).toHaveLength(1);
      expect(g.hops[a.processes[0]].ts).toBeGreaterThan(g.hops[a.receive!].ts);
    }
    expect(edgeList(g).filter((e) => e.endsWith('(redelivery)'))).toHaveLength(2);
  });

  it('matches a process to its receive by consumer and delivery tag before time', () => {
    const f = new ChainFixture();
    const id = f.publish({ service: 'api', at: 0 });
    const first = f.consume({ messageId: id, service: 'worker', queue: 'jobs', at: 10, outcome: 'none', settle: 'none' });
    const second = f.consume({ messageId: id, service: 'worker', queue: 'jobs', at: 20, redelivered: true, handleMs: 50 });
    // A late process of the first delivery (tag 1), logged after the second receive.
    const hops = f.hops();
    const late = { ...hops.find((h) => h.id === second.process)!, id: 99, ts: hops.find((h) => h.id === second.receive)!.ts + 5, deliveryTag: 1 } as StoredHop;
    const g = buildGraph([...hops, late]);
    const attempts = g.messages[0].deliveries[0].attempts;
    expect(idsOf(g, [attempts[0].receive, ...attempts[0].processes])).toEqual([first.receive, 99]);
    expect(idsOf(g, [attempts[1].receive, ...attempts[1].processes])).toEqual([second.receive, second.process]);
  });

  it('joins hops without a queue to the service’s only delivery of the message', () => {
    const f = new ChainFixture();
    const id = f.publish({ service: 'api', at: 0 });
    f.consume({ messageId: id, service: 'worker', queue: 'jobs', at: 10, settle: 'none' });
    const hops = f.hops();
    const settle = { ...hops.at(-1)!, id: 50, kind: 'settle', outcome: 'ack', ts: hops.at(-1)!.ts + 1 } as StoredHop;
    delete settle.queue;
    const g = buildGraph([...hops, settle]);
    expect(g.messages[0].deliveries).toHaveLength(1);
    expect(idsOf(g, g.messages[0].deliveries[0].attempts[0].settles)).toEqual([50]);
  });

  it('places a dead-lettered copy’s receive after the reject that dead-lettered it', () => {
    const g = buildGraph(deadLetterChain().hops);
    expect(edgeList(g)).toContain('billing settle → dlq-monitor receive (dead-letter)');
  });

  it('makes a root of a message caught in a causation cycle', () => {
    const f = new ChainFixture();
    const a = f.publish({ service: 'a', at: 0, messageId: 'A', causedBy: 'B' });
    const b = f.publish({ service: 'b', at: 5, messageId: 'B', causedBy: 'A' });
    const g = buildGraph(f.hops());
    expect(g.messages.filter((m) => m.root).map((m) => m.messageId)).toEqual([a]);
    expect(g.byId.get(b)!.parentMessageId).toBe(a);
  });

  it('builds a delivery whose only hops so far are settles (they arrived before its receive and process)', () => {
    const f = threeServiceChain();
    const settles = f.hops.filter((h) => h.kind === 'settle');
    const twoOfOne = [settles[0], { ...settles[0], id: 9_999, ts: settles[0].ts + 5, outcome: 'ack' as const }];
    const g = buildGraph([...f.hops.filter((h) => h.kind === 'send'), ...twoOfOne]);
    const delivery = g.messages.find((m) => m.messageId === settles[0].messageId)!.deliveries[0];
    expect(delivery.attempts).toHaveLength(1);
    expect(idsOf(g, delivery.attempts[0].settles)).toEqual([settles[0].id, 9_999]);
  });
});
