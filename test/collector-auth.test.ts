/**
 * The collector's token, route by route, in each mode: no token (everything
 * open), a token (everything but /healthz and the UI's static files behind
 * it, reads also by session cookie), and a token with public reads.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../collector/cli.ts';
import { startCollector } from '../collector/server.ts';
import { makeHop, startTestCollector, type TestCollector } from './helpers/collector.ts';

const TOKEN = 'correct horse battery staple';
const uiDir = mkdtempSync(join(tmpdir(), 'hoptrace-auth-ui-'));
writeFileSync(join(uiDir, 'index.html'), '<!doctype html><title>hoptrace</title><div id="app"></div>');
writeFileSync(join(uiDir, 'app.js'), 'console.log("ui")');
afterAll(() => rmSync(uiDir, { recursive: true, force: true }));

const hop = makeHop();
const otlpBody = JSON.stringify({ resourceSpans: [] });

interface Route {
  name: string;
  method: string;
  path: string;
  kind: 'open' | 'ingest' | 'read';
  body?: string;
  type?: string;
  /** Status when allowed. */
  ok: number;
}

const ROUTES: Route[] = [
  { name: 'health', method: 'GET', path: '/healthz', kind: 'open', ok: 200 },
  { name: 'UI index', method: 'GET', path: '/', kind: 'open', ok: 200 },
  { name: 'UI asset', method: 'GET', path: '/app.js', kind: 'open', ok: 200 },
  { name: 'UI client route', method: 'GET', path: '/chains/x', kind: 'open', ok: 200 },
  { name: 'hop ingest', method: 'POST', path: '/v1/hops', kind: 'ingest', body: JSON.stringify(hop), type: 'application/x-ndjson', ok: 202 },
  { name: 'OTLP ingest', method: 'POST', path: '/v1/traces', kind: 'ingest', body: otlpBody, type: 'application/json', ok: 200 },
  { name: 'metrics', method: 'GET', path: '/metrics', kind: 'read', ok: 200 },
  { name: 'chain list', method: 'GET', path: '/api/chains', kind: 'read', ok: 200 },
  { name: 'one chain', method: 'GET', path: `/api/chains/${hop.correlationId}`, kind: 'read', ok: 200 },
  { name: 'chain export', method: 'GET', path: `/api/chains/${hop.correlationId}/export?format=otlp`, kind: 'read', ok: 200 },
  { name: 'one message', method: 'GET', path: `/api/messages/${hop.messageId}`, kind: 'read', ok: 200 },
  { name: 'topology', method: 'GET', path: '/api/topology', kind: 'read', ok: 200 },
  { name: 'live events', method: 'GET', path: '/api/live', kind: 'read', ok: 200 },
  { name: 'UI config', method: 'GET', path: '/api/config', kind: 'read', ok: 200 },
  { name: 'unknown API path', method: 'GET', path: '/api/nothing-here', kind: 'read', ok: 404 },
];

type Credential = 'none' | 'wrong bearer' | 'bearer' | 'session cookie' | 'forged cookie';
const CREDENTIALS: Credential[] = ['none', 'wrong bearer', 'bearer', 'session cookie', 'forged cookie'];

async function call(c: TestCollector, route: Route, headers: Record<string, string>): Promise<number> {
  const controller = new AbortController();
  const res = await fetch(c.url + route.path, {
    method: route.method,
    headers: { ...(route.type ? { 'content-type': route.type } : {}), ...headers },
    body: route.body,
    signal: controller.signal,
  });
  // An event stream never ends: the status is all we need.
  if (res.headers.get('content-type')?.startsWith('text/event-stream')) controller.abort();
  else await res.text();
  return res.status;
}

