/**
 * The flows the demo runs, each a business story that ends in one known
 * chain status. A flow resolves once its far end was reached (or, for the
 * failure cases, once the broker settled the publish), and reports the id of
 * the message that started it: hoptrace makes that the chain's correlation id.
 */
import { randomUUID } from 'node:crypto';
import type { MessageStatus } from '../collector/api-types.ts';
import { FLOW_TIMEOUT_MS, between, type Tracker } from './runtime.ts';
import { JAMMING_DRINK, MENU, OFF_MENU_DRINK, type CustomerService } from './services/coffee-shop.ts';
import type { MemberService } from './services/member.ts';
import { UNSTOCKED_SKU, type SupplierService } from './services/trouble.ts';

export const FLOW_NAMES = [
  'loose-coupling',
  'coffee-order',
  'retried-order',
  'off-menu-order',
  'guest-order',
  'cancel-unrouted',
  'refund-unconsumed',
  'receipt-unacked',
  'poison-delivery',
  'unstocked-delivery',
] as const;

export type FlowName = (typeof FLOW_NAMES)[number];

/** The status each flow's chain ends in, and what the flow shows. */
export const FLOW_CATALOGUE: Record<FlowName, { expect: MessageStatus; story: string }> = {
  'loose-coupling': {
    expect: 'ok',
    story: 'member.auth.reset → family-account → family.member.withdrawn → notification + audit',
  },
  'coffee-order': { expect: 'ok', story: 'customer → orders queue → a barista → coffee.order.ready → customer + loyalty' },
  'retried-order': { expect: 'ok', story: 'the grinder jams on the first attempt; the barista requeues, the retry succeeds' },
  'off-menu-order': {
    expect: 'dead-lettered',
    story: 'a barista throws on an off-menu drink, nacks; the order is dead-lettered and waits in the dead-letter queue for a replay',
  },
  'guest-order': { expect: 'failed', story: "loyalty acks first, then its handler throws for a guest without a card" },
  'cancel-unrouted': { expect: 'unroutable', story: 'coffee.order.cancelled published mandatory; no queue is bound, the broker returns it' },
  'refund-unconsumed': { expect: 'lost', story: 'a refund request sits in a queue nobody consumes' },
  'receipt-unacked': { expect: 'stuck', story: 'the receipt printer receives a receipt and never acks it' },
  'poison-delivery': {
    expect: 'redelivery-loop',
    story: 'inventory nacks an unparseable delivery note with requeue, again and again, then acks it away',
  },
  'unstocked-delivery': {
    expect: 'discarded',
    story: 'inventory rejects a note for a product it does not stock, without requeue; no dead-letter exchange, so RabbitMQ drops it',
  },
};

export interface FlowServices {
  member: MemberService;
  customer: CustomerService;
  supplier: SupplierService;
  tracker: Tracker;
}

const CUSTOMERS = ['Ada', 'Grace', 'Linus', 'Margaret', 'Barbara', 'Ken'];
const FAMILIES = ['fam-lovelace', 'fam-hopper', 'fam-hamilton'];

let seq = 0;
const pick = <T>(items: readonly T[]): T => items[between(0, items.length - 1)];
const nextId = (kind: string): string => `${kind}-${++seq}-${randomUUID().slice(0, 6)}`;

/**
 * Resolves when every key is signalled. Made before the publish, so a fast
 * consumer cannot signal first; if the publish then throws, nobody awaits
 * it, and its timeout must not surface as an unhandled rejection.
 */
function arrival(s: FlowServices, ...keys: string[]): Promise<unknown> {
  const all = Promise.all(keys.map((key) => s.tracker.wait(key, FLOW_TIMEOUT_MS)));
  all.catch(() => {});
  return all;
}

/**
 * Run one flow. `onStart` hears the id of the flow's first message before it
 * is published: hoptrace makes that id the chain's correlation id.
 */
export async function runFlow(name: FlowName, s: FlowServices, onStart: (rootId: string) => void): Promise<void> {
  const rootId = randomUUID();
  onStart(rootId);
  switch (name) {
    case 'loose-coupling': {
      const memberId = nextId('member');
      const arrived = arrival(s, `notified:${memberId}`, `audited:${memberId}`);
      await s.member.resetAuth(
        { memberId, familyId: pick(FAMILIES), reason: pick(['password-compromised', 'account-recovery'] as const) },
        rootId,
      );
      await arrived;
      break;
    }
    case 'coffee-order': {
      const customer = pick(CUSTOMERS);
      const orderId = nextId('order');
      const arrived = arrival(s, `ready:${orderId}`, `loyalty:${orderId}`);
      await s.customer.order({ orderId, customer, drink: pick(MENU), loyaltyCard: `card-${customer.toLowerCase()}` }, rootId);
      await arrived;
      break;
    }
    case 'retried-order': {
      const customer = pick(CUSTOMERS);
      const orderId = nextId('order');
      const arrived = arrival(s, `ready:${orderId}`, `loyalty:${orderId}`);
      await s.customer.order({ orderId, customer, drink: JAMMING_DRINK, loyaltyCard: `card-${customer.toLowerCase()}` }, rootId);
      await arrived;
      break;
    }
    case 'off-menu-order': {
      const orderId = nextId('order');
      // The barista nacks it into the dead-letter queue, where it waits (nobody consumes it) for a replay.
      const arrived = arrival(s, `handled:${orderId}`);
      await s.customer.order({ orderId, customer: pick(CUSTOMERS), drink: OFF_MENU_DRINK, loyaltyCard: 'card-x' }, rootId);
      await arrived;
      break;
    }
    case 'guest-order': {
      const orderId = nextId('order');
      const arrived = arrival(s, `ready:${orderId}`, `loyalty:${orderId}`);
      await s.customer.order({ orderId, customer: 'a guest', drink: pick(MENU) }, rootId);
      await arrived;
      break;
    }
    case 'cancel-unrouted':
      await s.customer.cancel(nextId('order'), rootId);
      break;
    case 'refund-unconsumed':
      await s.customer.requestRefund(nextId('order'), between(250, 650), rootId);
      break;
    case 'receipt-unacked': {
      const orderId = nextId('order');
      const arrived = arrival(s, `receipt:${orderId}`);
      await s.customer.printReceipt(orderId, rootId);
      await arrived;
      break;
    }
    case 'unstocked-delivery': {
      const noteId = nextId('note');
      const arrived = arrival(s, `inventory:${noteId}`);
      await s.supplier.deliver({ noteId, sku: UNSTOCKED_SKU, quantity: 12 }, rootId);
      await arrived;
      break;
    }
    case 'poison-delivery': {
      const noteId = nextId('note');
      const arrived = arrival(s, `inventory:${noteId}`);
      await s.supplier.deliver({ noteId, sku: 'oat-milk-1l', quantity: 'lots' }, rootId);
      await arrived;
      break;
    }
  }
}
