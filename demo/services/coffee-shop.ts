/**
 * A coffee shop as a work queue. Customers place orders on a durable queue
 * as persistent messages; two baristas share that queue with prefetch 1 (each
 * makes one coffee at a time, so the faster one takes more orders) and ack
 * only after the coffee is made. A finished coffee is announced as
 * `coffee.order.ready`, which the customer app and the loyalty program both
 * hear.
 *
 * An order for a double ristretto jams the grinder the first time: the
 * barista nacks it with requeue and the retry succeeds (ok, redelivered).
 *
 * Two things go wrong here on purpose (flow 3):
 * - an order for a drink that is not on the menu makes the barista's handler
 *   throw; the order is nacked without requeue and dead-lettered into a queue
 *   nobody consumes, where it waits until the menu learns the drink
 *   ({@link learnDrink}) and someone replays it from hoptrace's UI;
 * - the loyalty program has a bug: a guest without a loyalty card makes its
 *   handler throw; it acked the event before doing the work, so the event is
 *   simply gone (`failed`).
 */
import type { ConsumeMessage } from 'amqplib';
import { between, json, parse, rethrow, sleep, type ServiceContext } from '../runtime.ts';
import { RoutingKeys } from '../topology.ts';

export interface CoffeeOrder {
  orderId: string;
  customer: string;
  drink: string;
  /** Loyalty card number; guests have none. */
  loyaltyCard?: string;
}

export const MENU = ['flat white', 'cortado', 'oat latte', 'espresso', 'cappuccino', 'filter'] as const;
/** Ordered on purpose now and then: no barista knows how to make it. */
export const OFF_MENU_DRINK = 'unicorn frappuccino';
/** On the menu, but the first attempt always finds the grinder jammed. */
export const JAMMING_DRINK = 'double ristretto';

/** Drinks the baristas learned while the demo runs (the "fix" that makes a replay succeed). */
const learned = new Set<string>();

/** The menu learns a drink: orders for it (replayed ones too) are made from now on. */
export function learnDrink(drink: string): void {
  learned.add(drink);
}

const onMenu = (drink: string): boolean => (MENU as readonly string[]).includes(drink) || learned.has(drink);

export class UnknownDrinkError extends Error {
  override name = 'UnknownDrinkError';
}

/** A passing problem: trying again later will work. */
export class GrinderJammedError extends Error {
  override name = 'GrinderJammedError';
}

export interface CustomerService {
  /** Place an order (sendToQueue on the orders work queue). */
  order(order: CoffeeOrder, messageId: string): Promise<void>;
  /** Announce a cancellation nobody subscribed to, with `mandatory`: the broker returns it. */
  cancel(orderId: string, messageId: string): Promise<void>;
  /** Ask for a refund on a queue nobody consumes: the message is never received. */
  requestRefund(orderId: string, amountCents: number, messageId: string): Promise<void>;
  /** Send a receipt to the printer, which never acks it. */
  printReceipt(orderId: string, messageId: string): Promise<void>;
}

/** The customer app: places orders and is told when they are ready. */
export async function startCustomerService(ctx: ServiceContext): Promise<CustomerService> {
  const conn = await ctx.connect('customer');
  const ch = await conn.createConfirmChannel();
  await ch.prefetch(10);
  await ch.consume(ctx.names.readyQueue, (msg) => {
    if (!msg) return;
    const order = parse<CoffeeOrder>(msg.content);
    ch.ack(msg);
    ctx.tracker.signal(`ready:${order.orderId}`);
  });
  const send = async (queue: string, body: unknown, type: string, messageId: string): Promise<void> => {
    ch.sendToQueue(queue, json(body), { messageId, persistent: true, contentType: 'application/json', type });
    await ch.waitForConfirms();
  };
  return {
    order: (order, messageId) => send(ctx.names.ordersQueue, order, 'coffee.order.placed', messageId),
    async cancel(orderId, messageId) {
      ch.publish(ctx.names.coffeeExchange, RoutingKeys.ORDER_CANCELLED, json({ orderId }), {
        messageId,
        mandatory: true,
        persistent: true,
        contentType: 'application/json',
        type: RoutingKeys.ORDER_CANCELLED,
      });
      // The broker sends basic.return before it confirms the publish.
      await ch.waitForConfirms();
    },
    requestRefund: (orderId, amountCents, messageId) =>
      send(ctx.names.refundsQueue, { orderId, amountCents }, 'coffee.refund.requested', messageId),
    printReceipt: (orderId, messageId) =>
      send(ctx.names.receiptsQueue, { orderId }, 'coffee.receipt.requested', messageId),
  };
}

