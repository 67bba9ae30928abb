import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ChainDetail } from '../collector/api-types.ts';
import { DEFAULT_ENGINE_OPTIONS } from '../collector/chain-engine.ts';
import { checkHopRecord } from '../collector/hop-schema.ts';
import { importFiles } from '../collector/import.ts';
import { SqliteStore } from '../collector/sqlite-store.ts';
import type { ConsumeRecordV2, HopRecord, PublishRecordV2 } from '../src/contract/hop.ts';
import { getJson, makeHop, postHops, startTestCollector } from './helpers/collector.ts';

const dir = mkdtempSync(join(tmpdir(), 'hoptrace-v2-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const hex = (bytes: number) => randomBytes(bytes).toString('hex');
const T0 = Date.now() - 1000;

function publish(overrides: Partial<PublishRecordV2> = {}): PublishRecordV2 {
  return {
    v: 2,
    kind: 'publish',
    ts: T0,
    service: 'storefront',
    instance: 'web-1/100',
    traceId: hex(16),
    spanId: hex(8),
    messageId: randomUUID(),
    exchange: 'orders',
    routingKey: 'order.placed',
    bodySize: 120,
    contentType: 'application/json',
    confirmMs: 0.75,
    ...overrides,
  };
}

function consume(pub: PublishRecordV2, overrides: Partial<ConsumeRecordV2> = {}): ConsumeRecordV2 {
  return {
    v: 2,
    kind: 'consume',
    ts: T0 + 3,
    service: 'barista',
    instance: 'barista-1/200',
    traceId: pub.traceId,
    spanId: hex(8),
    parentSpanId: pub.spanId,
    messageId: pub.messageId,
    ...(pub.correlationId === undefined ? {} : { correlationId: pub.correlationId }),
    ...(pub.causationId === undefined ? {} : { causationId: pub.causationId }),
    exchange: pub.exchange,
    routingKey: pub.routingKey,
    queue: 'orders.coffee',
    deliveryTag: 7,
    processMs: 12.5,
    settle: 'ack',
    settleMs: 13,
    ...overrides,
  };
}

const pinoLine = (hop: unknown, extra: Record<string, unknown> = {}) => ({ level: 30, time: Date.now(), pid: 4242, hostname: 'box', hop, ...extra });

function expand(value: unknown): HopRecord[] {
  const r = checkHopRecord(value);
  if (!r.ok) throw new Error(`${r.field} ${r.reason}`);
  return r.hops;
}

describe('version-2 records', () => {
  it('a publish record stands for a send hop and a confirm hop with the latency as its duration', () => {
    const pub = publish();
    const [send, confirm, ...rest] = expand(pub);
    expect(rest).toEqual([]);
    expect(send).toMatchObject({
      v: 1,
      kind: 'send',
      ts: T0,
      service: 'storefront',
      instance: 'web-1/100',
      correlationId: pub.messageId,
      messageId: pub.messageId,
      exchange: 'orders',
      routingKey: 'order.placed',
      bodySize: 120,
      contentType: 'application/json',
    });
    expect(confirm).toMatchObject({ kind: 'confirm', ts: T0 + 0.75, outcome: 'ack', durationMs: 0.75, spanId: pub.spanId });
  });

  it('a consume record stands for receive, process and settle at their offsets from the receive', () => {
    const pub = publish({ correlationId: 'order-42', causationId: 'cause-1' });
    const hops = expand(consume(pub, { processMs: 12.5, settleMs: 13.25, error: { type: 'TypeError', message: 'boom' }, settle: 'nack', requeue: false }));
    expect(hops.map((h) => h.kind)).toEqual(['receive', 'process', 'settle']);
    const [receive, process, settle] = hops;
    expect(receive).toMatchObject({ ts: T0 + 3, correlationId: 'order-42', causationId: 'cause-1', queue: 'orders.coffee', redelivered: false, parentSpanId: pub.spanId });
    expect(process).toMatchObject({ ts: T0 + 15.5, outcome: 'error', durationMs: 12.5, error: { type: 'TypeError', message: 'boom' } });
    expect(settle).toMatchObject({ ts: T0 + 16.25, outcome: 'nack', requeue: false, deliveryTag: 7 });
  });

  it('a record that says values were cut passes it to the hop holding them: truncated on the receive, the error its own', () => {
    const pub = publish();
    const hops = expand(
      consume(pub, {
        headers: { big: `${'x'.repeat(255)}…` },
        truncated: true,
        error: { type: 'Error', message: `${'m'.repeat(10)}…`, truncated: true },
        settle: 'nack',
        requeue: false,
      }),
    );
    const [receive, process, settle] = hops;
    expect(receive).toMatchObject({ kind: 'receive', truncated: true });
    expect(process).toMatchObject({ kind: 'process', error: { truncated: true } });
    expect(process!.truncated).toBeUndefined();
    expect(settle!.truncated).toBeUndefined();
    expect(checkHopRecord({ ...consume(pub), truncated: 'yes' })).toMatchObject({ ok: false, field: 'truncated' });
  });

  it('left-out exchange and routing key mean the default exchange and the queue name', () => {
    const pub = publish({ exchange: undefined, routingKey: 'orders.coffee' });
    const { exchange: _e, routingKey: _r, ...rest } = consume(pub);
    const [send] = expand(pub);
    const [receive] = expand(rest);
    expect(send).toMatchObject({ exchange: '', routingKey: 'orders.coffee' });
    expect(receive).toMatchObject({ exchange: '', routingKey: 'orders.coffee', queue: 'orders.coffee' });
  });

  it('a record without instance takes hostname/pid of the pino line carrying it, and is refused without either', () => {
    const { instance: _i, ...bare } = publish();
    expect(expand(pinoLine(bare))[0].instance).toBe('box/4242');
    const refused = checkHopRecord(bare);
    expect(refused).toMatchObject({ ok: false, field: 'instance' });
    const noPid = checkHopRecord({ level: 30, hostname: 'box', hop: bare });
    expect(noPid).toMatchObject({ ok: false, field: 'hop.instance' });
  });

  it('a record missing what its kind needs names the field', () => {
    const { queue: _q, ...noQueue } = consume(publish());
    expect(checkHopRecord(noQueue)).toMatchObject({ ok: false, field: 'queue' });
    const { routingKey: _r, ...noKey } = publish();
    expect(checkHopRecord(noKey)).toMatchObject({ ok: false, field: 'routingKey' });
    expect(checkHopRecord({ ...publish(), kind: 'send' })).toMatchObject({ ok: false, field: 'kind' });
    expect(checkHopRecord({ ...publish(), confirmMs: -1 })).toMatchObject({ ok: false, field: 'confirmMs' });
  });

  it('an open record and the complete one that follows it are stored as one delivery, not two', async () => {
    const collector = await startTestCollector();
    try {
      const pub = publish();
      const done = consume(pub);
      const { processMs: _p, settle: _s, settleMs: _sm, ...open } = done;
      await postHops(collector.url, [pinoLine(pub), pinoLine({ ...open, open: true })]);
      let chain = (await getJson(collector.url, `/api/chains/${pub.messageId}`)).body as ChainDetail;
      expect(chain.hops.map((h) => h.kind)).toEqual(['send', 'confirm', 'receive']);
      await postHops(collector.url, [pinoLine(done)]);
      chain = (await getJson(collector.url, `/api/chains/${pub.messageId}`)).body as ChainDetail;
      expect(chain.hops.map((h) => h.kind)).toEqual(['send', 'confirm', 'receive', 'process', 'settle']);
      expect(chain.status).toBe('ok');
      expect(chain.messages[0].deliveries).toHaveLength(1);
    } finally {
      await collector.stop();
    }
  });

  it('hoptrace import rebuilds a chain written half in version-1 and half in version-2 records', async () => {
    const correlationId = `mixed-${randomUUID()}`;
    const root = publish({ correlationId });
    const child = publish({ correlationId, causationId: root.messageId, service: 'barista', instance: undefined, parentSpanId: hex(8), ts: T0 + 20 });
    const childReceive = makeHop({
      kind: 'receive',
      correlationId,
      causationId: root.messageId,
      messageId: child.messageId,
      traceId: child.traceId,
      ts: T0 + 25,
      service: 'notification',
      queue: 'notification.orders',
    });
    const file = join(dir, 'mixed.log');
    writeFileSync(
      file,
      [
        pinoLine(root),
        { level: 30, msg: 'not a hop' },
        pinoLine(consume(root, { instance: undefined })),
        pinoLine(child),
        pinoLine(childReceive),
        pinoLine({ ...childReceive, kind: 'process', outcome: 'ok', durationMs: 1, ts: T0 + 26 }),
        pinoLine({ ...childReceive, kind: 'settle', outcome: 'ack', ts: T0 + 27 }),
      ]
        .map((l) => JSON.stringify(l))
        .join('\n') + '\n',
    );
    const store = new SqliteStore({ path: join(dir, 'mixed.db'), engine: DEFAULT_ENGINE_OPTIONS });
    try {
      const result = await importFiles(store, [file]);
      expect(result).toMatchObject({ invalidHops: 0, withoutHop: 1 });
      const [summary] = (await store.listChains({ limit: 10, q: correlationId })).items;
      expect(summary).toMatchObject({ correlationId, status: 'ok', messageCount: 2, hopCount: 10 });
      const hops = await store.chainHops(correlationId);
      expect(hops.filter((h) => h.messageId === child.messageId && h.kind === 'send')[0].instance).toBe('box/4242');
    } finally {
      await store.close();
    }
  });
});
