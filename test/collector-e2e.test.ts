import { once } from 'node:events';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { ChannelModel } from 'amqplib';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChainDetail, ChainList } from '../collector/api-types.ts';
import { instrument } from '../src/index.ts';
import { connectBroker, uniqueName, waitFor } from './helpers/broker.ts';
import { getJson, startTestCollector, type TestCollector } from './helpers/collector.ts';

const TRANSPORT = fileURLToPath(new URL('../src/transport.ts', import.meta.url));

let collector: TestCollector;
let conn: ChannelModel;
const transports: ReturnType<typeof pino.transport>[] = [];

/** A service's logger: its hop lines go through the hoptrace transport (pino worker) to the collector. */
function serviceLogger() {
  const transport = pino.transport({ target: TRANSPORT, options: { url: collector.url, flushIntervalMs: 25 } });
  transports.push(transport);
  return pino({ level: 'info' }, transport);
}

beforeAll(async () => {
  collector = await startTestCollector();
  conn = await connectBroker();
});

afterAll(async () => {
  await conn?.close();
  // Everything has been delivered by now, so closing the transports does not wait on the collector.
  for (const t of transports) {
    const closed = once(t, 'close');
    t.end();
    await closed;
  }
  await collector?.stop();
});

describe('end to end', () => {
  it('three instrumented services on RabbitMQ log through the transport and the collector rebuilds the whole chain', async () => {
    const ordersEx = uniqueName('e2e.orders');
    const billingEx = uniqueName('e2e.billing');
    const billingQ = uniqueName('e2e.billing.orders');
    const mailerQ = uniqueName('e2e.mailer.invoices');

    const setup = await conn.createChannel();
    await setup.assertExchange(ordersEx, 'topic', { autoDelete: true });
    await setup.assertExchange(billingEx, 'topic', { autoDelete: true });
    await setup.assertQueue(billingQ, { exclusive: true });
    await setup.assertQueue(mailerQ, { exclusive: true });
    await setup.bindQueue(billingQ, ordersEx, 'order.created');
    await setup.bindQueue(mailerQ, billingEx, 'invoice.issued');

    const orders = instrument(await conn.createChannel(), { serviceName: 'e2e-orders', logger: serviceLogger() });
    const billing = instrument(await conn.createChannel(), { serviceName: 'e2e-billing', logger: serviceLogger() });
    const mailer = instrument(await conn.createChannel(), { serviceName: 'e2e-mailer', logger: serviceLogger() });

    await billing.consume(billingQ, (msg) => {
      billing.publish(billingEx, 'invoice.issued', Buffer.from('{"invoice":1}'), { contentType: 'application/json' });
      billing.ack(msg!);
    });
    await mailer.consume(mailerQ, (msg) => {
      mailer.ack(msg!);
    });

    const orderId = `order-${randomUUID()}`;
    orders.publish(ordersEx, 'order.created', Buffer.from('{"order":1}'), { messageId: orderId, contentType: 'application/json' });

    // The first message's id is the chain's correlation id.
    const chain = await waitFor(
      async () => {
        const res = await getJson(collector.url, `/api/chains/${encodeURIComponent(orderId)}`);
        const detail = res.body as ChainDetail;
        return res.status === 200 && detail.hopCount === 8 && detail.status === 'ok' ? detail : undefined;
      },
      'the whole chain (2 messages × send, receive, process, settle) at the collector',
      20_000,
    );

    expect(chain.correlationId).toBe(orderId);
    expect(chain.services).toEqual(expect.arrayContaining(['e2e-orders', 'e2e-billing', 'e2e-mailer']));
    expect(chain.messageCount).toBe(2);
    expect(chain.rootMessageIds).toEqual([orderId]);
    const invoice = chain.messages.find((m) => m.messageId !== orderId)!;
    expect(invoice.parentMessageId).toBe(orderId);
    expect(invoice.publisher?.service).toBe('e2e-billing');
    expect(chain.messages.find((m) => m.messageId === orderId)!.childMessageIds).toEqual([invoice.messageId]);

    // Causal order: each message's send → receive → process → settle, the invoice after the order's receive.
    const seq = (messageId: string, kind: string) => chain.hops.find((h) => h.messageId === messageId && h.kind === kind)!.seq;
    for (const id of [orderId, invoice.messageId]) {
      expect(seq(id, 'send')).toBeLessThan(seq(id, 'receive'));
      expect(seq(id, 'receive')).toBeLessThan(seq(id, 'process'));
      expect(seq(id, 'receive')).toBeLessThan(seq(id, 'settle'));
    }
    expect(seq(orderId, 'receive')).toBeLessThan(seq(invoice.messageId, 'send'));

    const list = (await getJson(collector.url, `/api/chains?service=e2e-mailer`)).body as ChainList;
    expect(list.items.map((i) => i.correlationId)).toContain(orderId);
    const message = await getJson(collector.url, `/api/messages/${encodeURIComponent(invoice.messageId)}`);
    expect(message.body.correlationId).toBe(orderId);

    await Promise.all([orders.close(), billing.close(), mailer.close(), setup.close()]);
  });
});
