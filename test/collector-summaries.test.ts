import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoredHop } from '../collector/api-types.ts';
import { summarizeChainHops, type EngineSettings } from '../collector/chain-summary.ts';
import { recordHops, type IngestRecord } from '../collector/record-identity.ts';
import type { ConsumeRecordV2, HopRecord, PublishRecordV2 } from '../src/contract/hop.ts';
import {
  deadLetterChain,
  fanOutChain,
  FIXTURE_START,
  largeChain,
  lostMessageChain,
  redeliveryLoopChain,
  REPLAY_DLQ,
  replayedChain,
  stuckMessageChain,
  threeServiceChain,
  twoProblemChain,
  unroutableChain,
} from './helpers/chain-fixtures.ts';
import type { Store } from '../collector/store.ts';
import { storeKinds } from './helpers/store-kinds.ts';

/** A seeded generator, so a failing run can be replayed: the seed is in the test's failure message. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const hex = (n: number) => randomBytes(n).toString('hex');

/** A chain written by the version-2 library: a publish, then a delivery recorded open first and complete later. */
function v2Chain(i: number): IngestRecord[] {
  const messageId = `v2-${i}-${hex(4)}`;
  const traceId = hex(16);
  const pub: PublishRecordV2 & { instance: string } = {
    v: 2, kind: 'publish', ts: FIXTURE_START + i * 1000, service: 'shop', instance: 'shop-1/10', traceId, spanId: hex(8),
    messageId, exchange: 'orders', routingKey: 'order.placed', confirmMs: 0.5,
  };
  const done: ConsumeRecordV2 & { instance: string } = {
    v: 2, kind: 'consume', ts: pub.ts + 4, service: 'barista', instance: 'barista-1/20', traceId, spanId: hex(8),
    parentSpanId: pub.spanId, messageId, exchange: 'orders', routingKey: 'order.placed', queue: 'orders.coffee', deliveryTag: i + 1,
    processMs: 2, settle: i % 3 === 0 ? 'nack' : 'ack', settleMs: 2.5, ...(i % 3 === 0 ? { requeue: false, error: { type: 'Jam', message: 'stuck' } } : {}),
  };
  const { processMs: _p, settle: _s, settleMs: _m, requeue: _r, error: _e, ...open } = done;
  return [pub, { ...open, open: true }, done];
}

/** Every scenario the chain engine knows, some chains twice with other seeds, plus version-2 chains. */
function workload(): { chains: Map<string, IngestRecord[]> } {
  const makers = [
    threeServiceChain,
    fanOutChain,
    deadLetterChain,
    (o: object) => lostMessageChain({ ...o }),
    (o: object) => stuckMessageChain({ ...o }),
    unroutableChain,
    (o: object) => redeliveryLoopChain({ ...o, attempts: 4, recovers: false }),
    twoProblemChain,
    (o: object) => largeChain(120, o),
    (o: object) => replayedChain({ ...o, replay: 'ok' }),
    (o: object) => replayedChain({ ...o, replay: 'fails-again' }),
    (o: object) => replayedChain({ ...o, replay: 'not-found' }),
  ];
  const chains = new Map<string, IngestRecord[]>();
  for (let i = 0; i < 48; i++) {
    const f = makers[i % makers.length]({ seed: 500 + i, start: FIXTURE_START + i * 20_000, skewMs: i % 4 === 0 ? { billing: 1_500 } : {} });
    chains.set(f.correlationId, f.hops.map(({ id: _id, receivedAt: _r, ...h }) => h as HopRecord));
  }
  for (let i = 0; i < 8; i++) {
    const recs = v2Chain(i);
    chains.set(recs[0].messageId, recs);
  }
  return { chains };
}

/** No status changes with time alone: the comparison is about what the hops say. */
const SETTINGS: EngineSettings = { lostAfterMs: 1e12, stuckAfterMs: 1e12, redeliveryLoopThreshold: 3, deadLetterQueues: { 'billing.order-placed': REPLAY_DLQ } };

