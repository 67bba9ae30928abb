/**
 * Live events (`GET /api/live`) with a bounded buffer per client: a client
 * that never reads is cut off with a final `reload` event and counted, while
 * a client that keeps reading gets every event.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { RELOAD_EVENT } from '../collector/live.ts';
import type { HopRecord } from '../src/contract/hop.ts';
import { waitFor } from './helpers/broker.ts';
import { makeHop, startTestCollector, type TestCollector } from './helpers/collector.ts';

const open: TestCollector[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.stop()));
});

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

async function metric(c: TestCollector, name: string): Promise<number> {
  const text = await pollText(`${c.url}/metrics`);
  return Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(text)?.[1] ?? NaN);
}

/** A raw HTTP client of /api/live: `read` false pauses the socket right away, so it never reads. */
function liveClient(url: string, read: boolean) {
  const { hostname, port } = new URL(url);
  const socket: Socket = connect(Number(port), hostname);
  let text = '';
  let ended = false;
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => (text += chunk));
  socket.on('end', () => (ended = true));
  socket.on('error', () => {});
  socket.write(`GET /api/live HTTP/1.1\r\nHost: ${hostname}:${port}\r\nAccept: text/event-stream\r\n\r\n`);
  if (!read) socket.pause();
  return {
    socket,
    text: () => text,
    /** The response body: chunked transfer framing removed. */
    body: () => {
      let rest = text.slice(text.indexOf('\r\n\r\n') + 4);
      let out = '';
      for (;;) {
        const eol = rest.indexOf('\r\n');
        const size = parseInt(rest.slice(0, eol), 16);
        if (eol === -1 || !(size > 0)) return out;
        out += rest.slice(eol + 2, eol + 2 + size);
        rest = rest.slice(eol + 2 + size + 2);
      }
    },
    ended: () => ended,
    events: (name: string) => text.split(`event: ${name}\n`).length - 1,
  };
}

/** The kernel's TCP state of the socket from local port `from` to remote port `to` (from /proc/net/tcp). */
function tcpState(from: number, to: number): string | undefined {
  const states: Record<string, string> = { '01': 'ESTABLISHED', '04': 'FIN_WAIT1', '05': 'FIN_WAIT2', '06': 'TIME_WAIT', '07': 'CLOSE', '08': 'CLOSE_WAIT' };
  const port = (address: string) => parseInt(address.split(':')[1], 16);
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    if (cols.length > 3 && port(cols[1]) === from && port(cols[2]) === to) return states[cols[3]] ?? cols[3];
  }
  return undefined;
}

/** POST hops as NDJSON; the status. */
async function postHops(url: string, hops: readonly HopRecord[]): Promise<{ status: number }> {
  const body = hops.map((h) => JSON.stringify(h)).join('\n') + '\n';
  return exchange(`${url}/v1/hops`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body });
}

/** Chains whose summaries are large (many services with long names), so their live events are too. */
function bulkyChains(chains: number, hopsEach: number): { ids: string[]; hops: HopRecord[] } {
  const ids = Array.from({ length: chains }, () => randomUUID());
  const hops: HopRecord[] = [];
  for (const correlationId of ids) {
    for (let i = 0; i < hopsEach; i++) hops.push(makeHop({ correlationId, service: `${'s'.repeat(1000)}-${i}` }));
  }
  return { ids, hops };
}

describe('live events with a bounded buffer per client', () => {
  it('a client that never reads is cut off with a final reload event and counted, and a reading client gets every event', async () => {
    const c = await startTestCollector({ liveBufferBytes: 64 * 1024 });
    open.push(c);
    const stalled = liveClient(c.url, false);
    const reading = liveClient(c.url, true);
    await waitFor(async () => (await metric(c, 'hoptrace_sse_clients')) === 2, 'both clients connected');

    // Each round adds a hop to 40 chains of ~200 KB summaries: ~8 MB of events a round, more
    // than the kernel's socket buffers hold for a client that reads nothing.
    const { ids, hops } = bulkyChains(40, 200);
    for (let i = 0; i < hops.length; i += 2000) expect((await postHops(c.url, hops.slice(i, i + 2000))).status).toBe(202);
    let rounds = 0;
    while ((await metric(c, 'hoptrace_sse_clients_cut_total')) === 0 && rounds < 20) {
      rounds++;
      const more = ids.map((correlationId) => makeHop({ correlationId, service: `${'s'.repeat(1000)}-${rounds}-more` }));
      expect((await postHops(c.url, more)).status).toBe(202);
      await new Promise((r) => setTimeout(r, 400));
    }
    // The stalled client, reading at last (within the collector's grace period), finds the reload
    // event at the end of its stream, which then ends.
    stalled.socket.resume();
    expect(await metric(c, 'hoptrace_sse_clients_cut_total')).toBe(1);
    expect(await metric(c, 'hoptrace_sse_clients')).toBe(1);
    await waitFor(() => stalled.ended(), 'the stalled stream to end');
    expect(stalled.body().endsWith(RELOAD_EVENT)).toBe(true);
    expect(stalled.events('reload')).toBe(1);

    // The reading client was never cut and saw an event for every chain.
    const seen = reading.text();
    for (const id of ids) expect(seen).toContain(id);
    expect(reading.events('reload')).toBe(0);
    expect(reading.ended()).toBe(false);
    reading.socket.destroy();
  }, 120_000);

  it('a client that never reads and never resumes is disconnected, so the collector holds nothing for it', async () => {
    const c = await startTestCollector({ liveBufferBytes: 16 * 1024 });
    open.push(c);
    const stalled = liveClient(c.url, false);
    await waitFor(async () => (await metric(c, 'hoptrace_sse_clients')) === 1, 'the client connected');
    const { ids, hops } = bulkyChains(40, 200);
    for (let i = 0; i < hops.length; i += 2000) expect((await postHops(c.url, hops.slice(i, i + 2000))).status).toBe(202);
    for (let round = 0; round < 20 && (await metric(c, 'hoptrace_sse_clients_cut_total')) === 0; round++) {
      await postHops(c.url, ids.map((correlationId) => makeHop({ correlationId, service: `${'t'.repeat(1000)}-${round}` })));
      await new Promise((r) => setTimeout(r, 400));
    }
    expect(await metric(c, 'hoptrace_sse_clients_cut_total')).toBe(1);
    expect(await metric(c, 'hoptrace_sse_clients')).toBe(0);
    // After the grace period the collector closes its end: its socket leaves ESTABLISHED (FIN_WAIT1
    // while the kernel still holds bytes the client never read) and the collector holds nothing.
    const client = stalled.socket.localPort!;
    expect(tcpState(c.port, client)).toBe('ESTABLISHED');
    await waitFor(() => tcpState(c.port, client) !== 'ESTABLISHED', 'the collector to close the connection', 40_000);
    expect(['FIN_WAIT1', 'FIN_WAIT2', 'CLOSE', undefined]).toContain(tcpState(c.port, client));
  }, 120_000);
});