async function signIn(c: TestCollector, token: string): Promise<Response> {
  return fetch(`${c.url}/api/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token }) });
}

/** The status each route answers with each credential. */
async function matrix(c: TestCollector, cookie: string): Promise<Record<string, Record<Credential, number>>> {
  const headersFor: Record<Credential, Record<string, string>> = {
    none: {},
    'wrong bearer': { authorization: 'Bearer nope' },
    bearer: { authorization: `Bearer ${TOKEN}` },
    'session cookie': { cookie },
    'forged cookie': { cookie: `hoptrace_session=${Date.now() + 60_000}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA` },
  };
  const out: Record<string, Record<Credential, number>> = {};
  for (const route of ROUTES) {
    out[route.name] = {} as Record<Credential, number>;
    for (const credential of CREDENTIALS) out[route.name][credential] = await call(c, route, headersFor[credential]);
  }
  return out;
}

function expected(mode: 'no token' | 'token' | 'public reads'): Record<string, Record<Credential, number>> {
  const out: Record<string, Record<Credential, number>> = {};
  for (const route of ROUTES) {
    out[route.name] = {} as Record<Credential, number>;
    for (const credential of CREDENTIALS) {
      let allowed = true;
      if (mode !== 'no token' && route.kind === 'ingest') allowed = credential === 'bearer';
      if (mode === 'token' && route.kind === 'read') allowed = credential === 'bearer' || credential === 'session cookie';
      if (mode === 'public reads' && route.kind === 'read') allowed = true;
      out[route.name][credential] = allowed ? route.ok : 401;
    }
  }
  return out;
}

const collectors: TestCollector[] = [];
afterAll(async () => {
  await Promise.all(collectors.map((c) => c.stop()));
});
async function collector(options: Parameters<typeof startTestCollector>[0]): Promise<TestCollector> {
  const c = await startTestCollector({ uiDir, ...options });
  collectors.push(c);
  // The chain and message the read routes ask for.
  const res = await fetch(`${c.url}/v1/hops`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-ndjson', authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify(hop),
  });
  expect(res.status).toBe(202);
  return c;
}

describe('the collector token', () => {
  let withToken: TestCollector;
  beforeAll(async () => {
    withToken = await collector({ token: TOKEN });
  });

  it('without a token every route is open', async () => {
    const c = await collector({ token: '' });
    expect(await matrix(c, 'hoptrace_session=x')).toEqual(expected('no token'));
  });

  it('with a token, ingest needs the bearer token, reads need it or the session cookie, and /healthz and the UI files stay open', async () => {
    const session = await signIn(withToken, TOKEN);
    expect(session.status).toBe(204);
    const cookie = session.headers.get('set-cookie')!.split(';')[0];
    expect(await matrix(withToken, cookie)).toEqual(expected('token'));
  });

  it('with publicReads, reads are open and ingest still needs the bearer token', async () => {
    const c = await collector({ token: TOKEN, publicReads: true });
    const cookie = (await signIn(c, TOKEN)).headers.get('set-cookie')!.split(';')[0];
    expect(await matrix(c, cookie)).toEqual(expected('public reads'));
  });

  it('POST /api/session sets an HttpOnly, SameSite=Strict session cookie for the right token only, and DELETE ends it', async () => {
    const wrong = await signIn(withToken, 'guess');
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('set-cookie')).toBeNull();
    expect((await fetch(`${withToken.url}/api/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{' })).status).toBe(400);

    const right = await signIn(withToken, TOKEN);
    expect(right.status).toBe(204);
    const setCookie = right.headers.get('set-cookie')!;
    expect(setCookie).toMatch(/^hoptrace_session=\d+\.[\w-]+; Path=\/; HttpOnly; SameSite=Strict$/);
    const cookie = setCookie.split(';')[0];
    expect((await fetch(`${withToken.url}/api/chains`, { headers: { cookie } })).status).toBe(200);
    // Tampering with the expiry breaks the signature.
    const tampered = cookie.replace(/=(\d)/, (_m, d: string) => `=${(Number(d) + 1) % 10}`);
    expect((await fetch(`${withToken.url}/api/chains`, { headers: { cookie: tampered } })).status).toBe(401);

    const out = await fetch(`${withToken.url}/api/session`, { method: 'DELETE', headers: { cookie } });
    expect(out.status).toBe(204);
    expect(out.headers.get('set-cookie')).toMatch(/^hoptrace_session=; Path=\/; HttpOnly; SameSite=Strict; Max-Age=0$/);
  });

  it('a session outlives a restart and ends when the token changes', async () => {
    const c = await collector({ token: TOKEN });
    const cookie = (await signIn(c, TOKEN)).headers.get('set-cookie')!.split(';')[0];
    const again = await c.restart();
    collectors.push(again);
    expect((await fetch(`${again.url}/api/chains`, { headers: { cookie } })).status).toBe(200);
    const changed = await again.restart({ token: 'a new token' });
    collectors.push(changed);
    expect((await fetch(`${changed.url}/api/chains`, { headers: { cookie } })).status).toBe(401);
  });

  it('the old protectReads option is a clear error when false, and contradicting publicReads is one too', async () => {
    await expect(startCollector({ port: 0, token: TOKEN, protectReads: false, store: undefined, db: join(uiDir, 'x.db') })).rejects.toThrow(
      /"protectReads" is gone: .*"publicReads: true"/,
    );
    await expect(startCollector({ port: 0, token: TOKEN, protectReads: true, publicReads: true, db: join(uiDir, 'x.db') })).rejects.toThrow(
      /contradict/,
    );
  });

  it('the command line takes --public-reads, and --protect-reads contradicting it is a usage error', async () => {
    expect(await main(['collector', '--protect-reads', '--public-reads', '--port', '0'])).toBe(2);
  });
});
