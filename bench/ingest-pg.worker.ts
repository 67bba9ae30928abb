/**
 * One PostgreSQL ingest measurement in a process of its own. Modes:
 *
 * - `copy`: the ceiling: raw `COPY … FROM STDIN` of the same rows into the
 *   store's own `records` table (all its indexes), every value computed and
 *   every name interned before the clock starts; in one transaction, or one
 *   per `batch` rows. No dedupe, no dirty marks, no summaries.
 * - `store`: `PgStore.insertHops` in batches, `concurrency` in flight, no HTTP.
 * - `http`: `POST /v1/hops` to one or more collectors, requests dealt round
 *   robin over them, `concurrency` in flight per collector; a hop counts
 *   when its request was answered 202 (committed).
 */
import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { DEFAULT_ENGINE_OPTIONS } from '../collector/chain-engine.ts';
import type { PgInsertMethod } from '../collector/pg-commit.ts';
import { pgId } from '../collector/pg-ids.ts';
import { PgStore } from '../collector/pg-store.ts';
import { encodeRecord, type StringTable } from '../collector/record-codec.ts';
import { dedupeKey, KIND_CODE } from '../collector/record-identity.ts';
import type { HopRecord } from '../src/contract/hop.ts';
import { workerMain } from './lib/child.ts';
import { HopGenerator, hopsInTimeOrder } from './lib/hop-gen.ts';
import { progressEvery } from './lib/progress.ts';

export interface PgIngestInput {
  mode: 'copy' | 'store' | 'http';
  hops: number;
  seed: number;
  startTs: number;
  chainGapMs: number;
  /** Store URL (copy, store). */
  url?: string;
  /** Collector base URLs (http). */
  urls?: string[];
  batch?: number;
  /** In flight: in total (store), per collector (http). */
  concurrency?: number;
  method?: PgInsertMethod;
}

export interface PgIngestOutput {
  hops: number;
  wallMs: number;
  latency?: { p50: number; p99: number };
  /** After the last commit, until every summary was up to date. */
  catchUpMs?: number;
}

function generate(input: PgIngestInput): HopRecord[] {
  return [...hopsInTimeOrder(new HopGenerator({ seed: input.seed, startTs: input.startTs, chainGapMs: input.chainGapMs }), input.hops)];
}

async function copy(input: PgIngestInput, hops: HopRecord[]): Promise<PgIngestOutput> {
  // The schema and a partition of the store's own, made by the store; then a plain client.
  const receivedAt = Date.now();
  const store = await PgStore.open({ url: input.url!, poolSize: 1 });
  await store.close();
  const target = new URL(input.url!);
  const schema = target.searchParams.get('schema')!;
  target.searchParams.delete('schema');
  const client = new pg.Client({ connectionString: target.toString(), options: `-c search_path=${schema}` });
  await client.connect();
  try {
    const { rows: meta } = await client.query<{ value: string }>("SELECT value FROM meta WHERE key = 'partition_ms'");
    const part = Math.floor(receivedAt / Number(meta[0].value));
    for (const t of ['records', 'topology_buckets', 'topology_waits']) {
      await client.query(`CREATE TABLE IF NOT EXISTS ${t}_p${part} PARTITION OF ${t} FOR VALUES IN (${part})`);
    }
    const names = new Map<string, number>();
    const strings: StringTable = {
      idOf(text) {
        let id = names.get(text);
        if (id === undefined && text.length <= 256) names.set(text, (id = names.size + 1));
        return id;
      },
      textOf: () => '',
    };
    const lines = hops.map(
      (h) =>
        `${part}\t\\\\x${pgId(h.messageId).toString('hex')}\t\\\\x${pgId(h.correlationId).toString('hex')}\t${dedupeKey(h)}\t${KIND_CODE[h.kind]}\t${h.ts}\t${receivedAt}\t\\\\x${Buffer.from(
          encodeRecord(h as unknown as Record<string, unknown>, strings),
        ).toString('hex')}\n`,
    );
    await client.query('INSERT INTO strings (id, text) SELECT * FROM unnest($1::int[], $2::text[]) ON CONFLICT DO NOTHING', [[...names.values()], [...names.keys()]]);
    const per = input.batch ?? lines.length;
    const chunks: Buffer[] = [];
    for (let i = 0; i < lines.length; i += per) chunks.push(Buffer.from(lines.slice(i, i + per).join('')));
    const t0 = performance.now();
    for (const chunk of chunks) {
      await client.query('BEGIN');
      await pipeline(Readable.from([chunk]), client.query(copyFrom('COPY records (part, message_id, correlation_id, dkey, kind, ts, received_at, body) FROM STDIN')));
      await client.query('COMMIT');
    }
    return { hops: hops.length, wallMs: performance.now() - t0 };
  } finally {
    await client.end();
  }
}

