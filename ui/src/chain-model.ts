/**
 * What the chain view needs, computed once per chain response: messages (from
 * the collector, or rebuilt from the hops when it sent none), the flattened
 * causal tree, and lookups from hop to message.
 */
import type {
  ChainDetail,
  ChainHop,
  ChainMessage,
  MessageDelivery,
  MessageStatus,
  OpenWait,
  ServiceSkew,
} from '../../collector/api-types.ts';

export interface TreeRow {
  messageId: string;
  depth: number;
  /** Seq of the message's first hop, for "select this message". */
  firstSeq: number | undefined;
}

export interface ChainModel {
  detail: ChainDetail;
  hops: ChainHop[];
  /** Hop store id → index in `hops` (= seq when the collector numbered them densely). */
  indexById: Map<number, number>;
  /** Hop `seq` → index in `hops`. */
  indexBySeq: Map<number, number>;
  messages: Map<string, ChainMessage>;
  treeRows: TreeRow[];
  /** messageId → index in `treeRows`. */
  treeIndex: Map<string, number>;
  skewByService: Map<string, ServiceSkew>;
  /** Index (in `hops`) the view opens on: the first failure, else the first hop. */
  initialIndex: number;
  /** Hop id → the delivery it belongs to (receive, process, settle hops). */
  deliveryOfHop: Map<number, { message: ChainMessage; delivery: MessageDelivery; index: number }>;
  /** What the chain still waits for, by the hop it waits since. */
  openByHopId: Map<number, OpenWait>;
  /** Deliveries received and not settled: `messageId \0 service \0 queue`. */
  unsettled: Set<string>;
  /**
   * Time from the chain's first hop to "now" as the collector judged it (on
   * the chain's adjusted clock), when something is still open; the view adds
   * the time since the chain was loaded.
   */
  openUntilMs: number | undefined;
}

export const deliveryKey = (messageId: string, service: string, queue: string | undefined) => `${messageId}\u0000${service}\u0000${queue ?? ''}`;

export function buildChainModel(detail: ChainDetail): ChainModel {
  // Trust the collector's causal order but never assume it arrived sorted.
  const hops = [...detail.hops].sort((a, b) => a.seq - b.seq);
  const indexById = new Map<number, number>();
  const indexBySeq = new Map<number, number>();
  hops.forEach((hop, index) => {
    indexById.set(hop.id, index);
    indexBySeq.set(hop.seq, index);
  });

  const messages = new Map<string, ChainMessage>();
  for (const message of detail.messages ?? []) messages.set(message.messageId, message);
  // Hops whose message the collector did not describe (an older engine, or
  // none at all) still get a tree node, rebuilt from the hops themselves.
  const derived = deriveMessages(hops, messages);
  for (const message of derived) messages.set(message.messageId, message);

  const firstSeqOf = new Map<string, number>();
  for (const hop of hops) if (!firstSeqOf.has(hop.messageId)) firstSeqOf.set(hop.messageId, hop.seq);

  const treeRows = flattenTree(messages, firstSeqOf, detail.rootMessageIds ?? []);
  const treeIndex = new Map<string, number>();
  treeRows.forEach((row, index) => treeIndex.set(row.messageId, index));

  const skewByService = new Map<string, ServiceSkew>();
  for (const skew of detail.skew ?? []) skewByService.set(skew.service, skew);

  let initialIndex = 0;
  if (detail.firstFailure) initialIndex = indexById.get(detail.firstFailure.hopId) ?? 0;

  const deliveryOfHop: ChainModel['deliveryOfHop'] = new Map();
  for (const message of messages.values()) {
    message.deliveries.forEach((delivery, index) => {
      for (const id of delivery.hopIds ?? []) deliveryOfHop.set(id, { message, delivery, index });
    });
  }

  const open = detail.open ?? [];
  const openByHopId = new Map(open.map((o) => [o.hopId, o]));
  const unsettled = new Set<string>();
  let openUntilMs: number | undefined;
  const start = hops.length ? Math.min(...hops.map((h) => h.adjustedTs)) : 0;
  for (const o of open) {
    const hop = hops[indexById.get(o.hopId) ?? -1];
    if (!hop) continue;
    if (o.kind === 'unsettled') unsettled.add(deliveryKey(o.messageId, hop.service, o.queue ?? hop.queue));
    const until = hop.adjustedTs - start + o.waitedMs;
    if (openUntilMs === undefined || until > openUntilMs) openUntilMs = until;
  }

  return { detail, hops, indexById, indexBySeq, messages, treeRows, treeIndex, skewByService, initialIndex, deliveryOfHop, openByHopId, unsettled, openUntilMs };
}

/**
 * The first hop (in causal order) of what a search named: a message id, a
 * span id, a W3C traceparent (`00-trace-span-01`: its span) or a trace id;
 * exact, else as a prefix (the list search matches prefixes too).
 */
