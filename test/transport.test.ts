import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { ChainDetail } from '../collector/api-types.ts';
import { waitFor } from './helpers/broker.ts';
import { getJson, makeHop, messageHops, startTestCollector, type TestCollector } from './helpers/collector.ts';

const TRANSPORT = fileURLToPath(new URL('../src/transport.ts', import.meta.url));

const open: TestCollector[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.stop()));
});

/** A port nothing listens on (yet). */
async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

/** A pino logger whose only destination is the hoptrace transport (in pino's worker thread). */
function hopLogger(options: Record<string, unknown>) {
  const transport = pino.transport({ target: TRANSPORT, options });
  const logger = pino({ level: 'info' }, transport);
  const close = async () => {
    const closed = once(transport, 'close');
    transport.end();
    await closed;
  };
  return { logger, close };
}

async function storedHops(c: TestCollector): Promise<number> {
  return (await getJson(c.url, '/healthz')).body.hops as number;
}

/**
 * An HTTP proxy in front of a collector that counts the requests in flight (and their peak), and
 * answers 503 while `failing` is set, so a test sees the transport's concurrency and retries.
 */
async function countingProxy(target: () => string | undefined) {
  const state = { failing: false, inFlight: 0, peak: 0, failed: 0, forwarded: 0 };
  const server = createHttpServer(async (req, res) => {
    state.inFlight++;
    state.peak = Math.max(state.peak, state.inFlight);
    try {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      // Hold each request a little, so concurrent ones overlap at the proxy.
      await new Promise((r) => setTimeout(r, 20));
      const url = target();
      if (state.failing || !url) {
        state.failed++;
        res.writeHead(503, { 'content-type': 'application/json' }).end('{"message":"failing on purpose"}');
        return;
      }
      const headers: Record<string, string> = {};
      for (const name of ['content-type', 'authorization', 'x-hoptrace-dropped']) {
        const value = req.headers[name];
        if (typeof value === 'string') headers[name] = value;
      }
      const upstream = await fetch(url + req.url, { method: req.method, headers, body: Buffer.concat(chunks) });
      state.forwarded++;
      res.writeHead(upstream.status, { 'content-type': upstream.headers.get('content-type') ?? 'text/plain' });
      res.end(await upstream.text());
    } finally {
      state.inFlight--;
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    state,
    async close() {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}

/** A counter's value in the collector's /metrics (0 when it has not been rendered yet). */
async function metric(c: TestCollector, name: string): Promise<number> {
  const text = await (await fetch(`${c.url}/metrics`)).text();
  const match = new RegExp(`^${name} (\\d+)$`, 'm').exec(text);
  return match ? Number(match[1]) : 0;
}

describe('hoptrace pino transport', () => {
  it('ships the hop lines of a real pino logger to the collector and ignores other lines', async () => {
    const c = await startTestCollector();
    open.push(c);
    const correlationId = randomUUID();
    const hops = messageHops({ correlationId });
    const { logger, close } = hopLogger({ url: c.url, flushIntervalMs: 20 });
    logger.info('service starting');
    for (const hop of hops) logger.info({ hop }, `hop ${hop.kind}`);
    logger.info({ user: 'x', hop: 'not an object' }, 'a line whose hop is not a record');
    await waitFor(async () => (await storedHops(c)) === 4, 'the four hops at the collector');
    const chain = (await getJson(c.url, `/api/chains/${correlationId}`)).body as ChainDetail;
    expect(chain.hops.map((h) => h.kind)).toEqual(['send', 'receive', 'process', 'settle']);
    await close();
    expect(await storedHops(c)).toBe(4);
  });

  it('flushes what it holds when the logger closes', async () => {
    const c = await startTestCollector({ token: 't0k3n' });
    open.push(c);
    const hops = Array.from({ length: 25 }, () => makeHop());
    // Closing blocks the logging thread until the flush is done (pino's end()), so log from another process.
    const child = loggerProcess(hops, { url: c.url, token: 't0k3n', flushIntervalMs: 60_000, batchSize: 1000 });
    await waitFor(() => child.stdout().includes('logged'), 'the child to log its hops');
    expect(await storedHops(c)).toBe(0);
    expect(await child.close()).toBe(0);
    expect(await storedHops(c)).toBe(25);
  });

  it('buffers while the collector is down and delivers once it is up', async () => {
    const port = await freePort();
    const { logger, close } = hopLogger({ url: `http://127.0.0.1:${port}`, flushIntervalMs: 20, maxRetryDelayMs: 100 });
    const hops = Array.from({ length: 30 }, () => makeHop());
    for (const hop of hops) logger.info({ hop }, 'hop');
    // Let it fail a few times against the closed port first.
    await new Promise((r) => setTimeout(r, 300));
    const c = await startTestCollector({ port });
    open.push(c);
    await waitFor(async () => (await storedHops(c)) === 30, 'all 30 buffered hops at the collector');
    await close();
  });

  it('drops a batch the collector rejects as invalid and keeps shipping the rest', async () => {
    const c = await startTestCollector();
    open.push(c);
    const { logger, close } = hopLogger({ url: c.url, flushIntervalMs: 20, batchSize: 1, dropReportIntervalMs: 0 });
    logger.info({ hop: { ...makeHop(), traceId: 'not-hex' } }, 'bad hop');
    const good = makeHop();
    logger.info({ hop: good }, 'good hop');
    await waitFor(async () => (await getJson(c.url, `/api/chains/${good.correlationId}`)).status === 200, 'the good hop');
    await close();
    expect(await storedHops(c)).toBe(1);
    const metrics = await (await fetch(`${c.url}/metrics`)).text();
    expect(metrics).toMatch(/hoptrace_ingest_rejected_total\{code="HOPTRACE_ERR_INVALID_HOP"\} 1/);
  });

  it('with a tiny buffer drops the oldest hops, delivers the newest and reports how many it dropped', async () => {
    const port = await freePort();
    const hops = Array.from({ length: 20 }, () => makeHop());
    const child = loggerProcess(hops, {
      url: `http://127.0.0.1:${port}`,
      maxBufferRecords: 5,
      flushIntervalMs: 200,
      maxRetryDelayMs: 100,
      closeTimeoutMs: 5000,
      dropReportIntervalMs: 1000,
    });
    await waitFor(() => child.stdout().includes('logged'), 'the child to log its hops');
    // The first drop is reported at once, the rest of the burst in one line once the interval has passed.
    await waitFor(() => /dropped 14 hop records: buffer full.*; 15 in total/.test(child.stderr()), 'the drop report on stderr');
    expect(child.stderr().match(/dropped \d+ hop records/g)).toEqual(['dropped 1 hop records', 'dropped 14 hop records']);
    const c = await startTestCollector({ port });
    open.push(c);
    await waitFor(async () => (await storedHops(c)) === 5, 'the 5 newest hops at the collector');
    expect(await child.close()).toBe(0);
    for (const hop of hops.slice(15)) {
      expect((await getJson(c.url, `/api/chains/${hop.correlationId}`)).status).toBe(200);
    }
    for (const hop of hops.slice(0, 15)) {
      expect((await getJson(c.url, `/api/chains/${hop.correlationId}`)).status).toBe(404);
    }
    expect(child.stderr()).toContain('closed: 5 hop records delivered, 15 dropped in total');
    const metrics = await (await fetch(`${c.url}/metrics`)).text();
    expect(metrics).toMatch(/^hoptrace_transport_dropped_total 15$/m);
  });

  it('with maxInFlight 4, a burst larger than one batch arrives complete', async () => {
    const c = await startTestCollector();
    open.push(c);
    const proxy = await countingProxy(() => c.url);
    try {
      const { logger, close } = hopLogger({ url: proxy.url, batchSize: 50, maxInFlight: 4, flushIntervalMs: 20 });
      const hops = Array.from({ length: 1_000 }, () => makeHop());
      for (const hop of hops) logger.info({ hop }, 'hop');
      await waitFor(async () => (await storedHops(c)) === 1_000, 'all 1000 hops at the collector');
      await close();
      expect(await storedHops(c)).toBe(1_000);
      expect(await metric(c, 'hoptrace_hops_duplicate_total')).toBe(0);
      // 20 batches of 50: several went at once, never more than maxInFlight.
      expect(proxy.state.forwarded).toBeGreaterThanOrEqual(20);
      expect(proxy.state.peak).toBeGreaterThan(1);
      expect(proxy.state.peak).toBeLessThanOrEqual(4);
    } finally {
      await proxy.close();
    }
  });

  it('a failing collector with several batches buffered retries them all once it is back (nothing lost, nothing duplicated in the store)', async () => {
    const c = await startTestCollector();
    open.push(c);
    const proxy = await countingProxy(() => c.url);
    proxy.state.failing = true;
    try {
      const { logger, close } = hopLogger({
        url: proxy.url,
        batchSize: 10,
        maxInFlight: 4,
        flushIntervalMs: 20,
        maxRetryDelayMs: 100,
        dropReportIntervalMs: 0,
      });
      const hops = Array.from({ length: 95 }, () => makeHop());
      for (const hop of hops) logger.info({ hop }, 'hop');
      await waitFor(() => proxy.state.failed >= 6, 'a few failed attempts');
      // The shared backoff: from now on while failing, one request at a time probes the collector.
      proxy.state.peak = proxy.state.inFlight;
      await waitFor(() => proxy.state.failed >= 10, 'more failed attempts');
      expect(proxy.state.peak).toBeLessThanOrEqual(1);
      expect(await storedHops(c)).toBe(0);
      proxy.state.failing = false;
      proxy.state.peak = proxy.state.inFlight;
      await waitFor(async () => (await storedHops(c)) === 95, 'all 95 buffered hops at the collector');
      await close();
      for (const hop of [hops[0], hops[47], hops[94]]) {
        expect((await getJson(c.url, `/api/chains/${hop.correlationId}`)).status).toBe(200);
      }
      expect(await storedHops(c)).toBe(95);
      // Every record reached the collector exactly once: no batch was sent twice once it was back.
      expect(await metric(c, 'hoptrace_hops_ingested_total')).toBe(95);
      expect(await metric(c, 'hoptrace_hops_duplicate_total')).toBe(0);
      expect(await metric(c, 'hoptrace_transport_dropped_total')).toBe(0);
      expect(proxy.state.peak).toBeLessThanOrEqual(4);
    } finally {
      await proxy.close();
    }
  });
});

/**
 * A separate process logging `hops` through the transport, so its stderr (where the
 * transport reports) can be read and its close can block without blocking the collector.
 * It logs every hop in one burst, prints `logged`, and closes the logger on `close()`.
 */
function loggerProcess(hops: readonly unknown[], options: Record<string, unknown>) {
  const script = `
    import { pino } from 'pino';
    import { createInterface } from 'node:readline';
    const transport = pino.transport({ target: ${JSON.stringify(TRANSPORT)}, options: ${JSON.stringify(options)} });
    const logger = pino(transport);
    for (const hop of ${JSON.stringify(hops)}) logger.info({ hop }, 'hop');
    process.stdout.write('logged\\n');
    for await (const line of createInterface({ input: process.stdin })) if (line === 'close') break;
    transport.on('close', () => process.exit(0));
    transport.end();
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    cwd: fileURLToPath(new URL('..', import.meta.url)),
    env: { ...process.env, HOPTRACE_URL: '', HOPTRACE_TOKEN: '' },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const exited = once(child, 'close');
  return {
    stdout: () => stdout,
    stderr: () => stderr,
    async close(): Promise<number | null> {
      child.stdin.write('close\n');
      const [code] = await exited;
      return code as number | null;
    },
  };
}
