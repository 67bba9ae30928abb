/**
 * Two collectors, each a process of its own (`hoptrace collector --store
 * postgres://…`), on one PostgreSQL database: what a load balancer in front
 * of them relies on.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LiveChainEvent } from '../collector/api-types.ts';
import { LOCK, LOCK_SPACE } from '../collector/pg-db.ts';
import { PgStore } from '../collector/pg-store.ts';
import { waitFor } from './helpers/broker.ts';
import { spawnCollector, type CollectorChild } from './helpers/collector-cli.ts';
import { getJson, makeHop, messageHops, postHops } from './helpers/collector.ts';
import { freshDatabase, type TestDatabase } from './helpers/postgres.ts';

let db: TestDatabase;
beforeAll(async () => {
  db = await freshDatabase('cluster');
});
afterAll(async () => {
  await db?.drop();
});

let schemas = 0;
const newStoreUrl = () => db.schemaUrl(`c${++schemas}`);

/** Both collectors on one store; stopped (or reaped, when a test killed one) at the end. */
async function twoCollectors(url: string, args: string[] = []): Promise<[CollectorChild, CollectorChild]> {
  // The first creates the schema; starting both at once is the migration test's job (collector-pg-store).
  const a = await spawnCollector(['--store', url, ...args]);
  const b = await spawnCollector(['--store', url, ...args]);
  return [a, b];
}

/** Seeded shuffle, so a failure can be replayed. */
function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  let s = seed;
  for (let i = out.length - 1; i > 0; i--) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** Read server-sent chain events from a collector until `until` says stop. */
async function liveEvents(url: string, until: (events: LiveChainEvent[]) => boolean, started: () => Promise<void>): Promise<LiveChainEvent[]> {
  const controller = new AbortController();
  const res = await fetch(`${url}/api/live`, { signal: controller.signal });
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  const events: LiveChainEvent[] = [];
  try {
    await started();
    let text = '';
    const deadline = Date.now() + 15_000;
    while (!until(events)) {
      if (Date.now() > deadline) throw new Error(`no such live event within 15 s; got ${JSON.stringify(events)}`);
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
      for (let m = /event: chain\ndata: (.*)\n\n/.exec(text); m; m = /event: chain\ndata: (.*)\n\n/.exec(text)) {
        events.push(JSON.parse(m[1]) as LiveChainEvent);
        text = text.slice(m.index + m[0].length);
      }
    }
  } finally {
    controller.abort();
  }
  return events;
}

/** A chain's stored summary, as the list shows it (the detail view is computed at read time instead). */
async function summaryOf(url: string, correlationId: string): Promise<{ status: string; hopCount: number } | undefined> {
  return (await getJson(url, `/api/chains?q=${encodeURIComponent(correlationId)}`)).body.items[0];
}

/** The application name of the session holding this schema's sweep lock, if any. */
async function sweepHolder(schema: string): Promise<string | undefined> {
  const rows = await db.sql<{ application_name: string }>(
    `SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
     WHERE l.locktype = 'advisory' AND l.granted AND l.classid = $1 AND l.objid = ((hashtext($2)::int8 + 4294967296) % 4294967296)::oid`,
    [LOCK_SPACE + LOCK.sweep, schema],
  );
  return rows[0]?.application_name;
}

