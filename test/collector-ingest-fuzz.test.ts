/**
 * Fuzz of `POST /v1/hops` against a real collector: random values and
 * mutated valid records (version 1 and 2, bare and as pino lines), with
 * depth and size extremes, in requests that mix them with valid records.
 * No request may draw a 5xx, every valid record must be kept, and afterwards
 * every chain, message, export, list page and the topology must read back
 * without a 5xx. The seed is fixed (override with HOPTRACE_FUZZ_SEED) and
 * printed with every failure.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChainList } from '../collector/api-types.ts';
import { getJson, startTestCollector, type TestCollector } from './helpers/collector.ts';

const SEED = Number(process.env.HOPTRACE_FUZZ_SEED ?? 0x15c0ffee) >>> 0;
const CASES = Number(process.env.HOPTRACE_FUZZ_CASES ?? 2400);

/** mulberry32: small, fast, and the same sequence for the same seed everywhere. */
function prng(seed: number) {
  let a = seed;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number): number => Math.floor(next() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)];
  const chance = (p: number): boolean => next() < p;
  const hex = (chars: number): string => {
    let s = '';
    for (let i = 0; i < chars; i++) s += '0123456789abcdef'[int(16)];
    return s;
  };
  return { next, int, pick, chance, hex };
}
type Rng = ReturnType<typeof prng>;

/** A value spliced into the request text as it is (deep nesting JSON.stringify itself could not write). */
class Raw {
  readonly text: string;
  constructor(text: string) {
    this.text = text;
  }
}

/** Serialize with {@link Raw} values spliced in as text. */
function toLine(value: unknown): string {
  const raws: string[] = [];
  const text = JSON.stringify(value, (_k, v: unknown) => {
    if (v instanceof Raw) {
      raws.push(v.text);
      return `\u0000RAW${raws.length - 1}\u0000`;
    }
    return v;
  });
  return text.replace(/"\\u0000RAW(\d+)\\u0000"/g, (_m, i: string) => raws[Number(i)]);
}

const deepObject = (depth: number): Raw => new Raw('{"a":'.repeat(depth) + '1' + '}'.repeat(depth));
const deepArray = (depth: number): Raw => new Raw('['.repeat(depth) + ']'.repeat(depth));

/** Ids drawn from small pools, so records land in shared chains and point at each other (cycles included). */
const CORRELATIONS = Array.from({ length: 12 }, (_, i) => `fuzz-chain-${i}`);
const MESSAGES = Array.from({ length: 40 }, (_, i) => `fuzz-msg-${i}`);
const SERVICES = ['orders', 'billing', 'mailer', 'ü'.repeat(300), 'x'.repeat(1024)];

function hostileValue(r: Rng, maxDepth = 60_000): unknown {
  switch (r.int(22)) {
    case 0: return deepObject(1 + r.int(maxDepth));
    case 1: return deepArray(1 + r.int(maxDepth));
    case 2: return 'x'.repeat(r.pick([1025, 65_537, 1_048_577, 200_000]));
    case 3: return r.pick([-1, -0, 1.5, 1e308, -1e308, 8.64e15 + 1, Number.MAX_SAFE_INTEGER + 2, 2 ** 53]);
    case 4: return null;
    case 5: return r.pick([true, false]);
    case 6: return [];
    case 7: return {};
    case 8: return Array.from({ length: r.pick([1001, 5000]) }, () => 'k');
    case 9: return Object.fromEntries(Array.from({ length: r.pick([1001, 3000]) }, (_, i) => [`h${i}`, 'v']));
    case 10: return { __proto__: { polluted: true }, constructor: { prototype: { polluted: true } } };
    case 11: return '\ud800\udfff\ud800';
    case 12: return '\u0000\u001f\u2028';
    case 13: return 'NaN';
    case 14: return { [`k${'y'.repeat(2000)}`]: 'v' };
    case 15: return [deepObject(Math.min(5000, maxDepth))];
    case 16: return { type: 'E', message: deepObject(Math.min(5000, maxDepth)) };
    case 17: return [{ queue: 'q', reason: 'rejected', count: r.pick([-1, 1.5, 1e300]), exchange: '', routingKeys: [] }];
    case 18: return [{ queue: 'q', reason: 'expired', count: 1, exchange: '', routingKeys: [], time: r.pick([1e306, -1e306, 'soon']) }];
    case 19: return r.hex(r.pick([31, 32, 33, 16]));
    case 20: return { a: { b: { c: { d: deepArray(Math.min(40_000, maxDepth)) } } } };
    default: return r.int(1 << 30);
  }
}

