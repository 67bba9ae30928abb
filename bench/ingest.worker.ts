/**
 * One ingest measurement in a process of its own. Modes:
 *
 * - `ceiling`: raw `node:sqlite` INSERTs of the same rows into the store's own
 *   schema (same table, same indexes, same PRAGMAs), every value computed
 *   before the clock starts, in one transaction (or one per `batch` rows):
 *   what SQLite itself can take, with nothing of ours (validation, canonical
 *   JSON, dedupe, chain summaries).
 * - `store`: `SqliteStore.insertHops` in batches, in this process, no HTTP:
 *   the store and chain engine without the server.
 * - `http`: `POST /v1/hops` to a running collector with N requests in flight;
 *   a hop counts when its request was answered 202 (committed).
 *
 * Hops come from lib/hop-gen.ts in arrival (time) order, with a seed that
 * differs from the cached store's, so nothing is a duplicate of what is there.
 */
import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';
import { DatabaseSync } from 'node:sqlite';
import { DEFAULT_ENGINE_OPTIONS } from '../collector/chain-engine.ts';
import { migrate } from '../collector/migrations.ts';
import { encodeRecord, packId, type StringTable } from '../collector/record-codec.ts';
import { dedupeKey, KIND_CODE } from '../collector/record-identity.ts';
import { SqliteStore } from '../collector/sqlite-store.ts';
import type { HopRecord } from '../src/contract/hop.ts';
import { workerMain } from './lib/child.ts';
import { HopGenerator, hopsInTimeOrder } from './lib/hop-gen.ts';
import { recordsInTimeOrder } from './lib/record-gen.ts';
import { progressEvery } from './lib/progress.ts';

export interface IngestInput {
  mode: 'ceiling' | 'store' | 'http';
  hops: number;
  seed: number;
  startTs: number;
  chainGapMs: number;
  /** Database file (ceiling, store). */
  db?: string;
  /** Collector base URL (http). */
  url?: string;
  /** Hops per request / per insertHops call. */
  batch?: number;
  /** Requests in flight (http). */
  concurrency?: number;
  /**
   * http: what to send. `v1`: one record per hop (lib/hop-gen.ts); `v2`: the same traffic as the
   * version-2 library writes it, one record per message per side (lib/record-gen.ts); `hops` then
   * counts records. @default 'v1'
   */
  records?: 'v1' | 'v2';
  /**
   * http: generate and serialize each request's hops when it is sent instead
   * of all up front (for a million hops, which would not fit in memory as
   * objects). The client then competes for CPU with the collector.
   */
  lazy?: boolean;
}

export interface IngestOutput {
  /** Records committed (hops, for version-1 records). */
  hops: number;
  /** v2: distinct messages the committed records are about. */
  messages?: number;
  wallMs: number;
  requests?: number;
  /** Request latency percentiles (http), ms. */
  latency?: { p50: number; p99: number };
  /**
   * After the last hop was committed: how long until every chain summary
   * was up to date (the collector rebuilds summaries off the write path).
   * http: the latency of a `GET /api/chains?limit=1`, which brings pending
   * summaries up to date first; store: a final `flushSummaries()`.
   */
  catchUpMs?: number;
}

export function generateHops(input: Pick<IngestInput, 'hops' | 'seed' | 'startTs' | 'chainGapMs'>): HopRecord[] {
  const generator = new HopGenerator({ seed: input.seed, startTs: input.startTs, chainGapMs: input.chainGapMs });
  return [...hopsInTimeOrder(generator, input.hops)];
}

function ceiling(input: IngestInput, hops: HopRecord[]): IngestOutput {
  const db = new DatabaseSync(input.db!);
  db.exec('PRAGMA journal_mode = WAL');
  db.exec('PRAGMA synchronous = FULL');
  db.exec('PRAGMA cache_size = -65536');
  migrate(db);
  // The store's names, interned before the clock starts like everything else;
  // a store that already holds some keeps their ids (new ones follow them).
  const known = db.prepare('SELECT id, text FROM strings').all() as { id: number; text: string }[];
  const names = new Map<string, number>(known.map((r) => [r.text, r.id]));
  let nextId = known.reduce((max, r) => Math.max(max, r.id), 0);
  const added: [string, number][] = [];
  const strings: StringTable = {
    idOf(text) {
      let id = names.get(text);
      if (id === undefined && text.length <= 256) {
        names.set(text, (id = ++nextId));
        added.push([text, id]);
      }
      return id;
    },
    textOf: () => '',
  };
  const receivedAt = Date.now();
  const rows = hops.map(
    (hop) =>
      [
        packId(hop.messageId),
        packId(hop.correlationId),
        dedupeKey(hop),
        KIND_CODE[hop.kind],
        hop.ts,
        receivedAt,
        Buffer.from(encodeRecord(hop as unknown as Record<string, unknown>, strings)),
      ] as const,
  );
  const addName = db.prepare('INSERT INTO strings (id, text) VALUES (?, ?)');
  for (const [text, id] of added) addName.run(id, text);
  const insert = db.prepare(
    `INSERT INTO records (message_id, correlation_id, dkey, kind, ts, received_at, body) VALUES (?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (message_id, dkey) DO NOTHING`,
  );
  // One transaction (the ceiling), or one per `batch` rows: what SQLite alone
  // costs at the store's commit size, fsync and index pages included.
  const per = input.batch ?? rows.length;
  const t0 = performance.now();
  for (let i = 0; i < rows.length; i += per) {
    db.exec('BEGIN IMMEDIATE');
    for (let j = i; j < Math.min(rows.length, i + per); j++) insert.run(...rows[j]);
    db.exec('COMMIT');
  }
  const wallMs = performance.now() - t0;
  db.close();
  return { hops: rows.length, wallMs };
}