describe('two collectors on one PostgreSQL database', () => {
  it('hops of one chain split across both collectors in shuffled order give the same chain from either', async () => {
    const [a, b] = await twoCollectors(newStoreUrl());
    try {
      const correlationId = randomUUID();
      const hops = Array.from({ length: 12 }, (_, i) =>
        messageHops({ correlationId, ts: 1_700_000_000_000 + i * 10 }, { consumer: i % 2 ? 'billing' : 'ledger' }),
      ).flat();
      const order = shuffled(hops, 7);
      // Alternate small requests between the collectors, concurrently, as a round-robin balancer would.
      const requests: Promise<{ status: number }>[] = [];
      for (let i = 0; i < order.length; i += 3) requests.push(postHops((i / 3) % 2 ? a.url : b.url, order.slice(i, i + 3)));
      for (const r of await Promise.all(requests)) expect(r.status).toBe(202);
      const fromA = await getJson(a.url, `/api/chains/${correlationId}`);
      const fromB = await getJson(b.url, `/api/chains/${correlationId}`);
      expect(fromA.status).toBe(200);
      expect(fromA.body).toMatchObject({ status: 'ok', hopCount: hops.length, messageCount: 12 });
      // The same chain, judged at the moment each was asked (judgedAt) and otherwise identical.
      const { judgedAt: _atA, ...chainA } = fromA.body;
      const { judgedAt: _atB, ...chainB } = fromB.body;
      expect(chainB).toEqual(chainA);
      const listA = await getJson(a.url, '/api/chains?service=ledger');
      expect(listA.body.items.map((c: { correlationId: string }) => c.correlationId)).toEqual([correlationId]);
      expect((await getJson(b.url, '/api/chains?service=ledger')).body).toEqual(listA.body);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  it('a live client of one collector hears a chain ingested through the other', async () => {
    const [a, b] = await twoCollectors(newStoreUrl());
    try {
      const send = makeHop();
      const events = await liveEvents(
        a.url,
        (e) => e.some((x) => x.chain.correlationId === send.correlationId),
        async () => {
          await waitFor(async () => /hoptrace_sse_clients 1/.test(await (await fetch(`${a.url}/metrics`)).text()), 'the live client');
          expect((await postHops(b.url, [send])).status).toBe(202);
        },
      );
      expect(events).toContainEqual({ type: 'new', chain: expect.objectContaining({ correlationId: send.correlationId, status: 'in-flight' }) });
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  it('SIGKILL of a collector mid-ingest loses nothing it answered 202 for', async () => {
    const url = newStoreUrl();
    const [a, b] = await twoCollectors(url);
    try {
      const acknowledged: ReturnType<typeof messageHops>[] = [];
      let failed = 0;
      let killed = false;
      const lane = async (lane: number) => {
        for (let i = 0; i < 400 && !killed; i++) {
          const batch = Array.from({ length: 25 }, (_, k) => messageHops({ correlationId: `kill-${lane}-${i}-${k}` })).flat();
          try {
            const r = await postHops(a.url, batch);
            if (r.status === 202) acknowledged.push(batch);
          } catch {
            failed++;
            return;
          }
        }
      };
      const lanes = [0, 1, 2, 3].map(lane);
      await waitFor(() => acknowledged.length >= 10, '10 acknowledged requests');
      a.kill('SIGKILL');
      killed = true;
      await Promise.all(lanes);
      expect(acknowledged.length).toBeGreaterThanOrEqual(10);
      // Everything acknowledged is there, read through the survivor (summaries included).
      const stored = await PgStore.open({ url, poolSize: 2 });
      try {
        const chains = new Set(acknowledged.flat().map((h) => h.correlationId));
        for (const id of chains) expect((await stored.chainHops(id)).length, `chain ${id}`).toBe(4);
      } finally {
        await stored.close();
      }
      for (const batch of acknowledged.slice(-3)) {
        expect(await summaryOf(b.url, batch[0].correlationId)).toMatchObject({ status: 'ok', hopCount: 4 });
      }
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  it('summary work a killed collector left undone is finished by the other', async () => {
    const url = newStoreUrl();
    const schema = new URL(url).searchParams.get('schema')!;
    const [a, b] = await twoCollectors(url);
    // Hold the flush lock as retention does: no flush anywhere can claim the marks meanwhile.
    const pg = (await import('pg')).default;
    const holder = new pg.Client({ connectionString: db.url });
    await holder.connect();
    try {
      await holder.query('SELECT pg_advisory_lock($1::int4, hashtext($2))', [LOCK_SPACE + LOCK.flush, schema]);
      const hops = messageHops({ correlationId: randomUUID() });
      expect((await postHops(a.url, hops)).status).toBe(202);
      const marks = await db.sql<{ n: number }>(`SELECT count(*)::int AS n FROM ${schema}.dirty_chains`);
      expect(marks[0].n).toBe(1);
      a.kill('SIGKILL');
      await a.stop();
      await holder.query('SELECT pg_advisory_unlock($1::int4, hashtext($2))', [LOCK_SPACE + LOCK.flush, schema]);
      // B's background flush takes the mark; no read of B forces it.
      await waitFor(async () => (await db.sql<{ n: number }>(`SELECT count(*)::int AS n FROM ${schema}.dirty_chains`))[0].n === 0, 'the mark to be flushed');
      expect(await summaryOf(b.url, hops[0].correlationId)).toMatchObject({ status: 'ok', hopCount: 4 });
    } finally {
      await holder.end();
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  it('the sweep moves to the surviving collector when the one running it is killed', async () => {
    const url = newStoreUrl();
    const schema = new URL(url).searchParams.get('schema')!;
    const [a, b] = await twoCollectors(url, ['--lost-after-ms', '3000']);
    try {
      // The sweep runs every 5 s: whichever collector asks first holds the lock.
      const first = await waitFor(() => sweepHolder(schema), 'a collector to take the sweep', 15_000);
      const [holder, survivor] = first === `hoptrace collector ${a.pid} coordinator` ? [a, b] : [b, a];
      expect(first).toBe(`hoptrace collector ${holder.pid} coordinator`);
      holder.kill('SIGKILL');
      await holder.stop();
      const send = makeHop();
      expect((await postHops(survivor.url, [send])).status).toBe(202);
      // Summarized in flight first; from then on only the sweep turns it lost (no new record comes).
      expect(await summaryOf(survivor.url, send.correlationId)).toMatchObject({ status: 'in-flight' });
      await waitFor(
        async () => (await summaryOf(survivor.url, send.correlationId))?.status === 'lost',
        'the survivor to sweep the chain to lost',
        20_000,
      );
      expect(await waitFor(() => sweepHolder(schema), 'the survivor to hold the sweep lock')).toBe(`hoptrace collector ${survivor.pid} coordinator`);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });
});