function validV1(r: Rng): Record<string, unknown> {
  const kind = r.pick(['send', 'confirm', 'return', 'receive', 'process', 'settle']);
  const hop: Record<string, unknown> = {
    v: 1,
    kind,
    ts: Date.now() - r.int(100_000),
    service: r.pick(SERVICES),
    instance: `fuzz/${r.int(5)}`,
    traceId: r.hex(32),
    spanId: r.hex(16),
    correlationId: r.pick(CORRELATIONS),
    messageId: r.pick(MESSAGES),
    exchange: r.pick(['', 'orders']),
    routingKey: r.pick(['order.created', 'x']),
  };
  if (r.chance(0.5)) hop.causationId = r.pick(MESSAGES);
  if (r.chance(0.3)) hop.parentSpanId = r.hex(16);
  if (kind === 'receive' || kind === 'process' || kind === 'settle') {
    hop.queue = r.pick(['q1', 'q2']);
    hop.deliveryTag = r.int(100);
  }
  if (kind === 'receive') {
    hop.redelivered = r.chance(0.3);
    if (r.chance(0.3)) {
      hop.death = [{ queue: 'q1', reason: 'rejected', count: 1 + r.int(3), exchange: 'orders', routingKeys: ['order.created'], time: Date.now() }];
      hop.deathCount = 1;
    }
  }
  if (kind === 'process') {
    hop.outcome = r.pick(['ok', 'error']);
    hop.durationMs = r.next() * 100;
    if (hop.outcome === 'error') hop.error = { type: 'Error', message: 'boom', stack: 'at x' };
  }
  if (kind === 'settle') {
    hop.outcome = r.pick(['ack', 'nack', 'reject']);
    hop.requeue = r.chance(0.5);
  }
  if (kind === 'confirm') hop.outcome = r.pick(['ack', 'nack']);
  if (kind === 'return') {
    hop.outcome = 'returned';
    hop.replyCode = 312;
    hop.replyText = 'NO_ROUTE';
  }
  if (r.chance(0.3)) hop.headers = { 'x-tenant': 'acme', 'x-n': String(r.int(9)) };
  if (r.chance(0.3)) hop.properties = { deliveryMode: 2, priority: r.int(10), replyTo: 'amq.rabbitmq.reply-to' };
  return hop;
}

function validV2(r: Rng): Record<string, unknown> {
  const base = {
    v: 2,
    ts: Date.now() - r.int(100_000),
    service: r.pick(SERVICES),
    traceId: r.hex(32),
    spanId: r.hex(16),
    messageId: r.pick(MESSAGES),
    ...(r.chance(0.7) ? { correlationId: r.pick(CORRELATIONS) } : {}),
    ...(r.chance(0.5) ? { causationId: r.pick(MESSAGES) } : {}),
    ...(r.chance(0.5) ? { instance: `fuzz/${r.int(5)}` } : {}),
  };
  if (r.chance(0.5)) return { ...base, kind: 'publish', routingKey: 'order.created', exchange: 'orders', ...(r.chance(0.5) ? { confirmMs: r.next() } : {}) };
  return {
    ...base,
    kind: 'consume',
    queue: r.pick(['q1', 'q2']),
    deliveryTag: r.int(100),
    processMs: r.next() * 10,
    settle: r.pick(['ack', 'nack', 'reject']),
    settleMs: 11,
    ...(r.chance(0.2) ? { error: { type: 'TypeError', message: 'x' } } : {}),
  };
}

/** As a pino line (hostname and pid supply a version-2 record's instance). */
const asPinoLine = (hop: unknown): Record<string, unknown> => ({ level: 30, time: Date.now(), pid: 7, hostname: 'fuzzhost', hop, msg: 'hop' });

const V1_FIELDS = ['v', 'kind', 'ts', 'service', 'instance', 'traceId', 'spanId', 'parentSpanId', 'correlationId', 'causationId', 'messageId', 'exchange', 'routingKey', 'queue', 'consumerTag', 'deliveryTag', 'redelivered', 'deathCount', 'death', 'outcome', 'requeue', 'multiple', 'replyCode', 'replyText', 'durationMs', 'error', 'messageType', 'contentType', 'bodySize', 'headers', 'properties', 'payload', 'payloadTruncated'];
const V2_FIELDS = ['confirmMs', 'confirm', 'processMs', 'settle', 'settleMs', 'open', 'settleSpanId'];