type Summary = Awaited<ReturnType<Store['chainSummary']>>;

/** What failure_buckets must hold: the sum of the summaries' failure tallies. */
function recount(summaries: readonly Summary[]): { fingerprint: string; bucket: number; count: number; unresolved: number }[] {
  const byKey = new Map<string, { fingerprint: string; bucket: number; count: number; unresolved: number }>();
  for (const s of summaries) {
    for (const t of s?.failureTally ?? []) {
      const key = `${t.fingerprint}|${t.bucket}`;
      const row = byKey.get(key) ?? { fingerprint: t.fingerprint, bucket: t.bucket, count: 0, unresolved: 0 };
      row.count += t.count;
      row.unresolved += t.unresolved;
      byKey.set(key, row);
    }
  }
  return [...byKey.values()].sort((a, b) => (a.fingerprint < b.fingerprint ? -1 : a.fingerprint > b.fingerprint ? 1 : a.bucket - b.bucket));
}

/** The summary a full rebuild from every hop of the chain gives. */
function rebuilt(correlationId: string, records: readonly IngestRecord[], receivedAt: Map<IngestRecord, number>, now: number) {
  const hops: StoredHop[] = [];
  let id = 0;
  let updatedAt = 0;
  const seen = new Set<string>();
  for (const r of records) {
    const t = receivedAt.get(r)!;
    if (t > updatedAt) updatedAt = t;
    for (const h of recordHops(r)) {
      const key = `${h.kind}|${h.messageId}|${h.spanId}|${h.ts}|${h.instance}|${h.queue}|${h.deliveryTag}|${h.outcome}`;
      if (seen.has(key)) continue;
      seen.add(key);
      hops.push({ ...h, id: ++id, receivedAt: t });
    }
  }
  return summarizeChainHops(correlationId, hops, { now, updatedAt }, SETTINGS).summary;
}