async function store(input: IngestInput, hops: HopRecord[]): Promise<IngestOutput> {
  const s = new SqliteStore({ path: input.db!, engine: DEFAULT_ENGINE_OPTIONS });
  const batch = input.batch ?? 1000;
  const report = progressEvery(5_000);
  const t0 = performance.now();
  for (let i = 0; i < hops.length; i += batch) {
    await s.insertHops(hops.slice(i, i + batch), Date.now());
    report(() => `ingest: store direct ${i.toLocaleString('en-US')} / ${hops.length.toLocaleString('en-US')}`);
  }
  const wallMs = performance.now() - t0;
  const t1 = performance.now();
  await s.flushSummaries(Date.now());
  const catchUpMs = performance.now() - t1;
  await s.close();
  return { hops: hops.length, wallMs, catchUpMs };
}

async function http(input: IngestInput): Promise<IngestOutput> {
  const batch = input.batch ?? 100;
  const total = input.hops;
  const requests = Math.ceil(total / batch);
  const messageIds = new Set<string>();
  const serialize = (records: { messageId: string }[]) => {
    if (input.records === 'v2') for (const r of records) messageIds.add(r.messageId);
    return Buffer.from(records.map((h) => JSON.stringify(h)).join('\n') + '\n');
  };
  const stream = (): Iterator<{ messageId: string }> =>
    input.records === 'v2' ? recordsInTimeOrder(new HopGenerator(input), total) : hopsInTimeOrder(new HopGenerator(input), total);
  let body: (i: number) => Buffer;
  if (input.lazy) {
    const records = stream();
    body = () => {
      const batchRecords: { messageId: string }[] = [];
      for (let r = records.next(); !r.done; r = records.next()) {
        batchRecords.push(r.value);
        if (batchRecords.length === batch) break;
      }
      return serialize(batchRecords);
    };
  } else {
    // Bodies are serialized before the clock starts: the client's work is not the collector's.
    const all: { messageId: string }[] = [];
    const records = stream();
    for (let r = records.next(); !r.done; r = records.next()) all.push(r.value);
    const bodies: Buffer[] = [];
    for (let i = 0; i < all.length; i += batch) bodies.push(serialize(all.slice(i, i + batch)));
    body = (i) => bodies[i];
  }
  const agent = new Agent({ keepAlive: true, maxSockets: input.concurrency ?? 8 });
  const url = new URL('/v1/hops', input.url);
  const latencies: number[] = [];
  let next = 0;
  let accepted = 0;
  const report = progressEvery(5_000);
  const post = (body: Buffer) =>
    new Promise<number>((resolve, reject) => {
      const req = request(
        url,
        { method: 'POST', agent, headers: { 'content-type': 'application/x-ndjson', 'content-length': body.length } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            if (res.statusCode !== 202) return reject(new Error(`POST /v1/hops answered ${res.statusCode}: ${text.slice(0, 500)}`));
            resolve((JSON.parse(text) as { accepted: number }).accepted);
          });
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  const lane = async () => {
    while (next < requests) {
      const b = body(next++);
      const t = performance.now();
      const n = await post(b); // not `accepted += await …`: that reads `accepted` before the await
      accepted += n;
      latencies.push(performance.now() - t);
      report(() => `ingest: POST /v1/hops batch ${batch}: ${accepted.toLocaleString('en-US')} / ${total.toLocaleString('en-US')} hops`);
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: input.concurrency ?? 8 }, lane));
  const wallMs = performance.now() - t0;
  const t1 = performance.now();
  await new Promise<void>((resolve, reject) => {
    request(new URL('/api/chains?limit=1', input.url), { agent }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`GET /api/chains answered ${res.statusCode}`))));
    })
      .on('error', reject)
      .end();
  });
  const catchUpMs = performance.now() - t1;
  agent.destroy();
  if (accepted !== total) throw new Error(`the collector accepted ${accepted} of ${total} hops`);
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))];
  return {
    hops: accepted,
    ...(input.records === 'v2' ? { messages: messageIds.size } : {}),
    wallMs,
    requests,
    latency: { p50: at(0.5), p99: at(0.99) },
    catchUpMs,
  };
}

async function main(input: IngestInput): Promise<IngestOutput> {
  if (input.mode === 'http') return http(input);
  const hops = generateHops(input);
  return input.mode === 'ceiling' ? ceiling(input, hops) : store(input, hops);
}

workerMain(main);