/** A mutated record: one to three fields set to hostile values, removed, or nested fields added. */
function mutated(r: Rng, maxDepth = 60_000): unknown {
  const rec = r.chance(0.6) ? validV1(r) : validV2(r);
  for (let n = 1 + r.int(3); n > 0; n--) {
    const field = r.chance(0.15) ? `unknown${r.int(4)}` : r.pick([...V1_FIELDS, ...V2_FIELDS]);
    switch (r.int(4)) {
      case 0: delete rec[field]; break;
      case 1: {
        const parent = r.pick(['error', 'properties', 'headers']);
        rec[parent] = { ...(rec[parent] as object | undefined), [r.pick(['type', 'message', 'stack', 'code', 'priority', 'x'])]: hostileValue(r, maxDepth) };
        break;
      }
      default: rec[field] = hostileValue(r, maxDepth);
    }
  }
  return r.chance(0.4) ? asPinoLine(rec) : rec;
}

/** A random JSON value: not a record at all. */
function randomJson(r: Rng, depth = 0): unknown {
  if (depth > 4 || r.chance(0.3)) return r.pick([0, -1, 'hop', null, true, 1e308, '']);
  if (r.chance(0.5)) return Array.from({ length: r.int(4) }, () => randomJson(r, depth + 1));
  const o: Record<string, unknown> = {};
  for (let i = r.int(4); i > 0; i--) o[r.pick(['hop', 'v', 'kind', 'x', 'msg'])] = randomJson(r, depth + 1);
  return o;
}

interface Case {
  line: string;
  /** A record that must be kept (valid by construction); otherwise the collector decides. */
  valid: boolean;
}

function nextCase(r: Rng): Case {
  const roll = r.next();
  if (roll < 0.3) {
    const v = r.chance(0.5) ? validV1(r) : validV2(r);
    if (r.chance(0.5)) return { line: toLine(asPinoLine(v)), valid: true };
    // Bare, a version-2 record needs its own instance (no pino line to take it from).
    return { line: toLine({ instance: 'fuzz/9', ...v }), valid: true };
  }
  if (roll < 0.85) return { line: toLine(mutated(r)), valid: false };
  return { line: toLine(randomJson(r)), valid: false };
}

let collector: TestCollector;
beforeAll(async () => {
  collector = await startTestCollector(process.env.FUZZ_LOG ? { logger: (await import('pino')).pino({ level: 'error' }) } : {});
});
afterAll(async () => {
  await collector?.stop();
});

describe('POST /v1/hops fuzz', () => {
  it(`random and mutated records (${CASES} cases, depth and size extremes) never draw a 5xx, every valid record is kept, and every chain reads back`, { timeout: 300_000 }, async () => {
    await withSeed(SEED, () => fuzzIngest(prng(SEED)));
  });

  it('hops an older collector let into the store unchecked never make a read fail', { timeout: 300_000 }, async () => {
    const seed = SEED ^ 0x5a5a;
    await withSeed(seed, async () => {
      const r = prng(seed);
      const c = await startTestCollector();
      try {
        let stored = 0;
        for (let i = 0; i < 600; i++) {
          const value = JSON.parse(toLine(mutated(r, 800))) as Record<string, unknown>;
          const hop = (value.hop ?? value) as Record<string, unknown>;
          if (typeof hop !== 'object' || hop === null || typeof hop.correlationId !== 'string' || typeof hop.messageId !== 'string') continue;
          // Past ingest's checks, straight into the store, as an older collector wrote them.
          try {
            await c.store.insertHops([hop as never], Date.now());
            stored++;
          } catch {
            // the store itself refused it: nothing stored, nothing to read
          }
        }
        expect(stored).toBeGreaterThan(100);
        const reads = await readEverything(c, (what) => `${what} (fuzz seed ${seed})`);
        console.log(`fuzz of stored hops: seed ${seed}, 600 unchecked records, ${stored} stored, ${reads} reads, none failed`);
      } finally {
        await c.stop();
      }
    });
  });
});