for (const kind of storeKinds()) {
describe(`incremental chain summaries (${kind.name})`, () => {
  beforeAll(() => kind.setup());
  afterAll(() => kind.teardown());

  for (const seed of [1, 2, 3, 19]) {
    it(`agree with a full rebuild however the records arrive: shuffled, resent, split by restarts; failure groups with a recount, before and after retention (seed ${seed})`, async () => {
      const rand = random(seed);
      const { chains } = workload();
      const all = [...chains.values()].flat();
      // Shuffled, some records sent twice (a transport retry after a lost 202).
      const arriving: IngestRecord[] = [];
      for (const r of all) {
        arriving.splice(Math.floor(rand() * (arriving.length + 1)), 0, r);
        if (rand() < 0.1) arriving.splice(Math.floor(rand() * (arriving.length + 1)), 0, { ...r });
      }
      const NOW = FIXTURE_START + 10_000_000;
      // Minute-wide PostgreSQL partitions, so retention there drops some of the ~17 minutes the records arrive over.
      const t = await kind.create({ engine: SETTINGS, partitionMs: 60_000 });
      let store = t.store;
      const firstSeen = new Map<string, number>();
      const receivedAt = new Map<IngestRecord, number>();
      let clock = NOW - 1_000_000;
      let topologyBefore: unknown[] = [];
      try {
        for (let i = 0; i < arriving.length; ) {
          const n = 1 + Math.floor(rand() * 60);
          const batch = arriving.slice(i, i + n);
          i += n;
          clock += 1 + Math.floor(rand() * 20_000); // arrivals over minutes: retention has whole PostgreSQL partitions to drop
          await store.insertHops(batch, clock);
          for (const r of batch) {
            // A resend is a duplicate: the stored record keeps the time it first arrived.
            const key = JSON.stringify(r, Object.keys(r).sort());
            if (!firstSeen.has(key)) firstSeen.set(key, clock);
          }
          const roll = rand();
          if (roll < 0.3) await store.flushSummaries(NOW);
          else if (roll < 0.36) {
            // A restart mid-chain: whatever was not flushed yet is picked up from the records.
            store = await t.reopen();
          }
        }
        for (const records of chains.values()) {
          for (const r of records) receivedAt.set(r, firstSeen.get(JSON.stringify(r, Object.keys(r).sort()))!);
        }
        await store.flushSummaries(NOW);
        const expected = new Map<string, Summary>();
        for (const [id, records] of chains) {
          expected.set(id, rebuilt(id, records, receivedAt, NOW));
          expect(await store.chainSummary(id), `chain ${id}, seed ${seed}`).toEqual(expected.get(id));
        }
        expect((await store.stats()).chains).toBe(chains.size);
        // Failure groups: every minute's counts are the sum over the chains' summaries, each chain tagged once per group.
        const all = recount([...expected.values()]);
        expect(all.length).toBeGreaterThan(5);
        let rows = await t.failureRows();
        expect(rows.buckets).toEqual(all);
        // Every counted group is described (groups only seen in a chain's partial state stay described, uncounted).
        expect(rows.described).toEqual(expect.arrayContaining([...new Set(all.map((r) => r.fingerprint))]));
        const tagsOf = (list: Summary[]) => list.reduce((n, x) => n + new Set((x?.failureTally ?? []).map((t) => t.fingerprint)).size, 0);
        expect(rows.tags).toBe(tagsOf([...expected.values()]));
        topologyBefore = await t.topologyRows();
        // Retention takes its chains' counts with it: what stays is the sum over the chains that stay.
        const times = [...expected.values()].map((x) => x!.updatedAt).sort((a, b) => a - b);
        const cutoff = times[Math.floor(times.length / 2)];
        await store.applyRetention({ maxAgeMs: clock - cutoff }, clock);
        // What stays: in SQLite the chains idle since the cutoff; in PostgreSQL the chains with records in
        // the partitions kept (a chain straddling the cutoff summarized again from the records it keeps).
        const stored = (await Promise.all([...chains.keys()].map((id) => store.chainSummary(id)))).filter((x) => x !== undefined);
        expect(stored.length).toBeGreaterThan(0);
        expect(stored.length).toBeLessThan(chains.size);
        if (kind.name === 'SQLite') expect(stored.length).toBe([...expected.values()].filter((x) => x!.updatedAt >= cutoff).length);
        expect((await store.stats()).chains).toBe(stored.length);
        rows = await t.failureRows();
        expect(rows.buckets).toEqual(recount(stored));
        expect(rows.tags).toBe(tagsOf(stored));
      } finally {
        await store.close();
      }
      // Topology is counted once per hop whatever the batching: the same buckets as one batch in order.
      const reference = await kind.create({ engine: SETTINGS });
      await reference.store.insertHops(all, NOW);
      await reference.store.close();
      expect(topologyBefore).toEqual(await reference.topologyRows());
    });
  }

  it('a chain whose messages turn lost or stuck with time alone gets the summary a full rebuild at that time gives', async () => {
    const settings: EngineSettings = { lostAfterMs: 60_000, stuckAfterMs: 60_000, redeliveryLoopThreshold: 5 };
    const lost = lostMessageChain({ seed: 900 });
    const stuck = stuckMessageChain({ seed: 901 });
    const { store } = await kind.create({ engine: settings });
    try {
      const records = (hops: readonly StoredHop[]) => hops.map(({ id: _id, receivedAt: _r, ...h }) => h as HopRecord);
      await store.insertHops([...records(lost.hops), ...records(stuck.hops)], 1000);
      const later = Math.max(...[...lost.hops, ...stuck.hops].map((h) => h.ts)) + 120_000;
      await store.flushSummaries(later - 200_000);
      await store.refreshUnsettled(later, 100);
      for (const f of [lost, stuck]) {
        const expected = summarizeChainHops(f.correlationId, f.hops.map((h) => ({ ...h, receivedAt: 1000 })), { now: later, updatedAt: 1000 }, settings).summary;
        expect(await store.chainSummary(f.correlationId)).toEqual(expected);
      }
    } finally {
      await store.close();
    }
  });
});
}
