/**
 * The demo, run as a newcomer would (`node demo/main.ts`), for a fixed count
 * against the real RabbitMQ and a real collector on a temporary SQLite file.
 * Its chains are then read back through the collector's HTTP API.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { ChainDetail, ChainList, ChainSummary, FailureGroupList, MessageStatus } from '../collector/api-types.ts';
import { parseDemoArgs, UsageError } from '../demo/options.ts';
import { deleteTopology, demoNames } from '../demo/topology.ts';
import { connectBroker, uniqueName, waitFor } from './helpers/broker.ts';
import { startTestCollector, type TestCollector } from './helpers/collector.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const LOST_AFTER_MS = 1_500;
const STUCK_AFTER_MS = 2_000;

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run the demo's CLI to completion. */
function runCli(args: string[], timeoutMs = 90_000): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['demo/main.ts', ...args], {
      cwd: ROOT,
      env: { ...process.env, AMQP_URL: process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the demo did not exit within ${timeoutMs} ms\nstdout:\n${stdout}\nstderr:\n${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

async function allChains(base: string): Promise<ChainSummary[]> {
  const items: ChainSummary[] = [];
  let cursor: string | null = null;
  do {
    const qs = new URLSearchParams({ limit: '100' });
    if (cursor) qs.set('cursor', cursor);
    const page: ChainList = await getJson<ChainList>(`${base}/api/chains?${qs}`);
    items.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor);
  return items;
}

function countByStatus(chains: ChainSummary[]): Partial<Record<MessageStatus, number>> {
  const counts: Partial<Record<MessageStatus, number>> = {};
  for (const c of chains) counts[c.status] = (counts[c.status] ?? 0) + 1;
  return counts;
}

async function cleanUp(prefix: string): Promise<void> {
  const conn = await connectBroker();
  try {
    const ch = await conn.createChannel();
    await deleteTopology(ch, demoNames(prefix));
    await ch.close();
  } finally {
    await conn.close();
  }
}

describe('npm run demo --count', () => {
  const prefix = uniqueName('demotest');
  const dir = mkdtempSync(join(tmpdir(), 'hoptrace-demo-'));
  const db = join(dir, 'demo.db');
  let run: RunResult;
  let collector: TestCollector;

  beforeAll(async () => {
    run = await runCli([
      '--count', '2',
      '--port', '0',
      '--db', db,
      '--prefix', prefix,
      '--lost-after-ms', String(LOST_AFTER_MS),
      '--stuck-after-ms', String(STUCK_AFTER_MS),
      '--replay',
    ]);
    // A fresh collector on the demo's database: what the demo stored outlives it.
    collector = await startTestCollector({
      db,
      lostAfterMs: LOST_AFTER_MS,
      stuckAfterMs: STUCK_AFTER_MS,
      sweepIntervalMs: 250,
      deadLetterQueues: { [`${prefix}.coffee.orders`]: `${prefix}.coffee.dead-letters` },
    });
  }, 120_000);

  afterAll(async () => {
    await collector?.stop();
    await cleanUp(prefix);
    rmSync(dir, { recursive: true, force: true });
  });

  test('exits 0 after printing a summary of every flow', () => {
    expect(run.code, `stdout:\n${run.stdout}\nstderr:\n${run.stderr}`).toBe(0);
    expect(run.stdout).toContain('2 round(s), 20 flows');
    for (const flow of ['loose-coupling', 'coffee-order', 'retried-order', 'off-menu-order', 'guest-order', 'cancel-unrouted', 'refund-unconsumed', 'receipt-unacked', 'poison-delivery', 'unstocked-delivery']) {
      expect(run.stdout).toContain(flow);
    }
    expect(run.stdout).not.toContain('✗');
    expect(run.stdout).toMatch(/off-menu-order\s+dead-lettered\s+dead-lettered ×2, after the replay: ok \(replayed\) ×2/);
  });

  test('every status the UI knows appears, each flow once per round', async () => {
    // The dead-lettered off-menu orders were replayed once the menu learned the drink: ok (replayed).
    const expected = {
      ok: 8,
      failed: 2,
      unroutable: 2,
      lost: 2,
      stuck: 2,
      'redelivery-loop': 2,
      discarded: 2,
    };
    const matches = (c: Partial<Record<MessageStatus, number>>): boolean =>
      Object.keys(c).length === Object.keys(expected).length &&
      Object.entries(expected).every(([status, n]) => c[status as MessageStatus] === n);
    // The list is re-diagnosed in the background; wait for it to settle.
    const counts = await waitFor(
      async () => {
        const c = countByStatus(await allChains(collector.url));
        return matches(c) ? c : false;
      },
      'the demo chains to carry their expected statuses',
      20_000,
    ).catch(async (err: Error) => {
      throw new Error(`${err.message}; got ${JSON.stringify(countByStatus(await allChains(collector.url)))}`);
    });
    expect(counts).toEqual(expected);
  });

  test('the member event reaches family-account, whose event reaches notification and audit, causally linked', async () => {
    const chains = await allChains(collector.url);
    const memberChains = chains.filter((c) => c.services.includes('member'));
    expect(memberChains).toHaveLength(2);
    for (const summary of memberChains) {
      const chain = await getJson<ChainDetail>(`${collector.url}/api/chains/${encodeURIComponent(summary.correlationId)}`);
      expect(chain.status).toBe('ok');
      expect(new Set(chain.services)).toEqual(new Set(['member', 'family-account', 'notification', 'audit']));
      expect(chain.messageCount).toBe(2);

      expect(chain.rootMessageIds).toHaveLength(1);
      const root = chain.messages.find((m) => m.messageId === chain.rootMessageIds[0])!;
      // The first message's id is the chain's correlation id.
      expect(root.messageId).toBe(chain.correlationId);
      expect(root.publisher?.service).toBe('member');
      expect(root.publisher?.routingKey).toBe('member.auth.reset');
      expect(root.deliveries.map((d) => d.service)).toEqual(['family-account']);

      expect(root.childMessageIds).toHaveLength(1);
      const withdrawn = chain.messages.find((m) => m.messageId === root.childMessageIds[0])!;
      expect(withdrawn.parentMessageId).toBe(root.messageId);
      expect(withdrawn.publisher?.service).toBe('family-account');
      expect(withdrawn.publisher?.routingKey).toBe('family.member.withdrawn');
      expect(withdrawn.deliveries.map((d) => d.service).sort()).toEqual(['audit', 'notification']);
      for (const d of withdrawn.deliveries) expect(d.settle?.outcome).toBe('ack');

      // Every hop carries the chain's correlation id; the withdrawn event's
      // hops name the member event as their cause.
      for (const hop of chain.hops) expect(hop.correlationId).toBe(chain.correlationId);
      const withdrawnSend = chain.hops.find((h) => h.kind === 'send' && h.messageId === withdrawn.messageId)!;
      expect(withdrawnSend.causationId).toBe(root.messageId);
      // Causal order: the member event is received before the withdrawn event is sent.
      const rootReceive = chain.hops.find((h) => h.kind === 'receive' && h.messageId === root.messageId)!;
      expect(rootReceive.seq).toBeLessThan(withdrawnSend.seq);
    }
  });

  test('an order retried after a passing failure ends ok, marked as redelivered', async () => {
    const chains = await allChains(collector.url);
    const retried = chains.filter((c) => c.status === 'ok' && c.redelivered);
    expect(retried).toHaveLength(2);
    const chain = await getJson<ChainDetail>(`${collector.url}/api/chains/${encodeURIComponent(retried[0].correlationId)}`);
    const order = chain.messages.find((m) => m.messageId === chain.correlationId)!;
    expect(order.redeliveryCount).toBe(1);
    expect(order.deliveries[0]).toMatchObject({ errors: 1, settle: { outcome: 'ack' } });
    const failedAttempt = chain.hops.find((h) => h.kind === 'process' && h.outcome === 'error')!;
    expect(failedAttempt.error?.type).toBe('GrinderJammedError');
  });

  test('the off-menu orders waited in the dead-letter queue and, replayed after the menu learned the drink, came out ok (replayed)', async () => {
    const replayed = (await getJson<ChainList>(`${collector.url}/api/chains?status=replayed&limit=50`)).items;
    expect(replayed).toHaveLength(2);
    for (const summary of replayed) {
      expect(summary.status).toBe('ok');
      const chain = await getJson<ChainDetail>(`${collector.url}/api/chains/${encodeURIComponent(summary.correlationId)}`);
      const order = chain.messages.find((m) => m.messageId === chain.correlationId)!;
      // The original failure stays: handler error, dead-lettered into the queue nobody consumes.
      expect(order.status).toBe('dead-lettered');
      expect(order.deadLetters[0]).toMatchObject({ queue: `${prefix}.coffee.orders`, reason: 'rejected', deadLetterQueue: `${prefix}.coffee.dead-letters` });
      expect(chain.firstFailure).toMatchObject({ messageId: order.messageId, replayed: true });
      expect(chain.hops.find((h) => h.messageId === order.messageId && h.kind === 'process')?.error?.type).toBe('UnknownDrinkError');
      // The replay: a new order message caused by the dead letter, made by a barista and announced ready.
      expect(chain.replays).toEqual([expect.objectContaining({ messageId: order.messageId, outcome: 'replayed', requestedBy: 'demo', replayStatus: 'ok' })]);
      const again = chain.messages.find((m) => m.parentMessageId === order.messageId)!;
      expect(again.publisher?.service).toBe('hoptrace-collector');
      expect(again.deliveries.map((d) => d.service)).toEqual(['barista']);
      expect(again.childMessageIds).toHaveLength(1);
    }
    const groups = (await getJson<FailureGroupList>(`${collector.url}/api/failures?status=dead-lettered`)).items;
    expect(groups).toEqual([expect.objectContaining({ errorType: 'UnknownDrinkError', pattern: '"…" is not on the menu (order …)', count: 2, unresolved: 0 })]);
    const conn = await connectBroker();
    try {
      const ch = await conn.createChannel();
      expect((await ch.checkQueue(`${prefix}.coffee.dead-letters`)).messageCount).toBe(0);
    } finally {
      await conn.close();
    }
  });
});

describe('the demo explains what is missing', () => {
  test('an unreachable RabbitMQ is a clear message and a non-zero exit', async () => {
    const run = await runCli(['--count', '1', '--port', '0', '--amqp-url', 'amqp://guest:guest@127.0.0.1:1', '--db', join(tmpdir(), 'unused.db')]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('Cannot reach RabbitMQ at amqp://guest:***@127.0.0.1:1');
    expect(run.stderr).toContain('AMQP_URL');
  });

  test('a port already taken is named, with --port suggested', async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const prefix = uniqueName('demotest');
    const dir = mkdtempSync(join(tmpdir(), 'hoptrace-demo-'));
    try {
      const run = await runCli(['--count', '1', '--port', String(port), '--prefix', prefix, '--db', join(dir, 'x.db')]);
      expect(run.code).toBe(1);
      expect(run.stderr).toContain(`Port ${port}`);
      expect(run.stderr).toContain('--port');
    } finally {
      server.close();
      await cleanUp(prefix);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('--help prints the flags and exits 0', async () => {
    const run = await runCli(['--help']);
    expect(run.code).toBe(0);
    for (const flag of ['--count', '--port', '--db', '--prefix', '--services-only', '--keep-running']) {
      expect(run.stdout).toContain(flag);
    }
  });
});

describe('the demo command line', () => {
  test('defaults come from the standard environment variables', () => {
    const o = parseDemoArgs([], {
      AMQP_URL: 'amqp://u:p@rabbit:5672',
      HOPTRACE_DB: '/data/h.db',
      HOPTRACE_URL: 'http://collector:4400',
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://jaeger:4318',
    })!;
    expect(o).toMatchObject({
      amqpUrl: 'amqp://u:p@rabbit:5672',
      db: '/data/h.db',
      collectorUrl: 'http://collector:4400',
      otlpEndpoint: 'http://jaeger:4318',
      port: 4400,
      prefix: 'demo',
      lostAfterMs: 5_000,
      stuckAfterMs: 8_000,
      servicesOnly: false,
    });
    expect(o.count).toBeUndefined();
  });

  test('flags win over the environment', () => {
    const o = parseDemoArgs(['--count', '3', '--port', '0', '--db', 'x.db', '--prefix', 'mine', '--services-only'], {
      HOPTRACE_DB: '/data/h.db',
    })!;
    expect(o).toMatchObject({ count: 3, port: 0, db: 'x.db', prefix: 'mine', servicesOnly: true });
  });

  test('nonsense is a usage error that names the flag', () => {
    expect(() => parseDemoArgs(['--count', '0'], {})).toThrow(/--count/);
    expect(() => parseDemoArgs(['--port', '70000'], {})).toThrow(/--port/);
    expect(() => parseDemoArgs(['--keep-running'], {})).toThrow(UsageError);
    expect(() => parseDemoArgs(['--prefix', 'a b'], {})).toThrow(/--prefix/);
    expect(() => parseDemoArgs(['--nope'], {})).toThrow(UsageError);
    expect(parseDemoArgs(['-h'], {})).toBeNull();
  });
});
