import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../src/index.ts';
import { AMQP_URL, uniqueName, waitFor } from './helpers/broker.ts';
import { type Fixture, capture, fixture } from './lib-capture.ts';

let fx: Fixture;
beforeAll(async () => {
  fx = await fixture();
});
afterAll(async () => {
  await fx.cleanup();
});

describe('ConfirmChannel', () => {
  it('records a confirm hop per broker ack, calls the caller’s callback, and waitForConfirms still resolves', async () => {
    const cap = capture();
    const conn = await connect(AMQP_URL, { logger: cap.logger, serviceName: 'billing' });
    const ch = await conn.createConfirmChannel();
    const q = await fx.queue('lib.confirm');
    const callbacks: unknown[] = [];
    for (let i = 0; i < 5; i++) ch.sendToQueue(q, Buffer.from(String(i)), {}, (err) => callbacks.push(err));
    ch.publish('', q, Buffer.from('no callback'));
    await ch.waitForConfirms();

    expect(callbacks).toEqual([null, null, null, null, null]);
    const sends = cap.hops('send');
    const confirms = cap.hops('confirm');
    expect(confirms).toHaveLength(6);
    for (const send of sends) {
      const confirm = confirms.find((c) => c.messageId === send.messageId)!;
      expect(confirm).toMatchObject({
        kind: 'confirm',
        outcome: 'ack',
        service: 'billing',
        correlationId: send.correlationId,
        traceId: send.traceId,
        spanId: send.spanId,
        exchange: '',
        routingKey: q,
      });
      expect(confirm.durationMs).toBeGreaterThanOrEqual(0);
    }
    await conn.close();
  });

  it('runs the confirm callback inside the publishing handler’s context', async () => {
    const cap = capture();
    const conn = await connect(AMQP_URL, { logger: cap.logger });
    const ch = await conn.createConfirmChannel();
    const inQ = await fx.queue('lib.confirm.ctx.in');
    const outQ = await fx.queue('lib.confirm.ctx.out');
    await ch.consume(inQ, (m) => {
      ch.sendToQueue(outQ, Buffer.from('child'), {}, () => {
        // published from the confirm callback: still caused by the handled message
        ch.sendToQueue(outQ, Buffer.from('grandchild'));
      });
      ch.ack(m!);
    });
    ch.sendToQueue(inQ, Buffer.from('root'));
    await waitFor(() => cap.hops('send').length === 3, 'three sends');
    const [root, child, fromCallback] = cap.hops('send');
    expect(child!.causationId).toBe(root!.messageId);
    expect(fromCallback!.causationId).toBe(root!.messageId);
    expect(fromCallback!.correlationId).toBe(root!.messageId);
    await ch.waitForConfirms();
    await ch.purgeQueue(outQ);
    await conn.close();
  });

  it('a mandatory publish nobody can route to gives a return hop with reply code and text, and the return event still fires', async () => {
    const cap = capture();
    const conn = await connect(AMQP_URL, { logger: cap.logger });
    const ch = await conn.createConfirmChannel();
    const ex = await fx.exchange('lib.nowhere', 'direct');
    const returned: string[] = [];
    ch.on('return', (m) => returned.push(m.properties.messageId));
    ch.publish(ex, 'no.such.key', Buffer.from('lost'), { mandatory: true });
    await ch.waitForConfirms();
    await waitFor(() => cap.hops('return').length === 1, 'the return hop');

    const send = cap.hops('send')[0]!;
    const ret = cap.hops('return')[0]!;
    expect(ret).toMatchObject({
      kind: 'return',
      outcome: 'returned',
      replyCode: 312,
      replyText: 'NO_ROUTE',
      exchange: ex,
      routingKey: 'no.such.key',
      messageId: send.messageId,
      correlationId: send.correlationId,
      traceId: send.traceId,
      spanId: send.spanId,
    });
    expect(returned).toEqual([send.messageId]);
    expect(cap.lines.find((l) => l.hop?.kind === 'return')!.level).toBe(40);
    // The broker still confirms an unroutable message (it was handled, just not routed).
    expect(cap.hops('confirm')[0]).toMatchObject({ messageId: send.messageId, outcome: 'ack' });
    await conn.close();
  });

  it('a plain Channel also reports returns', async () => {
    const cap = capture();
    const conn = await connect(AMQP_URL, { logger: cap.logger });
    const ch = await conn.createChannel();
    ch.sendToQueue(uniqueName('lib.no.such.queue'), Buffer.from('x'), { mandatory: true });
    await waitFor(() => cap.hops('return').length === 1, 'the return hop');
    expect(cap.hops('return')[0]!.messageId).toBe(cap.hops('send')[0]!.messageId);
    await conn.close();
  });

  it('a publish on a closed channel throws amqplib’s error and records no send hop', async () => {
    const cap = capture();
    const conn = await connect(AMQP_URL, { logger: cap.logger });
    const ch = await conn.createConfirmChannel();
    await ch.close();
    expect(() => ch.sendToQueue('x', Buffer.from('x'))).toThrow(/closed/i);
    expect(cap.hops('send')).toHaveLength(0);
    await conn.close();
  });
});
