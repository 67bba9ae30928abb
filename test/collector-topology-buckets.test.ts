import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterAll, describe, expect, it } from 'vitest';
import type { StoredHop, Topology, TopologyEdge } from '../collector/api-types.ts';
import { SqliteStore } from '../collector/sqlite-store.ts';
import { TOPOLOGY_BUCKET_MS } from '../collector/topology-buckets.ts';
import type { HopRecord } from '../src/contract/hop.ts';
import { writeOldStore } from './helpers/old-store.ts';
import {
  deadLetterChain,
  FIXTURE_START,
  fanOutChain,
  largeChain,
  lostMessageChain,
  redeliveryLoopChain,
  shuffled,
  stuckMessageChain,
  threeServiceChain,
  twoProblemChain,
  unroutableChain,
  type ChainFixtureResult,
} from './helpers/chain-fixtures.ts';

const dir = mkdtempSync(join(tmpdir(), 'hoptrace-topology-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const dbPath = () => join(dir, `${randomUUID()}.db`);

/** Fixture hops as a service would send them (no store id, no received time). */
function records(hops: readonly StoredHop[]): HopRecord[] {
  return hops.map(({ id: _id, receivedAt: _receivedAt, ...h }) => h as HopRecord);
}

/**
 * Every scenario of the fixtures, chain after chain over ~20 minutes (starts
 * 37 s apart, so chains sit across bucket boundaries), some services' clocks
 * off by seconds: returns, nacks, handler errors, dead letters, redeliveries,
 * fan-out, lost and stuck messages.
 */
function workload(): { chains: ChainFixtureResult[]; hops: HopRecord[] } {
  const makers = [
    threeServiceChain,
    fanOutChain,
    deadLetterChain,
    lostMessageChain,
    stuckMessageChain,
    unroutableChain,
    (o: object) => redeliveryLoopChain({ ...o, attempts: 3, recovers: true }),
    twoProblemChain,
    (o: object) => largeChain(60, o),
  ];
  const chains: ChainFixtureResult[] = [];
  for (let i = 0; i < 32; i++) {
    const make = makers[i % makers.length];
    chains.push(make({ seed: 100 + i, start: FIXTURE_START + 7_000 + i * 37_000, skewMs: i % 4 === 0 ? { billing: 2_500 } : {} }));
  }
  return { chains, hops: chains.flatMap((c) => records(c.hops)) };
}

/**
 * The topology straight from the hops, as the store's original query over
 * hops computed it: the reference the buckets must match. A publish counts
 * per (service, exchange) message sent in the window, an error when the
 * message was returned or nacked; a delivery per (message, service, queue,
 * exchange) received in the window, an error on exchange → queue when it
 * carried a death count, on queue → service when that service's handler
 * failed or it nacked/rejected there; its wait from the message's first send.
 */
function topologyFromHops(hops: readonly HopRecord[], from: number, to: number): Topology {
  const nodes = new Map<string, { id: string; kind: string; label: string }>();
  const edges = new Map<string, TopologyEdge & { waits: number[] }>();
  const node = (kind: string, name: string) => {
    const id = `${kind}:${name}`;
    if (!nodes.has(id)) nodes.set(id, { id, kind, label: kind === 'exchange' && name === '' ? '(default)' : name });
    return id;
  };
  const edge = (f: string, t: string) => {
    const key = `${f}\u0000${t}`;
    let e = edges.get(key);
    if (!e) edges.set(key, (e = { from: f, to: t, count: 0, errorCount: 0, errorRate: 0, waits: [] }));
    return e;
  };
  const byMessage = new Map<string, HopRecord[]>();
  for (const h of hops) byMessage.set(h.messageId, [...(byMessage.get(h.messageId) ?? []), h]);
  const inWindow = (h: HopRecord) => h.ts >= from && h.ts <= to;
  const publishes = new Map<string, Set<string>>();
  const publishErrors = new Map<string, Set<string>>();
  const deliveries = new Map<string, { service: string; exchange: string; queue: string; received: number; deaths: number; messageId: string }>();
  for (const h of hops) {
    if (!inWindow(h)) continue;
    if (h.kind === 'send') {
      const key = `${h.service}\u0000${h.exchange ?? ''}`;
      publishes.set(key, (publishes.get(key) ?? new Set()).add(h.messageId));
      const failed = byMessage.get(h.messageId)!.some((f) => f.kind === 'return' || (f.kind === 'confirm' && f.outcome === 'nack'));
      if (failed) publishErrors.set(key, (publishErrors.get(key) ?? new Set()).add(h.messageId));
    } else if (h.kind === 'receive') {
      const key = `${h.messageId}\u0000${h.service}\u0000${h.queue ?? ''}\u0000${h.exchange ?? ''}`;
      const d = deliveries.get(key);
      if (!d) deliveries.set(key, { service: h.service, exchange: h.exchange ?? '', queue: h.queue ?? '', received: h.ts, deaths: h.deathCount ?? 0, messageId: h.messageId });
      else {
        d.received = Math.min(d.received, h.ts);
        d.deaths = Math.max(d.deaths, h.deathCount ?? 0);
      }
    }
  }
  for (const [key, ids] of publishes) {
    const [service, exchange] = key.split('\u0000');
    const e = edge(node('service', service), node('exchange', exchange));
    e.count += ids.size;
    e.errorCount += publishErrors.get(key)?.size ?? 0;
  }
  for (const d of deliveries.values()) {
    const message = byMessage.get(d.messageId)!;
    const q = node('queue', d.queue);
    const routed = edge(node('exchange', d.exchange), q);
    routed.count++;
    if (d.deaths > 0) routed.errorCount++;
    const consumed = edge(q, node('service', d.service));
    consumed.count++;
    const failed = message.some(
      (f) =>
        f.service === d.service &&
        (f.queue ?? '') === d.queue &&
        ((f.kind === 'process' && f.outcome === 'error') || (f.kind === 'settle' && (f.outcome === 'nack' || f.outcome === 'reject'))),
    );
    if (failed) consumed.errorCount++;
    const sends = message.filter((f) => f.kind === 'send').map((f) => f.ts);
    if (sends.length > 0) consumed.waits.push(Math.max(0, d.received - Math.min(...sends)));
  }
  const windowSec = Math.max(0.001, (to - from) / 1000);
  const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
  const out: TopologyEdge[] = [];
  for (const { waits, ...e } of edges.values()) {
    e.errorRate = e.count > 0 ? e.errorCount / e.count : 0;
    e.ratePerSec = e.count / windowSec;
    if (waits.length > 0) {
      waits.sort((a, b) => a - b);
      e.queueWaitP50Ms = pct(waits, 0.5);
      e.queueWaitP95Ms = pct(waits, 0.95);
    }
    out.push(e);
  }
  return { nodes: [...nodes.values()] as Topology['nodes'], edges: out, from, to };
}

const byEdge = (t: Topology) => new Map(t.edges.map((e) => [`${e.from} → ${e.to}`, e]));

/** Same nodes and edges with the same counts; queue waits within the histogram's bin (4.4 %). */
function expectSameTopology(actual: Topology, expected: Topology): void {
  expect(actual.from).toBe(expected.from);
  expect(actual.to).toBe(expected.to);
  if (expected.edges.length > 0) {
    // The traffic span covers the traffic, within the minutes it was summed in, and stays in the window.
    expect(actual.trafficFrom).toBeGreaterThanOrEqual(actual.from);
    expect(actual.trafficTo).toBeLessThanOrEqual(Math.max(actual.to, actual.trafficFrom! + TOPOLOGY_BUCKET_MS));
    expect(actual.trafficTo! - actual.trafficFrom!).toBeGreaterThanOrEqual(Math.min(TOPOLOGY_BUCKET_MS, actual.to - actual.from));
  }
  expect([...actual.nodes].sort((a, b) => a.id.localeCompare(b.id))).toEqual([...expected.nodes].sort((a, b) => a.id.localeCompare(b.id)));
  const a = byEdge(actual);
  const e = byEdge(expected);
  expect([...a.keys()].sort()).toEqual([...e.keys()].sort());
  for (const [key, want] of e) {
    const got = a.get(key)!;
    const { queueWaitP50Ms: w50, queueWaitP95Ms: w95, ratePerSec: wantRate, ...counts } = want;
    const { queueWaitP50Ms: g50, queueWaitP95Ms: g95, ratePerSec: gotRate, ...gotCounts } = got;
    expect({ key, ...gotCounts }).toEqual({ key, ...counts });
    void wantRate;
    // Rates are over the edge's own traffic span (known to the minute where minute totals are
    // summed): at least one minute, at most the window.
    const windowSec = Math.max(60, (actual.to - actual.from) / 1000);
    expect(gotRate, key).toBeGreaterThanOrEqual(got.count / windowSec - 1e-9);
    expect(gotRate, key).toBeLessThanOrEqual(got.count / Math.min(60, (actual.to - actual.from) / 1000) + 1e-9);
    for (const [g, w] of [
      [g50, w50],
      [g95, w95],
    ]) {
      if (w === undefined) expect(g).toBeUndefined();
      else expect(Math.abs(g! - w), `${key}: ${g} vs ${w}`).toBeLessThanOrEqual(w * 0.045 + 0.001);
    }
  }
}

function bucketRows(path: string): unknown[] {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    return db.prepare('SELECT bucket, from_node, to_node, count, errors, waits FROM topology_buckets ORDER BY bucket, from_node, to_node').all();
  } finally {
    db.close();
  }
}

describe('topology from per-minute buckets', () => {
  it('answers what the query over hops answered, for the whole range and for windows that cut minutes', async () => {
    const { hops } = workload();
    const path = dbPath();
    const store = new SqliteStore({ path });
    try {
      // Shuffled, in batches of 50: receives before their sends, failures before their receives.
      const arriving = shuffled(hops, 7);
      for (let i = 0; i < arriving.length; i += 50) await store.insertHops(arriving.slice(i, i + 50), Date.now());
      const first = Math.min(...hops.map((h) => h.ts));
      const last = Math.max(...hops.map((h) => h.ts));
      // Window ends between chains (37 s apart) so no message is cut, and mostly off the minute.
      const between = (k: number) => FIXTURE_START + 7_000 + k * 37_000 - 3_000;
      const windows: [number, number][] = [
        [first, last],
        [first - 3_600_000, last + 3_600_000],
        [between(3), between(20)],
        [between(5), between(6)], // inside a minute or across one boundary: hops only
        [between(1), between(30)],
        [FIXTURE_START, FIXTURE_START + 10 * TOPOLOGY_BUCKET_MS], // on minute boundaries
      ];
      for (const [from, to] of windows) expectSameTopology(await store.topology(from, to), topologyFromHops(hops, from, to));
      expect((await store.topology(first, last)).edges.length).toBeGreaterThan(20);
    } finally {
      await store.close();
    }
  });

  it('buckets do not depend on the order or batching the hops arrived in', async () => {
    const { hops } = workload();
    const oneBatch = dbPath();
    const a = new SqliteStore({ path: oneBatch });
    await a.insertHops(hops, Date.now());
    await a.close();
    const reversed = dbPath();
    const b = new SqliteStore({ path: reversed });
    const backwards = [...hops].reverse();
    for (let i = 0; i < backwards.length; i += 7) await b.insertHops(backwards.slice(i, i + 7), Date.now());
    await b.insertHops(hops.slice(0, 40), Date.now()); // duplicates change nothing
    await b.close();
    expect(bucketRows(reversed)).toEqual(bucketRows(oneBatch));
    expect(bucketRows(oneBatch).length).toBeGreaterThan(0);
  });

  it('a database at the schema version before topology buckets migrates and its buckets are filled from the stored hops', async () => {
    const { hops } = workload();
    const current = dbPath();
    const store = new SqliteStore({ path: current });
    await store.insertHops(hops, Date.now());
    await store.close();
    // The same hops in a file at schema version 3 (before topology_buckets).
    const old = dbPath();
    writeOldStore(old, 3, hops);
    const migrated = new SqliteStore({ path: old });
    const from = Math.min(...hops.map((h) => h.ts));
    const to = Math.max(...hops.map((h) => h.ts));
    try {
      expectSameTopology(await migrated.topology(from, to), topologyFromHops(hops, from, to));
    } finally {
      await migrated.close();
    }
    expect(bucketRows(old)).toEqual(bucketRows(current));
  });

  it('retention takes deleted chains out of the buckets, and empties them with the last chain', async () => {
    const { chains } = workload();
    const path = dbPath();
    const store = new SqliteStore({ path });
    const kept = chains.slice(0, 10);
    const dropped = chains.slice(10);
    try {
      // Dropped chains were last written long ago; kept ones just now.
      await store.insertHops(dropped.flatMap((c) => records(c.hops)), 1_000);
      await store.insertHops(kept.flatMap((c) => records(c.hops)), 10_000_000);
      const removed = await store.applyRetention({ maxAgeMs: 60_000 }, 10_000_000);
      expect(removed.deletedChains).toBe(dropped.length);
      const from = Math.min(...chains.flatMap((c) => c.hops.map((h) => h.ts)));
      const to = Math.max(...chains.flatMap((c) => c.hops.map((h) => h.ts)));
      expectSameTopology(await store.topology(from, to), topologyFromHops(kept.flatMap((c) => records(c.hops)), from, to));
      // Exactly the rows a store that only ever held the kept chains has.
      const fresh = dbPath();
      const only = new SqliteStore({ path: fresh });
      await only.insertHops(kept.flatMap((c) => records(c.hops)), 10_000_000);
      await only.close();
      expect(bucketRows(path)).toEqual(bucketRows(fresh));

      await store.applyRetention({ maxAgeMs: 60_000 }, 100_000_000);
      expect(bucketRows(path)).toEqual([]);
      expect((await store.topology(from, to)).edges).toEqual([]);
    } finally {
      await store.close();
    }
  });
});
