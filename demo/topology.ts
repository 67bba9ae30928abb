/**
 * The demo's exchanges and queues, all named under one prefix (`demo` by
 * default) so a test can run its own isolated copy and delete it afterwards.
 * Declarations are idempotent: running the demo again reuses what exists.
 */
import type { Channel } from 'amqplib';

/** Every exchange and queue name the demo uses, derived from one prefix. */
export interface DemoNames {
  prefix: string;
  /** Topic exchange for domain events (flow 1). */
  eventsExchange: string;
  /** family-account's queue: `member.auth.reset`. */
  familyAccountQueue: string;
  /** notification's queue: `family.member.withdrawn`. */
  notificationQueue: string;
  /** audit's queue: `family.member.withdrawn`. */
  auditQueue: string;

  /** Work queue of coffee orders (flow 2), dead-lettering into {@link coffeeDlx}. */
  ordersQueue: string;
  /** Topic exchange for coffee-shop events (`coffee.order.ready`, ...). */
  coffeeExchange: string;
  /** The counter's queue: `coffee.order.ready`. */
  readyQueue: string;
  /** loyalty's queue: `coffee.order.ready`. */
  loyaltyQueue: string;
  /** Fanout dead-letter exchange of the orders queue. */
  coffeeDlx: string;
  /** Where rejected orders end up and wait (nobody consumes it) until they are replayed. */
  deadLetterQueue: string;

  /** Refund requests: a queue nobody consumes (lost). */
  refundsQueue: string;
  /** Receipts: consumed by a printer that never acks (stuck). */
  receiptsQueue: string;
  /** Stock updates: the inventory service loops on a poison message (redelivery loop). */
  inventoryQueue: string;
}

/** Names under `prefix`: `${prefix}.events`, `${prefix}.coffee.orders`, ... */
export function demoNames(prefix: string): DemoNames {
  const n = (s: string): string => `${prefix}.${s}`;
  return {
    prefix,
    eventsExchange: n('events'),
    familyAccountQueue: n('family-account.member-auth-reset'),
    notificationQueue: n('notification.family-member-withdrawn'),
    auditQueue: n('audit.family-member-withdrawn'),
    ordersQueue: n('coffee.orders'),
    coffeeExchange: n('coffee'),
    readyQueue: n('coffee.counter.order-ready'),
    loyaltyQueue: n('coffee.loyalty.order-ready'),
    coffeeDlx: n('coffee.dlx'),
    deadLetterQueue: n('coffee.dead-letters'),
    refundsQueue: n('coffee.refunds'),
    receiptsQueue: n('coffee.receipts'),
    inventoryQueue: n('coffee.inventory'),
  };
}

/** Routing keys: the facts the services announce. */
export const RoutingKeys = {
  MEMBER_AUTH_RESET: 'member.auth.reset',
  FAMILY_MEMBER_WITHDRAWN: 'family.member.withdrawn',
  ORDER_READY: 'coffee.order.ready',
  /** Announced with `mandatory`, but nobody ever bound a queue to it. */
  ORDER_CANCELLED: 'coffee.order.cancelled',
} as const;

function queueNames(names: DemoNames): string[] {
  return [
    names.familyAccountQueue,
    names.notificationQueue,
    names.auditQueue,
    names.ordersQueue,
    names.readyQueue,
    names.loyaltyQueue,
    names.deadLetterQueue,
    names.refundsQueue,
    names.receiptsQueue,
    names.inventoryQueue,
  ];
}

/**
 * Declare everything (idempotent), then purge the queues whose leftovers
 * would spoil a rerun: the unconsumed refunds, the receipts a previous run's
 * printer never acked, the poison stock updates, and old dead letters.
 */
export async function declareTopology(ch: Channel, names: DemoNames): Promise<void> {
  await ch.assertExchange(names.eventsExchange, 'topic', { durable: true });
  await ch.assertExchange(names.coffeeExchange, 'topic', { durable: true });
  await ch.assertExchange(names.coffeeDlx, 'fanout', { durable: true });

  await ch.assertQueue(names.familyAccountQueue, { durable: true });
  await ch.bindQueue(names.familyAccountQueue, names.eventsExchange, RoutingKeys.MEMBER_AUTH_RESET);
  await ch.assertQueue(names.notificationQueue, { durable: true });
  await ch.bindQueue(names.notificationQueue, names.eventsExchange, RoutingKeys.FAMILY_MEMBER_WITHDRAWN);
  await ch.assertQueue(names.auditQueue, { durable: true });
  await ch.bindQueue(names.auditQueue, names.eventsExchange, 'family.member.*');

  await ch.assertQueue(names.ordersQueue, { durable: true, deadLetterExchange: names.coffeeDlx });
  await ch.assertQueue(names.deadLetterQueue, { durable: true });
  await ch.bindQueue(names.deadLetterQueue, names.coffeeDlx, '');
  await ch.assertQueue(names.readyQueue, { durable: true });
  await ch.bindQueue(names.readyQueue, names.coffeeExchange, RoutingKeys.ORDER_READY);
  await ch.assertQueue(names.loyaltyQueue, { durable: true });
  await ch.bindQueue(names.loyaltyQueue, names.coffeeExchange, RoutingKeys.ORDER_READY);

  await ch.assertQueue(names.refundsQueue, { durable: true });
  await ch.assertQueue(names.receiptsQueue, { durable: true });
  await ch.assertQueue(names.inventoryQueue, { durable: true });

  // A previous run's leftovers would show up as this run's hops (or never
  // settle); start every queue empty.
  for (const queue of queueNames(names)) await ch.purgeQueue(queue);
}

/** Delete every queue and exchange under the prefix (tests clean up with this). */
export async function deleteTopology(ch: Channel, names: DemoNames): Promise<void> {
  for (const queue of queueNames(names)) await ch.deleteQueue(queue);
  for (const exchange of [names.eventsExchange, names.coffeeExchange, names.coffeeDlx]) {
    await ch.deleteExchange(exchange);
  }
}
