/**
 * A coffee shop on the real RabbitMQ for replay tests: an instrumented
 * barista that dead-letters what is not on its menu into a queue nobody
 * consumes, an instrumented customer, and a collector that may replay
 * (told where the dead letters go with `deadLetterQueues`). Hops ship through
 * the real transport. `openShops()` gives a set whose `close()` removes the
 * queues and exchanges, ends the transports and stops the collectors.
 */
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import { pino } from 'pino';
import type { FailureGroup, FailureGroupList } from '../../collector/api-types.ts';
import { instrument } from '../../src/index.ts';
import { AMQP_URL, connectBroker, uniqueName, waitFor } from './broker.ts';
import { getJson, startTestCollector, type TestCollector } from './collector.ts';

const TRANSPORT = fileURLToPath(new URL('../../src/transport.ts', import.meta.url));
/** The admin token of the shops' collectors. */
export const ADMIN = 'admin-secret';

export class UnknownDrinkError extends Error {
  override name = 'UnknownDrinkError';
}

export interface Shop {
  collector: TestCollector;
  exchange: string;
  queue: string;
  dlq: string;
  /** The barista knows these drinks; anything else is nacked without requeue (dead-lettered). */
  menu: Set<string>;
  /** Successful handlings per order id. */
  served: Map<string, number>;
  /** Order ids handled, failing or not, in order. */
  handled: string[];
  order(orderId: string, drink: string): Promise<void>;
  /** Cancel the barista's consumer: orders stay in the queue. */
  stopBarista(): Promise<void>;
  setup: Channel;
}

export interface ShopOptions {
  /** Arguments of the orders queue (`x-max-length`, …). */
  queueArgs?: Record<string, unknown>;
  /** Collector options over the shop's (amqpUrl, adminToken ADMIN, deadLetterQueues, a fast replay rate). */
  collector?: Parameters<typeof startTestCollector>[0];
}

export interface Shops {
  conn: ChannelModel;
  open(options?: ShopOptions): Promise<Shop>;
  /** A collector the set stops at the end. */
  track(collector: TestCollector): TestCollector;
  close(): Promise<void>;
}

export async function openShops(): Promise<Shops> {
  const conn = await connectBroker();
  const transports: ReturnType<typeof pino.transport>[] = [];
  const collectors: TestCollector[] = [];
  const declared: { queues: string[]; exchanges: string[] } = { queues: [], exchanges: [] };
  const serviceLogger = (url: string) => {
    const transport = pino.transport({ target: TRANSPORT, options: { url, flushIntervalMs: 25 } });
    transports.push(transport);
    return pino({ level: 'info' }, transport);
  };

  async function open(options: ShopOptions = {}): Promise<Shop> {
    const exchange = uniqueName('replay.coffee');
    const queue = uniqueName('replay.orders');
    const dlx = uniqueName('replay.dlx');
    const dlq = uniqueName('replay.dead-letters');
    const collector = await startTestCollector({
      amqpUrl: AMQP_URL,
      adminToken: ADMIN,
      deadLetterQueues: { [queue]: dlq },
      replayRatePerSec: 500,
      ...options.collector,
    });
    collectors.push(collector);
    const setup = await conn.createChannel();
    declared.queues.push(queue, dlq);
    declared.exchanges.push(exchange, dlx);
    await setup.assertExchange(exchange, 'direct', { autoDelete: false });
    await setup.assertExchange(dlx, 'fanout', { autoDelete: false });
    await setup.assertQueue(queue, { deadLetterExchange: dlx, arguments: options.queueArgs });
    await setup.assertQueue(dlq, {});
    await setup.bindQueue(queue, exchange, 'order.placed');
    await setup.bindQueue(dlq, dlx, '');
    const menu = new Set(['flat white', 'cortado']);
    const served = new Map<string, number>();
    const handled: string[] = [];
    const barista = instrument(await conn.createChannel(), { serviceName: 'barista', logger: serviceLogger(collector.url) });
    barista.on('handler-error', () => {});
    const { consumerTag } = await barista.consume(queue, (msg: ConsumeMessage | null) => {
      const order = JSON.parse(msg!.content.toString()) as { orderId: string; drink: string };
      handled.push(order.orderId);
      if (!menu.has(order.drink)) {
        barista.nack(msg!, false, false);
        throw new UnknownDrinkError(`"${order.drink}" is not on the menu (order ${order.orderId})`);
      }
      served.set(order.orderId, (served.get(order.orderId) ?? 0) + 1);
      barista.ack(msg!);
    });
    const customer = instrument(await conn.createConfirmChannel(), { serviceName: 'customer', logger: serviceLogger(collector.url) });
    return {
      collector,
      exchange,
      queue,
      dlq,
      menu,
      served,
      handled,
      setup,
      async stopBarista() {
        await barista.cancel(consumerTag);
      },
      async order(orderId, drink) {
        customer.publish(exchange, 'order.placed', Buffer.from(JSON.stringify({ orderId, drink })), {
          messageId: orderId,
          contentType: 'application/json',
          type: 'OrderPlaced',
          persistent: true,
          headers: { 'x-shop': 'main' },
        });
        await customer.waitForConfirms();
      },
    };
  }

  return {
    conn,
    open,
    track(collector) {
      collectors.push(collector);
      return collector;
    },
    async close() {
      const ch = await conn.createChannel();
      for (const q of declared.queues) await ch.deleteQueue(q);
      for (const x of declared.exchanges) await ch.deleteExchange(x);
      await ch.close();
      await conn.close();
      for (const t of transports) {
        const closed = once(t, 'close');
        t.end();
        await closed;
      }
      for (const c of collectors) await c.stop();
    },
  };
}

/** The shop's one failure group, once it counts `count` problem deliveries. */
export async function groupOf(s: Shop, count: number): Promise<FailureGroup> {
  return waitFor(
    async () => {
      const list = (await getJson(s.collector.url, '/api/failures')).body as FailureGroupList;
      return list.items.length === 1 && list.items[0].count === count ? list.items[0] : undefined;
    },
    `one failure group counting ${count}`,
    30_000,
  );
}

/** Messages in a queue now. */
export const depth = async (s: Shop, queue: string): Promise<number> => (await s.setup.checkQueue(queue)).messageCount;
