import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createServer as createHttpServer, request } from 'node:http';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { ChainDetail } from '../collector/api-types.ts';
import { connect } from '../src/index.ts';
import { AMQP_URL, connectBroker, uniqueName, waitFor } from './helpers/broker.ts';
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
  return (JSON.parse(await pollText(`${c.url}/healthz`)) as { hops: number }).hops;
}

/**
 * One HTTP exchange on a connection of its own (no keep-alive pool). The collector runs in this
 * same process and, busy ingesting, stalls the event loop it shares with the client; a pooled
 * connection reused across such a stall can meet the server's idle timeout (ECONNRESET), a race
 * of the test's client, not of the collector's behaviour under test.
 */
function exchange(url: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: init.method ?? 'GET', headers: init.headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(init.body);
  });
}

async function pollText(url: string): Promise<string> {
  return (await exchange(url)).text;
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
      for (const name of ['content-type', 'authorization', 'x-hoptrace-transport', 'x-hoptrace-dropped-total']) {
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
  const text = await pollText(`${c.url}/metrics`);
  const match = new RegExp(`^${name.replace(/[{}"()[\]]/g, '\\$&')} (\\d+)$`, 'm').exec(text);
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

  it('never drops a valid hop because of an invalid neighbour, and reports each kind of rejection once', async () => {
    const c = await startTestCollector();
    open.push(c);
    // 50 good hops and, in the same batch, three a collector must refuse: two with a hostile
    // x-death count (one kind of rejection) and one with a trace id that is not hex.
    const good = Array.from({ length: 50 }, () => makeHop());
    const hostile = (count: number) =>
      makeHop({ kind: 'receive', queue: 'q', death: [{ queue: 'q', reason: 'rejected', count, exchange: '', routingKeys: [] }] });
    const records = [...good.slice(0, 20), hostile(-1), ...good.slice(20, 40), { ...makeHop(), traceId: 'not-hex' }, hostile(1.5), ...good.slice(40)];
    const child = loggerProcess(records, { url: c.url, batchSize: 1000, flushIntervalMs: 60_000 });
    await waitFor(() => child.stdout().includes('logged'), 'the child to log its hops');
    expect(await child.close()).toBe(0);
    expect(await storedHops(c)).toBe(50);
    for (const hop of [good[0], good[25], good[49]]) expect((await getJson(c.url, `/api/chains/${hop.correlationId}`)).status).toBe(200);
    const stderr = child.stderr();
    expect(stderr.match(/the collector rejected a hop record: field "hop\.death\[0\]\.count"/g)).toHaveLength(1);
    expect(stderr.match(/the collector rejected a hop record: field "hop\.traceId" must be 32 lowercase hex characters/g)).toHaveLength(1);
    expect(stderr).toContain('closed: 50 hop records delivered, 3 rejected by the collector, 0 dropped in total');
    expect(await metric(c, 'hoptrace_records_rejected_total{field="death"}')).toBe(2);
    expect(await metric(c, 'hoptrace_records_rejected_total{field="traceId"}')).toBe(1);
    expect(await metric(c, 'hoptrace_transport_dropped_total')).toBe(0);
  });

  it('50 good messages and one with a hostile x-death header, through the broker, the library and the transport: every good message is stored', async () => {
    const c = await startTestCollector();
    open.push(c);
    const { logger, close } = hopLogger({ url: c.url, flushIntervalMs: 50, batchSize: 1000 });
    const admin = await connectBroker();
    const queue = uniqueName('transport.hostile');
    const conn = await connect(AMQP_URL, { serviceName: 'hostile-test', logger });
    try {
      const setup = await admin.createChannel();
      await setup.assertQueue(queue, { autoDelete: true });
      const ch = await conn.createConfirmChannel();
      let settled = 0;
      await ch.consume(queue, (m) => {
        ch.ack(m!);
        settled++;
      });
      const ids: string[] = [];
      for (let i = 0; i < 50; i++) {
        const messageId = randomUUID();
        ids.push(messageId);
        ch.sendToQueue(queue, Buffer.from(`good ${i}`), { messageId });
      }
      // A count of -1 is nothing a broker writes, but anyone can publish it.
      const hostileId = randomUUID();
      ch.sendToQueue(queue, Buffer.from('hostile'), {
        messageId: hostileId,
        headers: { 'x-death': [{ count: -1, queue, reason: 'rejected', exchange: '', 'routing-keys': [queue], time: { '!': 'timestamp', value: 1 } }] },
      });
      await ch.waitForConfirms();
      await waitFor(() => settled === 51, 'all 51 messages settled');
      await waitFor(async () => {
        for (const id of ids) {
          const chain = await getJson(c.url, `/api/chains/${id}`);
          if (chain.status !== 200 || (chain.body as ChainDetail).hops.length < 4) return false;
        }
        return true;
      }, 'every good message with its send, confirm, receive, process and settle', 20_000);
      for (const id of ids.slice(0, 3)) {
        const kinds = ((await getJson(c.url, `/api/chains/${id}`)).body as ChainDetail).hops.map((h) => h.kind);
        expect(kinds).toEqual(expect.arrayContaining(['send', 'receive', 'process', 'settle']));
      }
      // The hostile message's own publish is kept whatever becomes of its delivery's record.
      expect((await getJson(c.url, `/api/chains/${hostileId}`)).status).toBe(200);
      await setup.close();
    } finally {
      await conn.close();
      await admin.close();
      await close();
    }
    expect(await metric(c, 'hoptrace_transport_dropped_total')).toBe(0);
  });

  it('a batch over the collector\'s body limit is split and delivered, not dropped', async () => {
    const c = await startTestCollector({ maxBodyBytes: 64 * 1024 });
    open.push(c);
    const hops = Array.from({ length: 600 }, () => makeHop());
    const child = loggerProcess(hops, { url: c.url, batchSize: 1000, flushIntervalMs: 50 });
    await waitFor(async () => (await storedHops(c)) === 600, 'all 600 hops at the collector');
    expect(await child.close()).toBe(0);
    expect(child.stderr()).not.toMatch(/dropped/);
    expect(await metric(c, 'hoptrace_transport_dropped_total')).toBe(0);
    expect(await metric(c, 'hoptrace_ingest_rejected_total{code="HOPTRACE_ERR_PAYLOAD_TOO_LARGE"}')).toBeGreaterThan(0);
  });

  it('the collector\'s dropped count equals the transport\'s own, drops after its last request included', async () => {
    const c = await startTestCollector();
    open.push(c);
    const proxy = await countingProxy(() => c.url);
    try {
      // A failing collector and a 10-line buffer: most of a 200-line burst is dropped before any request gets through.
      proxy.state.failing = true;
      const child = loggerProcess(Array.from({ length: 200 }, () => makeHop()), {
        url: proxy.url,
        maxBufferRecords: 10,
        batchSize: 1000,
        flushIntervalMs: 60_000,
        maxRetryDelayMs: 100,
        closeTimeoutMs: 5000,
      });
      await waitFor(() => child.stdout().includes('logged'), 'the child to log its hops');
      await new Promise((r) => setTimeout(r, 200));
      proxy.state.failing = false;
      // No request since the drops (the flush timer is a minute away): only closing reports them.
      expect(await child.close()).toBe(0);
      const closed = /closed: (\d+) hop records delivered, 0 rejected by the collector, (\d+) dropped in total/.exec(child.stderr());
      expect(closed, child.stderr()).not.toBeNull();
      const [delivered, dropped] = [Number(closed![1]), Number(closed![2])];
      expect(delivered + dropped).toBe(200);
      expect(dropped).toBeGreaterThanOrEqual(190);
      expect(await storedHops(c)).toBe(delivered);
      expect(await metric(c, 'hoptrace_transport_dropped_total')).toBe(dropped);
    } finally {
      await proxy.close();
    }
  });

  it('drops are reported to the collector while the transport idles, not only on close', async () => {
    const c = await startTestCollector();
    open.push(c);
    const proxy = await countingProxy(() => c.url);
    proxy.state.failing = true;
    try {
      const { logger, close } = hopLogger({ url: proxy.url, maxBufferRecords: 10, flushIntervalMs: 50, maxRetryDelayMs: 100 });
      for (let i = 0; i < 60; i++) logger.info({ hop: makeHop() }, 'hop');
      await waitFor(() => proxy.state.failed >= 2, 'a few failed attempts');
      proxy.state.failing = false;
      await waitFor(async () => (await storedHops(c)) === 10, 'the 10 newest hops at the collector');
      await waitFor(async () => (await metric(c, 'hoptrace_transport_dropped_total')) === 50, 'the 50 drops at the collector');
      await close();
      expect(await metric(c, 'hoptrace_transport_dropped_total')).toBe(50);
    } finally {
      await proxy.close();
    }
  });

  it('a sustained run at full speed delivers every hop, version-2 records complete with the line\'s host and pid', async () => {
    const c = await startTestCollector();
    open.push(c);
    // 6,000 messages, each a version-1 send, receive, process and settle and a version-2 publish of
    // its reply (no instance of its own: the pino line's hostname and pid supply it): 30,000 hops.
    const messages = 6_000;
    const script = `
      import { pino } from 'pino';
      import { randomBytes, randomUUID } from 'node:crypto';
      import { createInterface } from 'node:readline';
      const transport = pino.transport({ target: ${JSON.stringify(TRANSPORT)}, options: { url: ${JSON.stringify(c.url)} } });
      const logger = pino(transport);
      const hex = (n) => randomBytes(n).toString('hex');
      for (let i = 0; i < ${messages}; i++) {
        const correlationId = randomUUID();
        const messageId = randomUUID();
        const base = { v: 1, ts: Date.now(), instance: 'svc/1', traceId: hex(16), correlationId, messageId, exchange: 'orders', routingKey: 'order.created' };
        const send = hex(8);
        logger.info({ hop: { ...base, kind: 'send', service: 'orders', spanId: send } }, 'send');
        const consumer = { ...base, service: 'billing', parentSpanId: send, queue: 'billing.orders' };
        logger.info({ hop: { ...consumer, kind: 'receive', spanId: hex(8), deliveryTag: i + 1, redelivered: false } }, 'receive');
        logger.info({ hop: { ...consumer, kind: 'process', spanId: hex(8), outcome: 'ok', durationMs: 1 } }, 'process');
        logger.info({ hop: { ...consumer, kind: 'settle', spanId: hex(8), outcome: 'ack' } }, 'settle');
        logger.info({ hop: { v: 2, kind: 'publish', ts: Date.now(), service: 'billing', traceId: base.traceId, spanId: hex(8), messageId: 'reply-' + messageId, correlationId, causationId: messageId, exchange: 'billing', routingKey: 'invoice.issued' } }, 'publish');
        // As fast as the process can: only yield now and then so pino's worker gets the lines.
        if (i % 200 === 0) await new Promise((r) => setImmediate(r));
      }
      process.stdout.write('logged\\n');
      // Closing gives up on what is not delivered within closeTimeoutMs: close once the test saw every hop.
      for await (const line of createInterface({ input: process.stdin })) if (line === 'close') break;
      transport.on('close', () => process.exit(0));
      transport.end();
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      cwd: fileURLToPath(new URL('..', import.meta.url)),
      env: { ...process.env, HOPTRACE_URL: '', HOPTRACE_TOKEN: '' },
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = once(child, 'close');
    // Polled slowly: counting the store's hops is work for the collector too.
    for (let i = 0; i < 600 && (await storedHops(c)) < messages * 5 && child.exitCode === null; i++) await new Promise((r) => setTimeout(r, 250));
    expect(await storedHops(c), stderr).toBe(messages * 5);
    child.stdin.write('close\n');
    const [code] = await exited;
    expect(code, stderr).toBe(0);
    expect(stderr).not.toMatch(/dropped|rejected/);
    expect(await metric(c, 'hoptrace_transport_dropped_total')).toBe(0);
    expect(await metric(c, 'hoptrace_records_rejected_total')).toBe(0);
    const list = (await getJson(c.url, '/api/chains?limit=1')).body as { items: { correlationId: string }[] };
    const chain = (await getJson(c.url, `/api/chains/${list.items[0].correlationId}`)).body as ChainDetail;
    expect(chain.hops.map((h) => h.kind).sort()).toEqual(['process', 'receive', 'send', 'send', 'settle']);
    expect(chain.hops.find((h) => h.messageId.startsWith('reply-'))?.instance).toMatch(new RegExp(`/${child.pid}$`));
  }, 180_000);

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
    expect(child.stderr()).toContain('closed: 5 hop records delivered, 0 rejected by the collector, 15 dropped in total');
    const metrics = await (await fetch(`${c.url}/metrics`)).text();
    expect(metrics).toMatch(/^hoptrace_transport_dropped_total 15$/m);
  });

  it('with maxInFlight 4, a burst larger than one batch arrives complete', async () => {
    const c = await startTestCollector();
    open.push(c);
    const proxy = await countingProxy(() => c.url);
    try {
      const { logger, close } = hopLogger({ url: proxy.url, batchSize: 50, maxBatchSize: 50, maxInFlight: 4, flushIntervalMs: 20 });
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
  // The hops go through a file: a command line cannot hold many.
  const dir = mkdtempSync(join(tmpdir(), 'hoptrace-transport-'));
  const file = join(dir, 'hops.json');
  writeFileSync(file, JSON.stringify(hops));
  const script = `
    import { pino } from 'pino';
    import { readFileSync, rmSync } from 'node:fs';
    import { createInterface } from 'node:readline';
    const transport = pino.transport({ target: ${JSON.stringify(TRANSPORT)}, options: ${JSON.stringify(options)} });
    const logger = pino(transport);
    const hops = JSON.parse(readFileSync(${JSON.stringify(file)}, 'utf8'));
    rmSync(${JSON.stringify(dir)}, { recursive: true, force: true });
    for (const hop of hops) logger.info({ hop }, 'hop');
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