async function store(input: PgIngestInput, hops: HopRecord[]): Promise<PgIngestOutput> {
  const s = await PgStore.open({ url: input.url!, engine: DEFAULT_ENGINE_OPTIONS, insertMethod: input.method, poolSize: (input.concurrency ?? 4) + 2 });
  const batch = input.batch ?? 1000;
  const batches: HopRecord[][] = [];
  for (let i = 0; i < hops.length; i += batch) batches.push(hops.slice(i, i + batch));
  let next = 0;
  const report = progressEvery(5_000);
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: input.concurrency ?? 4 }, async () => {
      while (next < batches.length) {
        const b = batches[next++];
        await s.insertHops(b, Date.now());
        report(() => `ingest-pg: store direct (${input.method}) ${(next * batch).toLocaleString('en-US')} / ${hops.length.toLocaleString('en-US')}`);
      }
    }),
  );
  const wallMs = performance.now() - t0;
  const t1 = performance.now();
  await s.listChains({ limit: 1 }); // brings every summary up to date first
  const catchUpMs = performance.now() - t1;
  await s.close();
  return { hops: hops.length, wallMs, catchUpMs };
}

async function http(input: PgIngestInput, hops: HopRecord[]): Promise<PgIngestOutput> {
  const batch = input.batch ?? 1000;
  const urls = input.urls!;
  const per = input.concurrency ?? 4;
  const bodies: Buffer[] = [];
  for (let i = 0; i < hops.length; i += batch) bodies.push(Buffer.from(hops.slice(i, i + batch).map((h) => JSON.stringify(h)).join('\n') + '\n'));
  const agent = new Agent({ keepAlive: true, maxSockets: per * urls.length });
  const latencies: number[] = [];
  let next = 0;
  let accepted = 0;
  const report = progressEvery(5_000);
  const post = (url: URL, body: Buffer) =>
    new Promise<number>((resolve, reject) => {
      const req = request(url, { method: 'POST', agent, headers: { 'content-type': 'application/x-ndjson', 'content-length': body.length } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          if (res.statusCode !== 202) return reject(new Error(`POST /v1/hops answered ${res.statusCode}: ${text.slice(0, 300)}`));
          resolve((JSON.parse(text) as { accepted: number }).accepted);
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
  const lane = async (url: URL) => {
    while (next < bodies.length) {
      const b = bodies[next++];
      const t = performance.now();
      const n = await post(url, b);
      accepted += n;
      latencies.push(performance.now() - t);
      report(() => `ingest-pg: POST to ${urls.length} collector(s): ${accepted.toLocaleString('en-US')} / ${hops.length.toLocaleString('en-US')}`);
    }
  };
  const t0 = performance.now();
  await Promise.all(urls.flatMap((u) => Array.from({ length: per }, () => lane(new URL('/v1/hops', u)))));
  const wallMs = performance.now() - t0;
  const t1 = performance.now();
  await new Promise<void>((resolve, reject) => {
    request(new URL('/api/chains?limit=1', urls[0]), { agent }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`GET /api/chains answered ${res.statusCode}`))));
    })
      .on('error', reject)
      .end();
  });
  const catchUpMs = performance.now() - t1;
  agent.destroy();
  if (accepted !== hops.length) throw new Error(`the collectors accepted ${accepted} of ${hops.length} hops`);
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))];
  return { hops: accepted, wallMs, latency: { p50: at(0.5), p99: at(0.99) }, catchUpMs };
}

async function main(input: PgIngestInput): Promise<PgIngestOutput> {
  const hops = generate(input);
  if (input.mode === 'copy') return copy(input, hops);
  if (input.mode === 'store') return store(input, hops);
  return http(input, hops);
}

workerMain(main);