export function focusIndex(model: ChainModel, focus: string): number | undefined {
  const term = focus.trim();
  if (!term) return undefined;
  const traceparent = /^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$/i.exec(term);
  const tests: Array<(hop: ChainHop) => boolean> = traceparent
    ? [(h) => h.spanId === traceparent[2], (h) => h.traceId === traceparent[1]]
    : [
        (h) => h.messageId === term,
        (h) => h.spanId === term,
        (h) => h.traceId === term,
        (h) => h.messageId.startsWith(term),
        (h) => Boolean(h.spanId?.startsWith(term)),
        (h) => Boolean(h.traceId?.startsWith(term)),
      ];
  for (const test of tests) {
    const index = model.hops.findIndex(test);
    if (index !== -1) return index;
  }
  return undefined;
}

function deriveMessages(hops: ChainHop[], known: Map<string, ChainMessage>): ChainMessage[] {
  const byMessage = new Map<string, ChainHop[]>();
  for (const hop of hops) {
    if (known.has(hop.messageId)) continue;
    let list = byMessage.get(hop.messageId);
    if (!list) byMessage.set(hop.messageId, (list = []));
    list.push(hop);
  }
  const result: ChainMessage[] = [];
  for (const [messageId, list] of byMessage) {
    const send = list.find((h) => h.kind === 'send');
    const parent = list.find((h) => h.causationId)?.causationId;
    const processes = list.filter((h) => h.kind === 'process');
    const receives = list.filter((h) => h.kind === 'receive');
    let status: MessageStatus = 'ok';
    if (list.some((h) => (h.deathCount ?? 0) > 0)) status = 'dead-lettered';
    else if (processes.some((h) => h.outcome === 'error')) status = 'failed';
    else if (list.some((h) => h.kind === 'return')) status = 'unroutable';
    else if (receives.length > list.filter((h) => h.kind === 'settle').length) status = 'in-flight';
    result.push({
      messageId,
      parentMessageId: parent,
      childMessageIds: [],
      publisher: send
        ? { service: send.service, instance: send.instance, exchange: send.exchange ?? '', routingKey: send.routingKey ?? '', ts: send.ts }
        : undefined,
      messageType: list.find((h) => h.messageType)?.messageType,
      deliveries: deriveDeliveries(list),
      status,
      redeliveryCount: receives.filter((h) => h.redelivered).length,
      deadLetters: [],
      hopIds: list.map((h) => h.id),
    });
  }
  return result;
}

function deriveDeliveries(list: ChainHop[]): ChainMessage['deliveries'] {
  const byConsumer = new Map<string, ChainMessage['deliveries'][number]>();
  for (const hop of list) {
    if (hop.kind !== 'receive' && hop.kind !== 'process' && hop.kind !== 'settle') continue;
    const key = `${hop.service}\u0000${hop.queue ?? ''}`;
    let delivery = byConsumer.get(key);
    if (!delivery) {
      delivery = { service: hop.service, queue: hop.queue ?? '', errors: 0, redeliveries: 0, hopIds: [] };
      byConsumer.set(key, delivery);
    }
    delivery.hopIds.push(hop.id);
    if (hop.kind === 'receive' && hop.redelivered) delivery.redeliveries++;
    if (hop.kind === 'process' && hop.outcome === 'error') delivery.errors++;
  }
  return [...byConsumer.values()];
}

/**
 * Depth-first, children in the order they first appear in the chain. Written
 * as a loop: a 1,000-message-deep chain must not overflow the stack.
 */
function flattenTree(
  messages: Map<string, ChainMessage>,
  firstSeqOf: Map<string, number>,
  rootHint: readonly string[],
): TreeRow[] {
  const order = (id: string) => firstSeqOf.get(id) ?? Number.MAX_SAFE_INTEGER;
  const children = new Map<string, string[]>();
  const roots: string[] = [];
  for (const message of messages.values()) {
    const parent = message.parentMessageId;
    if (parent && parent !== message.messageId && messages.has(parent)) {
      let list = children.get(parent);
      if (!list) children.set(parent, (list = []));
      list.push(message.messageId);
    } else {
      roots.push(message.messageId);
    }
  }
  for (const id of rootHint) if (messages.has(id) && !roots.includes(id)) roots.push(id);
  roots.sort((a, b) => order(a) - order(b));
  for (const list of children.values()) list.sort((a, b) => order(a) - order(b));

  const rows: TreeRow[] = [];
  const seen = new Set<string>();
  const visit = (rootId: string) => {
    const stack: Array<{ id: string; depth: number }> = [{ id: rootId, depth: 0 }];
    while (stack.length) {
      const { id, depth } = stack.pop()!;
      if (seen.has(id)) continue;
      seen.add(id);
      rows.push({ messageId: id, depth, firstSeq: firstSeqOf.get(id) });
      const kids = children.get(id) ?? [];
      for (let i = kids.length - 1; i >= 0; i--) stack.push({ id: kids[i], depth: depth + 1 });
    }
  };
  for (const root of roots) visit(root);
  // A parent cycle (corrupt causation ids) leaves messages unvisited: show them as roots.
  for (const id of [...messages.keys()].sort((a, b) => order(a) - order(b))) visit(id);
  return rows;
}

/** Status of the message a hop belongs to. */
export function hopMessageStatus(model: ChainModel, hop: ChainHop): MessageStatus | undefined {
  return model.messages.get(hop.messageId)?.status;
}
