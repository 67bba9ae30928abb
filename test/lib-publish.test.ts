import type { Channel, ConsumeMessage } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HOP_SCHEMA_VERSION, instrument } from '../src/index.ts';
import { waitFor } from './helpers/broker.ts';
import { type Fixture, capture, fixture } from './lib-capture.ts';

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const TRACEPARENT = /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/;

let fx: Fixture;
beforeAll(async () => {
  fx = await fixture();
});
afterAll(async () => {
  await fx.cleanup();
});

/** Consume `queue` on a raw channel, collecting (and acking) deliveries. */
async function collect(raw: Channel, queue: string): Promise<ConsumeMessage[]> {
  const got: ConsumeMessage[] = [];
  await raw.consume(queue, (m) => {
    if (m) {
      got.push(m);
      raw.ack(m);
    }
  });
  return got;
}

describe('publish and sendToQueue', () => {
  it('give a chain root a traceparent and a UUIDv7 messageId, and nothing its message id already says', async () => {
    const cap = capture();
    const raw = await fx.conn.createChannel();
    const ch = instrument(raw, { logger: cap.logger, serviceName: 'member-service' });
    const q = await fx.queue('lib.pub.root');
    const got = await collect(raw, q);

    ch.sendToQueue(q, Buffer.from('{"memberId":7}'), { contentType: 'application/json', type: 'member.joined' });
    await waitFor(() => got.length === 1, 'the delivery');

    const { properties } = got[0]!;
    const headers = properties.headers!;
    expect(properties.messageId).toMatch(UUID_V7);
    expect(headers.traceparent).toMatch(TRACEPARENT);
    // A chain root: its message id is the correlation id, so no x-correlation-id
    // travels (a consumer takes the message id); no causation; and nothing the
    // record carries is stamped into AMQP properties (appId, timestamp).
    expect(Object.keys(headers)).toEqual(['traceparent']);
    expect(properties.appId).toBeUndefined();
    expect(properties.timestamp).toBeUndefined();

    const [send] = cap.hops('send');
    expect(send).toMatchObject({
      v: HOP_SCHEMA_VERSION,
      kind: 'send',
      service: 'member-service',
      messageId: properties.messageId,
      correlationId: properties.messageId,
      exchange: '',
      routingKey: q,
      messageType: 'member.joined',
      contentType: 'application/json',
      bodySize: 14,
    });
    expect(send!.causationId).toBeUndefined();
    expect(headers.traceparent).toBe(`00-${send!.traceId}-${send!.spanId}-01`);
    // The record does not repeat what its own fields hold: traceparent is traceId/spanId; messageId, type, contentType likewise.
    expect(send!.headers).toBeUndefined();
    expect(send!.properties).toBeUndefined();
    expect(send!.instance).toMatch(/\/\d+$/);
    expect(typeof send!.ts).toBe('number');
    // One version-2 publish record, written at send on a plain channel.
    expect(cap.records()).toEqual([expect.objectContaining({ v: 2, kind: 'publish', messageId: properties.messageId })]);
    await raw.close();
  });

  it('leave the caller options and headers objects exactly as they were', async () => {
    const cap = capture();
    const raw = await fx.conn.createChannel();
    const ch = instrument(raw, { logger: cap.logger });
    const q = await fx.queue('lib.pub.nomutate');
    const got = await collect(raw, q);

    const headers = { tenant: 'acme', nested: { deep: [1, 2] } };
    const options = { headers, persistent: true, contentType: 'text/plain', CC: ['x'] };
    const before = structuredClone(options);
    ch.sendToQueue(q, Buffer.from('a'), options);
    ch.publish('', q, Buffer.from('b'), options);
    await waitFor(() => got.length === 2, 'both deliveries');

    expect(options).toEqual(before);
    expect(options.headers).toBe(headers);
    expect(Object.keys(headers)).toEqual(['tenant', 'nested']);
    expect(got[0]!.properties.headers!.tenant).toBe('acme');
    expect(got[0]!.properties.messageId).not.toBe(got[1]!.properties.messageId);
    await raw.close();
  });

  it('let headers and properties the caller set win over its own', async () => {
    const cap = capture();
    const raw = await fx.conn.createChannel();
    const ch = instrument(raw, { logger: cap.logger, serviceName: 'svc' });
    const q = await fx.queue('lib.pub.callerwins');
    const got = await collect(raw, q);

    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    ch.sendToQueue(q, Buffer.from('x'), {
      messageId: 'order-42',
      appId: 'legacy-app',
      timestamp: 1_700_000_000,
      headers: { 'x-correlation-id': 'flow-1', 'x-causation-id': 'cmd-9', traceparent },
    });
    await waitFor(() => got.length === 1, 'the delivery');

    const p = got[0]!.properties;
    expect(p.messageId).toBe('order-42');
    expect(p.appId).toBe('legacy-app');
    expect(p.timestamp).toBe(1_700_000_000);
    expect(p.headers!['x-correlation-id']).toBe('flow-1');
    expect(p.headers!['x-causation-id']).toBe('cmd-9');
    expect(p.headers!.traceparent).toBe(traceparent);
    const send = cap.hops('send')[0]!;
    expect(send).toMatchObject({ messageId: 'order-42', correlationId: 'flow-1', causationId: 'cmd-9' });
    // What the hop's own fields do not hold is recorded as it went out: the
    // caller's traceparent names another span than the hop's.
    expect(send.headers).toEqual({ traceparent });
    expect(send.properties).toEqual({ appId: 'legacy-app', timestamp: 1_700_000_000 });
    await raw.close();
  });

  it('honour configured header names for correlation and causation', async () => {
    const cap = capture();
    const raw = await fx.conn.createChannel();
    const ch = instrument(raw, { logger: cap.logger, headerNames: { correlationId: 'x-request-id', causationId: 'x-caused-by' } });
    const inQ = await fx.queue('lib.pub.names.in');
    const outQ = await fx.queue('lib.pub.names.out');
    await ch.consume(inQ, (m) => {
      ch.sendToQueue(outQ, Buffer.from('child'));
      ch.ack(m!);
    });
    const got = await collect(raw, outQ);
    ch.sendToQueue(inQ, Buffer.from('root'));
    await waitFor(() => got.length === 1, 'the child delivery');
    const root = cap.hops('send').find((h) => h.routingKey === inQ)!;
    const h = got[0]!.properties.headers!;
    expect(h['x-request-id']).toBe(root.messageId);
    expect(h['x-caused-by']).toBe(root.messageId);
    expect(h['x-correlation-id']).toBeUndefined();
    expect(h['x-causation-id']).toBeUndefined();
    await raw.close();
  });

  it('give every message of a burst its own traceparent and ids (headers are encoded before publish returns)', async () => {
    const cap = capture();
    const raw = await fx.conn.createChannel();
    const ch = instrument(raw, { logger: cap.logger });
    const inQ = await fx.queue('lib.pub.burst.in');
    const outQ = await fx.queue('lib.pub.burst.out');
    // Children published from handlers carry correlation and causation headers too.
    await ch.consume(inQ, (m) => {
      ch.sendToQueue(outQ, Buffer.from(`child of ${m!.content.toString()}`));
      ch.ack(m!);
    });
    const got = await collect(raw, outQ);
    for (let i = 0; i < 100; i++) ch.sendToQueue(inQ, Buffer.from(String(i)));
    await waitFor(() => got.length === 100, 'a hundred children');
    const sends = new Map(cap.hops('send').map((h) => [h.messageId, h]));
    const seen = new Set<string>();
    for (const m of got) {
      const send = sends.get(m.properties.messageId)!;
      const h = m.properties.headers!;
      expect(h.traceparent).toBe(`00-${send.traceId}-${send.spanId}-01`);
      expect(h['x-correlation-id']).toBe(send.correlationId);
      expect(h['x-causation-id']).toBe(send.causationId);
      seen.add(h.traceparent as string);
    }
    expect(seen.size).toBe(100);
    await raw.close();
  });

  it('generate time-ordered message ids', async () => {
    const cap = capture();
    const raw = await fx.conn.createChannel();
    const ch = instrument(raw, { logger: cap.logger });
    const q = await fx.queue('lib.pub.v7');
    for (let i = 0; i < 50; i++) ch.sendToQueue(q, Buffer.from(String(i)));
    const ids = cap.hops('send').map((h) => h.messageId);
    expect(ids).toHaveLength(50);
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(50);
    await raw.close();
  });

  it('capture payloads only when asked, redacted and cut at maxBytes', async () => {
    const cap = capture();
    const raw = await fx.conn.createChannel();
    const q = await fx.queue('lib.pub.payload');
    const plain = instrument(await fx.conn.createChannel(), { logger: cap.logger });
    plain.sendToQueue(q, Buffer.from('{"secret":"s3cr3t"}'));
    expect(cap.hops('send')[0]!.payload).toBeUndefined();

    const cap2 = capture();
    const ch = instrument(raw, {
      logger: cap2.logger,
      capturePayload: { maxBytes: 16, redact: (text) => text.replace(/s3cr3t/g, '***') },
    });
    ch.sendToQueue(q, Buffer.from('{"secret":"s3cr3t","more":"data"}'));
    ch.sendToQueue(q, Buffer.from('short s3cr3t'));
    const [long, short] = cap2.hops('send');
    expect(long!.payload).toBe('{"secret":"***",');
    expect(long!.payloadTruncated).toBe(true);
    expect(short!.payload).toBe('short ***');
    expect(short!.payloadTruncated).toBeUndefined();
    await raw.close();
  });

  it('record on send and receive hops the headers and properties their own fields do not hold', async () => {
    const cap = capture();
    const raw = await fx.conn.createChannel();
    const ch = instrument(raw, { logger: cap.logger, serviceName: 'producer' });
    const consumerCap = capture();
    const sub = instrument(await fx.conn.createChannel(), { logger: consumerCap.logger, serviceName: 'consumer' });
    const q = await fx.queue('lib.pub.dedupe');
    await sub.consume(q, (m) => m && sub.ack(m));
    ch.sendToQueue(q, Buffer.from('x'), {
      persistent: true,
      type: 'order.placed',
      headers: { tenant: 'acme', tracestate: 'vendor=1' },
    });
    await waitFor(() => consumerCap.hops('receive').length === 1, 'the receive hop');
    const send = cap.hops('send')[0]!;
    expect(send.headers).toEqual({ tenant: 'acme', tracestate: 'vendor=1' });
    expect(send.properties).toEqual({ deliveryMode: 2 });
    const receive = consumerCap.hops('receive')[0]!;
    expect(receive).toMatchObject({ traceId: send.traceId, parentSpanId: send.spanId, correlationId: send.messageId });
    expect(receive.headers).toEqual({ tenant: 'acme', tracestate: 'vendor=1' });
    expect(receive.properties).toEqual({ deliveryMode: 2 });
    await sub.close();
    await raw.close();
  });

  it('keep record of headers as capped strings, or none with recordHeaders: false', async () => {
    const cap = capture();
    const raw = await fx.conn.createChannel();
    const q = await fx.queue('lib.pub.recordheaders');
    const ch = instrument(raw, { logger: cap.logger });
    ch.sendToQueue(q, Buffer.from('x'), { headers: { big: 'y'.repeat(1000), n: 5, obj: { a: 1 } } });
    const send = cap.hops('send')[0]!;
    const h = send.headers!;
    // Cut to 256 characters, the cut marked with … and the record saying so.
    expect(h.big).toBe(`${'y'.repeat(255)}…`);
    expect(send.truncated).toBe(true);
    expect(h.n).toBe('5');
    expect(h.obj).toBe('{"a":1}');

    const cap2 = capture();
    const off = instrument(await fx.conn.createChannel(), { logger: cap2.logger, recordHeaders: false });
    off.sendToQueue(q, Buffer.from('x'), { headers: { a: 'b' } });
    expect(cap2.hops('send')[0]!.headers).toBeUndefined();
    await raw.close();
  });
});