/** One barista: a consumer of the orders queue with prefetch 1. */
export async function startBarista(ctx: ServiceContext, name: string): Promise<void> {
  const conn = await ctx.connect('barista');
  const ch = await conn.createConfirmChannel();
  await ch.prefetch(1);
  await ch.consume(
    ctx.names.ordersQueue,
    async (msg) => {
      if (!msg) return;
      const order = parse<CoffeeOrder>(msg.content);
      try {
        await makeCoffee(order, msg.fields.redelivered);
      } catch (err) {
        // A passing problem is requeued and tried again (the broker
        // redelivers it, perhaps to the other barista). Anything else would
        // fail the same way again: without requeue the broker moves it to
        // the orders queue's dead-letter exchange.
        ch.nack(msg, false, err instanceof GrinderJammedError);
        if (err instanceof UnknownDrinkError) ctx.tracker.signal(`handled:${order.orderId}`);
        rethrow(err); // hoptrace records the handler error on the `process` hop
      }
      ch.publish(ctx.names.coffeeExchange, RoutingKeys.ORDER_READY, json({ ...order, barista: name }), {
        persistent: true,
        contentType: 'application/json',
        type: RoutingKeys.ORDER_READY,
      });
      await ch.waitForConfirms();
      ch.ack(msg); // only now is the work done
      ctx.tracker.signal(`handled:${order.orderId}`);
    },
    { consumerTag: `${ctx.names.prefix}.barista.${name}.${process.pid}` },
  );
}

async function makeCoffee(order: CoffeeOrder, redelivered: boolean): Promise<void> {
  if (order.drink === JAMMING_DRINK && !redelivered) {
    await sleep(between(20, 60));
    throw new GrinderJammedError(`the grinder jammed on order ${order.orderId}; requeueing it`);
  }
  if (order.drink !== JAMMING_DRINK && !onMenu(order.drink)) {
    await sleep(between(10, 40)); // reading the order twice
    throw new UnknownDrinkError(`"${order.drink}" is not on the menu (order ${order.orderId})`);
  }
  await sleep(between(80, 400));
}

/** The loyalty program: one stamp per coffee, for customers with a card. */
export async function startLoyaltyService(ctx: ServiceContext): Promise<void> {
  const conn = await ctx.connect('loyalty');
  const ch = await conn.createChannel();
  await ch.prefetch(10);
  const cards = new Map<string, { stamps: number }>();
  await ch.consume(ctx.names.loyaltyQueue, async (msg: ConsumeMessage | null) => {
    if (!msg) return;
    const order = parse<CoffeeOrder>(msg.content);
    // At-most-once on purpose ("a missed stamp is cheaper than a double
    // one"): ack first, then work. When the work throws, the event is gone.
    ch.ack(msg);
    try {
      await addStamp(cards, order);
    } catch (err) {
      rethrow(err);
    } finally {
      ctx.tracker.signal(`loyalty:${order.orderId}`);
    }
  });
}

async function addStamp(cards: Map<string, { stamps: number }>, order: CoffeeOrder): Promise<void> {
  await sleep(between(5, 25));
  if (order.loyaltyCard && !cards.has(order.loyaltyCard)) cards.set(order.loyaltyCard, { stamps: 0 });
  // The deliberate bug: guests have no loyalty card, so `card` is undefined.
  const card = cards.get(order.loyaltyCard as string) as { stamps: number };
  card.stamps += 1;
}
