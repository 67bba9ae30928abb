import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Channel, ConsumeMessage, GetMessage } from 'amqplib';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type HopRecord, connect, currentHopContext, hoptraceMixin, instrument } from '../src/index.ts';
import { AMQP_URL, waitFor } from './helpers/broker.ts';
import { type Fixture, capture, delay, fixture } from './lib-capture.ts';

let fx: Fixture;
beforeAll(async () => {
  fx = await fixture();
});
afterAll(async () => {
  await fx.cleanup();
});

const only = (hops: HopRecord[]): HopRecord => {
  expect(hops).toHaveLength(1);
  return hops[0]!;
};

describe('consume', () => {
  it('a work queue with prefetch 1 shares messages between two consumers, each hop recorded once', async () => {
    const cap = capture();
    const q = await fx.queue('lib.work');
    const chA = instrument(await fx.conn.createChannel(), { logger: cap.logger });
    const chB = instrument(await fx.conn.createChannel(), { logger: cap.logger });
    const seen: Record<string, number> = { a: 0, b: 0 };
    for (const [name, ch] of [['a', chA], ['b', chB]] as const) {
      await ch.prefetch(1);
      await ch.consume(
        q,
        async (m) => {
          seen[name]!++;
          await delay(10);
          ch.ack(m!);
        },
        { consumerTag: `worker-${name}` },
      );
    }
    const producer = instrument(await fx.conn.createChannel(), { logger: cap.logger });
    for (let i = 0; i < 10; i++) producer.sendToQueue(q, Buffer.from(String(i)));
    await waitFor(() => cap.hops('settle').length === 10, 'ten settle hops');

    expect(seen.a! + seen.b!).toBe(10);
    expect(seen.a).toBeGreaterThan(0);
    expect(seen.b).toBeGreaterThan(0);
    for (const send of cap.hops('send')) {
      const receive = only(cap.of(send.messageId, 'receive'));
      const process = only(cap.of(send.messageId, 'process'));
      const settle = only(cap.of(send.messageId, 'settle'));
      expect(receive).toMatchObject({ queue: q, correlationId: send.messageId, redelivered: false });
      expect(process).toMatchObject({ outcome: 'ok', spanId: receive.spanId, consumerTag: receive.consumerTag });
      expect(process.durationMs).toBeGreaterThanOrEqual(0);
      // Without an SDK the settle has no span of its own: it is the consumer span's.
      expect(settle).toMatchObject({ outcome: 'ack', spanId: receive.spanId, deliveryTag: receive.deliveryTag });
      expect(settle.multiple).toBeUndefined();
    }
    // Consumer tags a person chose are recorded (broker-made amq.ctag-… ones are not).
    expect(new Set(cap.hops('receive').map((h) => h.consumerTag))).toEqual(new Set(['worker-a', 'worker-b']));
    // One consume record per delivery: receive, process and settle on one line.
    expect(cap.records().filter((r) => r.kind === 'consume')).toHaveLength(10);
    await Promise.all([chA.close(), chB.close(), producer.close()]);
  });

  it('a handler that throws is recorded with its error once the delivery is settled, and the error reaches amqplib’s handler-error listener unchanged', async () => {
    const cap = capture();
    const q = await fx.queue('lib.throw');
    const ch = instrument(await fx.conn.createChannel(), { logger: cap.logger, recordGraceMs: 60_000 });
    const boom = new TypeError('cannot read the member');
    const reported: unknown[] = [];
    ch.on('handler-error', (err: unknown) => reported.push(err));
    const held: ConsumeMessage[] = [];
    await ch.consume(q, (m) => {
      held.push(m!);
      throw boom;
    });
    ch.sendToQueue(q, Buffer.from('x'));
    await waitFor(() => reported.length === 1, 'the handler-error event');

    expect(reported[0]).toBe(boom);
    // Nothing settles it behind the user's back: it stays unacked, and its record waits for the settle.
    expect(cap.hops('receive')).toHaveLength(0);
    ch.nack(held[0]!, false, false);
    const process = only(cap.hops('process'));
    expect(process.outcome).toBe('error');
    expect(process.error).toMatchObject({ type: 'TypeError', message: 'cannot read the member' });
    expect(process.error!.stack).toContain('cannot read the member');
    expect(only(cap.hops('settle'))).toMatchObject({ outcome: 'nack', requeue: false });
    expect(cap.recordLines().find((l) => l.hop?.kind === 'consume')!.level).toBe(50);
    await ch.close();
  });

  it('a throwing handler without a handler-error listener makes amqplib close the channel, and the message is redelivered', async () => {
    const cap = capture();
    const q = await fx.queue('lib.throw.close');
    const failing = instrument(await fx.conn.createChannel(), { logger: cap.logger });
    const errors: Error[] = [];
    failing.on('error', (err: Error) => errors.push(err));
    let closed = false;
    failing.on('close', () => (closed = true));
    await failing.consume(q, () => {
      throw new Error('handler bug');
    });
    failing.sendToQueue(q, Buffer.from('x'));
    await waitFor(() => closed, 'amqplib to close the channel');
    expect(errors[0]?.message).toContain('handler bug');

    const rescuer = instrument(await fx.conn.createChannel(), { logger: cap.logger });
    await rescuer.consume(q, (m) => rescuer.ack(m!));
    await waitFor(() => cap.hops('settle').length === 1, 'the redelivered message settled');
    const [first, second] = cap.hops('receive');
    expect(first!.messageId).toBe(second!.messageId);
    expect(second!.redelivered).toBe(true);
    expect(cap.hops('process').map((h) => h.outcome)).toEqual(['error', 'ok']);
    await rescuer.close();
  });

  it('an async handler that rejects is recorded with its error and its rejection stays unhandled, as with amqplib alone', () => {
    const lib = fileURLToPath(new URL('../src/index.ts', import.meta.url));
    const script = `
      import { connect } from ${JSON.stringify(lib)};
      import pino from 'pino';
      const lines = [];
      const logger = pino({}, { write: (s) => lines.push(JSON.parse(s)) });
      const conn = await connect(${JSON.stringify(AMQP_URL)}, { logger });
      const ch = await conn.createChannel();
      const { queue } = await ch.assertQueue('', { exclusive: true });
      const boom = new RangeError('async boom');
      process.on('unhandledRejection', async (reason) => {
        const hop = lines.find((l) => l.hop && l.hop.kind === 'consume').hop;
        console.log(JSON.stringify({ same: reason === boom, settle: hop.settle, error: hop.error.message }));
        await conn.close();
        process.exit(0);
      });
      await ch.consume(queue, async (m) => { await null; ch.ack(m); throw boom; });
      ch.sendToQueue(queue, Buffer.from('x'));
      setTimeout(() => { console.log('no unhandledRejection'); process.exit(1); }, 5000);
    `;
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: fileURLToPath(new URL('..', import.meta.url)),
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(run.stderr).not.toMatch(/Error \[ERR/);
    expect(JSON.parse(run.stdout.trim().split('\n').pop()!)).toEqual({ same: true, settle: 'ack', error: 'async boom' });
  });

  it('a nack without requeue dead-letters the message, and the DLQ consumer’s receive hop carries the parsed x-death', async () => {
    const cap = capture();
    const dlx = await fx.exchange('lib.dlx', 'fanout');
    const dlq = await fx.queue('lib.dlq');
    await fx.admin.bindQueue(dlq, dlx, '');
    const q = await fx.queue('lib.work.dl', { deadLetterExchange: dlx });
    const ch = instrument(await fx.conn.createChannel(), { logger: cap.logger, serviceName: 'worker' });
    await ch.consume(q, (m) => ch.nack(m!, false, false));
    await ch.consume(dlq, (m) => ch.ack(m!));

    ch.sendToQueue(q, Buffer.from('poison'));
    await waitFor(() => cap.hops('settle').length === 2, 'nack and the DLQ ack');
    const send = only(cap.hops('send'));
    const [nack, ack] = cap.of(send.messageId, 'settle');
    expect(nack).toMatchObject({ outcome: 'nack', requeue: false, queue: q });
    expect(ack).toMatchObject({ outcome: 'ack', queue: dlq });
    const dead = cap.of(send.messageId, 'receive').find((h) => h.queue === dlq)!;
    expect(dead).toMatchObject({ correlationId: send.correlationId, exchange: dlx, deathCount: 1 });
    expect(dead.death).toHaveLength(1);
    expect(dead.death![0]).toMatchObject({ queue: q, reason: 'rejected', count: 1, exchange: '', routingKeys: [q] });
    expect(dead.death![0]!.time).toBeGreaterThan(1_600_000_000_000);
    await ch.close();
  });

  it('a consumer channel closed without ack has its message redelivered, marked redelivered', async () => {
    const cap = capture();
    const q = await fx.queue('lib.redeliver');
    const first = instrument(await fx.conn.createChannel(), { logger: cap.logger });
    let handled = 0;
    await first.consume(q, () => {
      handled++; // never settles
    });
    first.sendToQueue(q, Buffer.from('x'));
    await waitFor(() => handled === 1, 'the first handler');
    // Closing writes what is known of the unsettled delivery: an open record.
    await first.close();
    expect(cap.records().find((r) => r.kind === 'consume')).toMatchObject({ open: true });
    expect(cap.hops('process')).toHaveLength(1);

    const second = instrument(await fx.conn.createChannel(), { logger: cap.logger });
    await second.consume(q, (m) => second.ack(m!));
    await waitFor(() => cap.hops('settle').length === 1, 'the redelivery settled');
    const receives = cap.hops('receive');
    expect(receives.map((h) => h.redelivered)).toEqual([false, true]);
    expect(receives[0]!.messageId).toBe(receives[1]!.messageId);
    expect(receives[1]!.correlationId).toBe(receives[0]!.correlationId);
    await second.close();
  });

  it('get records receive and settle hops', async () => {
    const cap = capture();
    const q = await fx.queue('lib.get');
    const ch = instrument(await fx.conn.createChannel(), { logger: cap.logger });
    ch.sendToQueue(q, Buffer.from('pull me'));
    const msg = await waitFor(async () => await ch.get(q), 'a message to get');
    ch.ack(msg);
    const send = only(cap.hops('send'));
    expect(only(cap.hops('receive'))).toMatchObject({ messageId: send.messageId, queue: q, parentSpanId: send.spanId });
    expect(only(cap.hops('settle'))).toMatchObject({ messageId: send.messageId, outcome: 'ack' });
    expect(await ch.get(q)).toBe(false);
    await ch.close();
  });

  it('ack with allUpTo, ackAll and nackAll give one settle hop per outstanding delivery, marked multiple', async () => {
    const cap = capture();
    const q = await fx.queue('lib.multi');
    const ch = instrument(await fx.conn.createChannel(), { logger: cap.logger });
    const held: ConsumeMessage[] = [];
    const { consumerTag } = await ch.consume(q, (m) => void held.push(m!));
    for (let i = 0; i < 3; i++) ch.sendToQueue(q, Buffer.from(String(i)));
    await waitFor(() => held.length === 3, 'three deliveries');
    ch.ack(held[1]!, true);
    expect(cap.hops('settle').map((h) => [h.deliveryTag, h.outcome, h.multiple])).toEqual([
      [1, 'ack', true],
      [2, 'ack', true],
    ]);
    ch.ackAll();
    expect(cap.hops('settle').at(-1)).toMatchObject({ deliveryTag: 3, outcome: 'ack', multiple: true });

    for (let i = 0; i < 2; i++) ch.sendToQueue(q, Buffer.from(String(i)));
    await waitFor(() => held.length === 5, 'two more deliveries');
    await ch.cancel(consumerTag);
    ch.nackAll(false);
    expect(cap.hops('settle').slice(3).map((h) => [h.outcome, h.requeue, h.multiple])).toEqual([
      ['nack', false, true],
      ['nack', false, true],
    ]);
    await ch.close();
  });

  it('a noAck consumer records the broker’s auto-ack so the message never looks stuck', async () => {
    const cap = capture();
    const q = await fx.queue('lib.noack');
    const ch = instrument(await fx.conn.createChannel(), { logger: cap.logger });
    await ch.consume(q, () => {}, { noAck: true });
    ch.sendToQueue(q, Buffer.from('x'));
    await waitFor(() => cap.hops('process').length === 1, 'the handler');
    expect(cap.hops().map((h) => h.kind)).toEqual(['send', 'receive', 'process', 'settle']);
    expect(cap.hops('settle')[0]!.outcome).toBe('ack');
    await ch.close();
  });
});

describe('context propagation', () => {
  it('a three-service chain carries one correlation id and each message’s causation, through an awaited helper', async () => {
    const cap = capture();
    const userLines: Record<string, unknown>[] = [];
    const userLog = pino({ mixin: hoptraceMixin }, { write: (s: string) => void userLines.push(JSON.parse(s)) });
    const ex = await fx.exchange('lib.chain', 'topic');
    const familyQ = await fx.queue('lib.chain.family');
    const notifyQ = await fx.queue('lib.chain.notify');
    await fx.admin.bindQueue(familyQ, ex, 'member.auth.reset');
    await fx.admin.bindQueue(notifyQ, ex, 'family.member.withdrawn');

    const member = instrument(await fx.conn.createChannel(), { logger: cap.logger, serviceName: 'member-service' });
    const family = instrument(await fx.conn.createChannel(), { logger: cap.logger, serviceName: 'family-account' });
    const notify = instrument(await fx.conn.createChannel(), { logger: cap.logger, serviceName: 'notification' });

    async function withdrawFromFamily(memberId: string): Promise<void> {
      await delay(5);
      await Promise.resolve();
      userLog.info({ memberId }, 'withdrawing member');
      family.publish(ex, 'family.member.withdrawn', Buffer.from(JSON.stringify({ memberId })));
    }
    let seenInNotify: ReturnType<typeof currentHopContext>;
    await family.consume(familyQ, async (m) => {
      await withdrawFromFamily(JSON.parse(m!.content.toString()).memberId);
      family.ack(m!);
    });
    await notify.consume(notifyQ, (m) => {
      seenInNotify = currentHopContext();
      notify.ack(m!);
    });

    member.publish(ex, 'member.auth.reset', Buffer.from('{"memberId":"m-1"}'));
    await waitFor(() => cap.hops('settle').length === 2, 'both settles');

    const [reset, withdrawn] = cap.hops('send');
    expect(reset).toMatchObject({ service: 'member-service', routingKey: 'member.auth.reset', correlationId: reset!.messageId });
    expect(reset!.causationId).toBeUndefined();
    expect(withdrawn).toMatchObject({
      service: 'family-account',
      routingKey: 'family.member.withdrawn',
      correlationId: reset!.messageId,
      causationId: reset!.messageId,
      traceId: reset!.traceId,
    });
    const familyReceive = only(cap.of(reset!.messageId, 'receive'));
    expect(withdrawn!.parentSpanId).toBe(familyReceive.spanId);
    for (const hop of cap.hops()) {
      expect(hop.correlationId).toBe(reset!.messageId);
      expect(hop.traceId).toBe(reset!.traceId);
      if (hop.messageId === withdrawn!.messageId) expect(hop.causationId).toBe(reset!.messageId);
      else expect(hop.causationId).toBeUndefined();
    }
    expect(cap.of(withdrawn!.messageId, 'receive')[0]!.service).toBe('notification');
    expect(seenInNotify).toEqual({
      correlationId: reset!.messageId,
      causationId: reset!.messageId,
      messageId: withdrawn!.messageId,
      traceId: reset!.traceId,
    });
    expect(userLines[0]).toMatchObject({ correlationId: reset!.messageId, messageId: reset!.messageId, traceId: reset!.traceId });
    expect(currentHopContext()).toBeUndefined();
    expect(hoptraceMixin()).toEqual({});
    await Promise.all([member.close(), family.close(), notify.close()]);
  });

  it('a logger with hoptraceMixin writes the hop lines of publishes made outside any handler', async () => {
    const lines: Record<string, unknown>[] = [];
    const log = pino({ mixin: hoptraceMixin }, { write: (s: string) => void lines.push(JSON.parse(s)) });
    const conn = await connect(AMQP_URL, { serviceName: 'mixin-outside', logger: log });
    try {
      const ch = await conn.createChannel();
      const { queue } = await ch.assertQueue('', { exclusive: true });
      ch.sendToQueue(queue, Buffer.from('{}'));
      await waitFor(() => lines.some((l) => (l.hop as { kind?: string } | undefined)?.kind === 'publish'), 'the publish record');
      const first = hoptraceMixin();
      Object.assign(first, { hop: 'written by pino' });
      expect(hoptraceMixin()).toEqual({});
    } finally {
      await conn.close();
    }
  });

  it('100 concurrent handlers (prefetch 100) never mix their contexts', async () => {
    const cap = capture();
    const inQ = await fx.queue('lib.many.in');
    const outQ = await fx.queue('lib.many.out');
    const ch = instrument(await fx.conn.createChannel(), { logger: cap.logger });
    await ch.prefetch(100);
    let inFlight = 0;
    let peak = 0;
    async function forward(body: Buffer, wait: number): Promise<void> {
      await delay(wait);
      ch.sendToQueue(outQ, body);
    }
    await ch.consume(inQ, async (m) => {
      peak = Math.max(peak, ++inFlight);
      await forward(m!.content, (Number(m!.content.toString()) * 7) % 40);
      inFlight--;
      ch.ack(m!);
    });
    const producer = instrument(await fx.conn.createChannel(), { logger: cap.logger });
    for (let i = 0; i < 100; i++) producer.sendToQueue(inQ, Buffer.from(String(i)), { headers: { 'x-correlation-id': `flow-${i}` } });
    await waitFor(() => cap.hops('settle').length === 100, '100 settles', 20_000);

    expect(peak).toBeGreaterThan(1);
    const sends = cap.hops('send');
    const parents = sends.filter((h) => h.routingKey === inQ);
    const children = sends.filter((h) => h.routingKey === outQ);
    expect(children).toHaveLength(100);
    const parentById = new Map(parents.map((p) => [p.messageId, p]));
    for (const child of children) {
      const parent = parentById.get(child.causationId!)!;
      expect(parent).toBeDefined();
      expect(child.correlationId).toBe(parent.correlationId);
      expect(child.traceId).toBe(parent.traceId);
    }
    // Each parent caused exactly one child.
    expect(new Set(children.map((c) => c.causationId)).size).toBe(100);
    const body = (await ch.get(outQ)) as GetMessage;
    const child = children.find((c) => c.messageId === body.properties.messageId)!;
    expect(child.correlationId).toBe(`flow-${body.content.toString()}`);
    await ch.purgeQueue(outQ);
    await Promise.all([ch.close(), producer.close()]);
  });
});

describe('messages from uninstrumented producers', () => {
  let raw: Channel;
  beforeAll(async () => {
    raw = await fx.conn.createChannel();
  });
  afterAll(async () => {
    await raw.close();
  });

  it('a message with no hoptrace headers starts a new chain', async () => {
    const cap = capture();
    const q = await fx.queue('lib.plain');
    const ch = instrument(await fx.conn.createChannel(), { logger: cap.logger });
    await ch.consume(q, (m) => ch.ack(m!));
    raw.sendToQueue(q, Buffer.from('a'), { messageId: 'legacy-1' });
    raw.sendToQueue(q, Buffer.from('b'));
    await waitFor(() => cap.hops('settle').length === 2, 'two settles');
    const [withId, withoutId] = cap.hops('receive');
    expect(withId).toMatchObject({ messageId: 'legacy-1', correlationId: 'legacy-1' });
    expect(withId!.causationId).toBeUndefined();
    expect(withId!.parentSpanId).toBeUndefined();
    expect(withoutId!.correlationId).toBe(withoutId!.messageId);
    expect(cap.warnings()).toHaveLength(0);
    await ch.close();
  });

  it('malformed headers are ignored with one warning per kind and the message is still delivered', async () => {
    const cap = capture();
    const q = await fx.queue('lib.malformed');
    const ch = instrument(await fx.conn.createChannel(), { logger: cap.logger });
    const delivered: string[] = [];
    await ch.consume(q, (m) => {
      delivered.push(m!.content.toString());
      ch.ack(m!);
    });
    const bad = {
      traceparent: 'not-a-traceparent',
      'x-correlation-id': Buffer.from('abc'),
      'x-causation-id': 42,
      baggage: 'k=' + 'v'.repeat(10_000),
    };
    raw.sendToQueue(q, Buffer.from('one'), { messageId: 'bad-1', headers: bad });
    raw.sendToQueue(q, Buffer.from('two'), { messageId: 'bad-2', headers: bad });
    raw.sendToQueue(q, Buffer.from('three'), { messageId: 'bad-3', headers: { traceparent: '00-' + 'f'.repeat(2000) } });
    await waitFor(() => cap.hops('settle').length === 3, 'three settles');

    expect(delivered).toEqual(['one', 'two', 'three']);
    const problems = cap.warnings().map((w) => w.problem);
    expect(problems.sort()).toEqual(['buffer', 'non-string', 'too-large', 'traceparent']);
    expect(cap.warnings().every((w) => w.code === 'HOPTRACE_ERR_MALFORMED_HEADER')).toBe(true);
    const receive = cap.of('bad-1', 'receive')[0]!;
    expect(receive.correlationId).toBe('bad-1');
    expect(receive.causationId).toBeUndefined();
    expect(receive.parentSpanId).toBeUndefined();
    expect(receive.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(cap.hops('process').every((h) => h.outcome === 'ok')).toBe(true);
    await ch.close();
  });
});