/** Run `fn`; any failure names the seed that reproduces it. */
async function withSeed(seed: number, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    if (err instanceof Error && !err.message.includes('fuzz seed')) err.message += ` (fuzz seed ${seed}; rerun with HOPTRACE_FUZZ_SEED=${seed})`;
    throw err;
  }
}

/** Every list page, chain, export, message and the topology of a collector must answer without a 5xx. @returns reads made */
async function readEverything(c: TestCollector, where: (what: string) => string): Promise<number> {
  const ids = new Set<string>();
  let cursor: string | undefined;
  do {
    const page = await getJson(c.url, `/api/chains?limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    expect(page.status, where(`chain list: ${JSON.stringify(page.body).slice(0, 300)}`)).toBe(200);
    const list = page.body as ChainList;
    for (const item of list.items) ids.add(item.correlationId);
    cursor = list.nextCursor ?? undefined;
  } while (cursor);
  expect(ids.size).toBeGreaterThan(0);
  let reads = 0;
  for (const id of ids) {
    const path = `/api/chains/${encodeURIComponent(id)}`;
    for (const p of [path, `${path}/export?format=jaeger`, `${path}/export?format=otlp`]) {
      const res = await fetch(c.url + p);
      reads++;
      expect(res.status, where(`GET ${p}: ${(await res.text()).slice(0, 300)}`)).toBeLessThan(500);
    }
  }
  for (const m of MESSAGES) {
    const res = await fetch(`${c.url}/api/messages/${m}`);
    reads++;
    expect(res.status, where(`GET /api/messages/${m}`)).toBeLessThan(500);
  }
  expect((await getJson(c.url, `/api/topology?from=0&to=${Date.now() + 1}`)).status, where('topology')).toBe(200);
  expect((await fetch(`${c.url}/metrics`)).status, where('metrics')).toBe(200);
  return reads + 2;
}

async function fuzzIngest(r: Rng): Promise<void> {
    const where = (what: string) => `${what} (fuzz seed ${SEED}; rerun with HOPTRACE_FUZZ_SEED=${SEED})`;
    let cases = 0;
    let kept = 0;
    let requests = 0;
    let fivexx = 0;
    const statuses = new Map<number, number>();
    while (cases < CASES) {
      const batch = Array.from({ length: 1 + r.int(12) }, () => nextCase(r));
      cases += batch.length;
      // Now and then the body itself is broken: cut short, or not JSON at all.
      let body = batch.map((c) => c.line).join('\n') + '\n';
      const broken = r.chance(0.03);
      if (broken) body = r.chance(0.5) ? body.slice(0, r.int(body.length)) : '\u0000{]';
      const json = !broken && r.chance(0.2);
      const res = await fetch(`${collector.url}/v1/hops`, {
        method: 'POST',
        headers: { 'content-type': json ? 'application/json' : 'application/x-ndjson' },
        body: json ? `[${batch.map((c) => c.line).join(',')}]` : body,
      });
      requests++;
      const text = await res.text();
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      if (res.status >= 500) {
        fivexx++;
        expect.fail(where(`request ${requests} (cases ${cases - batch.length}..${cases - 1}) drew ${res.status}: ${text.slice(0, 300)}`));
      }
      if (broken) continue;
      const answer = JSON.parse(text) as { rejected?: number; rejections?: { index: number }[] };
      const rejected = new Set((answer.rejections ?? []).map((x) => x.index));
      batch.forEach((c, i) => {
        if (c.valid) expect(rejected.has(i), where(`valid case ${cases - batch.length + i} was rejected: ${text.slice(0, 300)}`)).toBe(false);
      });
      kept += batch.length - (answer.rejected ?? 0);
    }

    // Everything stored reads back: every list page, chain, export, message and the topology.
    const reads = await readEverything(collector, where);
    const chains = ((await getJson(collector.url, '/api/chains?limit=500')).body as ChainList).items.length;
    const stored = (await getJson(collector.url, '/healthz')).body.hops as number;
    console.log(
      `fuzz POST /v1/hops: seed ${SEED}, ${cases} cases in ${requests} requests, ${kept} records kept (${stored} hops stored, ` +
        `${chains} chains), ${fivexx} 5xx; statuses ${JSON.stringify(Object.fromEntries(statuses))}; ${reads} reads, none failed`,
    );
    expect(cases).toBeGreaterThanOrEqual(2000);
    expect(fivexx).toBe(0);
}
