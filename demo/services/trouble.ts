/**
 * Flow 3, what goes wrong, in the services around the coffee shop:
 * - the receipt printer takes a receipt and never acks it (stuck);
 * - the inventory service cannot parse a supplier's delivery note and nacks
 *   it with requeue, again and again, until it gives up (redelivery loop);
 * - a delivery note for a product the shop does not stock is rejected
 *   without requeue, and the inventory queue has no dead-letter exchange, so
 *   RabbitMQ drops it (discarded).
 * The unroutable cancellation and the lost refund request need no consumer;
 * the customer service sends them (coffee-shop.ts).
 */
import { json, parse, type ServiceContext } from '../runtime.ts';

/** Attempts the inventory service makes at a delivery note before writing it off. */
export const INVENTORY_MAX_ATTEMPTS = 7;

/** What the shop stocks; a delivery note for anything else has nothing to be booked against. */
export const STOCKED_SKUS = ['oat-milk-1l', 'espresso-beans-1kg', 'paper-cups-12oz'] as const;
/** Sent now and then by a supplier who mixed up two customers. */
export const UNSTOCKED_SKU = 'unicorn-syrup-750ml';

/**
 * The receipt printer: receives a receipt and holds it unacknowledged, as a
 * consumer does when a code path forgets to ack (or waits on a jammed
 * device). No prefetch limit, so every receipt is received and stays
 * unsettled rather than queueing behind the first one.
 */
export async function startReceiptPrinter(ctx: ServiceContext): Promise<void> {
  const conn = await ctx.connect('receipt-printer');
  const ch = await conn.createChannel();
  await ch.consume(ctx.names.receiptsQueue, (msg) => {
    if (!msg) return;
    const { orderId } = parse<{ orderId: string }>(msg.content);
    // Paper jam: the handler returns without ack or nack.
    ctx.tracker.signal(`receipt:${orderId}`);
  });
}

export interface DeliveryNote {
  noteId: string;
  sku: string;
  /** A number, except in the poison note a supplier's new system sends. */
  quantity: number | string;
}

export interface SupplierService {
  deliver(note: DeliveryNote, messageId: string): Promise<void>;
}

/** The supplier sends delivery notes to the inventory service. */
export async function startSupplier(ctx: ServiceContext): Promise<SupplierService> {
  const conn = await ctx.connect('supplier');
  const ch = await conn.createConfirmChannel();
  return {
    async deliver(note, messageId) {
      ch.sendToQueue(ctx.names.inventoryQueue, json(note), {
        messageId,
        persistent: true,
        contentType: 'application/json',
        type: 'inventory.delivery.noted',
      });
      await ch.waitForConfirms();
    },
  };
}

/**
 * The inventory service books deliveries. A note it cannot parse is nacked
 * with requeue ("maybe it works next time"): the broker hands it straight
 * back, round and round, until the service gives up and acks it away.
 */
export async function startInventoryService(ctx: ServiceContext): Promise<void> {
  const conn = await ctx.connect('inventory');
  const ch = await conn.createChannel();
  await ch.prefetch(1);
  const stock = new Map<string, number>();
  // RabbitMQ 3.10 classic queues do not count deliveries; the service does.
  const attempts = new Map<string, number>();
  await ch.consume(ctx.names.inventoryQueue, (msg) => {
    if (!msg) return;
    const note = parse<DeliveryNote>(msg.content);
    if (!(STOCKED_SKUS as readonly string[]).includes(note.sku)) {
      // Retrying cannot help: reject without requeue. The queue has no
      // dead-letter exchange, so the broker drops the note.
      ch.nack(msg, false, false);
      ctx.tracker.signal(`inventory:${note.noteId}`);
      return;
    }
    if (typeof note.quantity === 'number') {
      stock.set(note.sku, (stock.get(note.sku) ?? 0) + note.quantity);
      ch.ack(msg);
      ctx.tracker.signal(`inventory:${note.noteId}`);
      return;
    }
    const attempt = (attempts.get(note.noteId) ?? 0) + 1;
    attempts.set(note.noteId, attempt);
    if (attempt < INVENTORY_MAX_ATTEMPTS) {
      ch.nack(msg, false, true);
      return;
    }
    attempts.delete(note.noteId);
    ch.ack(msg); // give up: write the note off
    ctx.tracker.signal(`inventory:${note.noteId}`);
  });
}