describe('the four exchange types', () => {
  it('a direct exchange routes by exact key, and the hops say exchange, key and queue', async () => {
    const cap = capture();
    const raw = await fx.conn.createChannel();
    const ch = instrument(raw, { logger: cap.logger });
    const ex = await fx.exchange('lib.direct', 'direct');
    const q = await fx.queue('lib.direct.q');
    await ch.bindQueue(q, ex, 'member.joined');
    await ch.consume(q, (m) => ch.ack(m!));

    ch.publish(ex, 'member.joined', Buffer.from('1'));
    ch.publish(ex, 'member.left', Buffer.from('2'));
    await waitFor(() => cap.hops('settle').length === 1, 'the settle hop');
    const [joined, left] = cap.hops('send');
    expect(joined).toMatchObject({ exchange: ex, routingKey: 'member.joined' });
    const receives = cap.hops('receive');
    expect(receives).toHaveLength(1);
    expect(receives[0]).toMatchObject({
      messageId: joined!.messageId,
      correlationId: joined!.correlationId,
      exchange: ex,
      routingKey: 'member.joined',
      queue: q,
      redelivered: false,
      traceId: joined!.traceId,
      parentSpanId: joined!.spanId,
    });
    expect(cap.of(left!.messageId, 'receive')).toHaveLength(0);
    await raw.close();
  });

  it('a fanout exchange delivers one message to every bound queue, each with its own receive hop', async () => {
    const cap = capture();
    const raw = await fx.conn.createChannel();
    const ch = instrument(raw, { logger: cap.logger });
    const ex = await fx.exchange('lib.fanout', 'fanout');
    const qa = await fx.queue('lib.fanout.a');
    const qb = await fx.queue('lib.fanout.b');
    await ch.bindQueue(qa, ex, '');
    await ch.bindQueue(qb, ex, '');
    await ch.consume(qa, (m) => ch.ack(m!));
    await ch.consume(qb, (m) => ch.ack(m!));

    ch.publish(ex, 'ignored', Buffer.from('x'));
    await waitFor(() => cap.hops('settle').length === 2, 'two settle hops');
    const [send] = cap.hops('send');
    const receives = cap.of(send!.messageId, 'receive');
    expect(receives.map((r) => r.queue).sort()).toEqual([qa, qb].sort());
    for (const r of receives) {
      expect(r).toMatchObject({ exchange: ex, correlationId: send!.correlationId, parentSpanId: send!.spanId });
    }
    expect(new Set(receives.map((r) => r.spanId)).size).toBe(2);
    await raw.close();
  });

  it('a topic exchange matches * against one word and # against any number', async () => {
    const cap = capture();
    const raw = await fx.conn.createChannel();
    const ch = instrument(raw, { logger: cap.logger });
    const ex = await fx.exchange('lib.topic', 'topic');
    const star = await fx.queue('lib.topic.star');
    const hash = await fx.queue('lib.topic.hash');
    await ch.bindQueue(star, ex, 'member.*');
    await ch.bindQueue(hash, ex, 'member.#');
    await ch.consume(star, (m) => ch.ack(m!));
    await ch.consume(hash, (m) => ch.ack(m!));

    ch.publish(ex, 'member.joined', Buffer.from('1'));
    ch.publish(ex, 'member.auth.reset', Buffer.from('2'));
    await waitFor(() => cap.hops('settle').length === 3, 'three settle hops');
    const [joined, reset] = cap.hops('send');
    expect(cap.of(joined!.messageId, 'receive').map((h) => h.queue).sort()).toEqual([hash, star].sort());
    expect(cap.of(reset!.messageId, 'receive').map((h) => h.queue)).toEqual([hash]);
    expect(cap.of(reset!.messageId, 'receive')[0]).toMatchObject({ routingKey: 'member.auth.reset', exchange: ex });
    await raw.close();
  });

  it('a headers exchange honours x-match any and all, untroubled by the headers hoptrace adds', async () => {
    const cap = capture();
    const raw = await fx.conn.createChannel();
    const ch = instrument(raw, { logger: cap.logger });
    const ex = await fx.exchange('lib.headers', 'headers');
    const any = await fx.queue('lib.headers.any');
    const all = await fx.queue('lib.headers.all');
    await ch.bindQueue(any, ex, '', { 'x-match': 'any', region: 'eu', tier: 'gold' });
    await ch.bindQueue(all, ex, '', { 'x-match': 'all', region: 'eu', tier: 'gold' });
    await ch.consume(any, (m) => ch.ack(m!));
    await ch.consume(all, (m) => ch.ack(m!));

    ch.publish(ex, '', Buffer.from('1'), { headers: { region: 'eu' } });
    ch.publish(ex, '', Buffer.from('2'), { headers: { region: 'eu', tier: 'gold' } });
    await waitFor(() => cap.hops('settle').length === 3, 'three settle hops');
    const [one, both] = cap.hops('send');
    expect(cap.of(one!.messageId, 'receive').map((h) => h.queue)).toEqual([any]);
    expect(cap.of(both!.messageId, 'receive').map((h) => h.queue).sort()).toEqual([all, any].sort());
    expect(cap.of(both!.messageId, 'receive')[0]!.headers).toMatchObject({ region: 'eu', tier: 'gold' });
    await raw.close();
  });
});
