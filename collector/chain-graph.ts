/**
 * Messages and the causal graph of one chain: hops grouped into messages
 * (by `messageId`), each message's deliveries (by queue and consuming
 * service) and their attempts (one per `receive`), the parent/child links
 * from `causationId`, and the happens-before edges between hops that the
 * ordering and the clock-skew estimate both rest on.
 *
 * Everything here is keyed on hop content, never on store ids or arrival
 * order: the hops are first put in one canonical content order and every
 * later step walks that order, so the same hops always give the same graph.
 */
import type { HopKind } from '../src/contract/hop.ts';
import type { StoredHop } from './api-types.ts';

/** Position of each kind in a message's normal life; the tie-break between hops at the same instant. */
export const KIND_RANK: Readonly<Record<HopKind, number>> = {
  send: 0,
  confirm: 1,
  return: 2,
  receive: 3,
  process: 4,
  settle: 5,
  // A successful replay is its message's publish; a failed one comes after the dead letter it tried to move.
  replay: 0,
};

function cmpStr(a: string | undefined, b: string | undefined): number {
  if (a === b) return 0;
  if (a === undefined) return -1;
  if (b === undefined) return 1;
  return a < b ? -1 : 1;
}

function cmpNum(a: number | undefined, b: number | undefined): number {
  if (a === b) return 0;
  if (a === undefined) return -1;
  if (b === undefined) return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The canonical content order: raw `ts`, then kind, service, message, span
 * and the remaining addressing fields. The store id decides only between
 * hops identical in all of these, where the choice cannot show.
 */
export function compareHopContent(a: StoredHop, b: StoredHop): number {
  return (
    cmpNum(a.ts, b.ts) ||
    (KIND_RANK[a.kind] ?? 9) - (KIND_RANK[b.kind] ?? 9) ||
    cmpStr(a.service, b.service) ||
    cmpStr(a.messageId, b.messageId) ||
    cmpStr(a.spanId, b.spanId) ||
    cmpStr(a.instance, b.instance) ||
    cmpStr(a.queue, b.queue) ||
    cmpStr(a.consumerTag, b.consumerTag) ||
    cmpNum(a.deliveryTag, b.deliveryTag) ||
    cmpStr(a.outcome, b.outcome) ||
    cmpNum(a.id, b.id)
  );
}

/** One handling of one delivery: a `receive` and the `process` and `settle` hops that belong to it. */
export interface Attempt {
  /** Hop index of the `receive`; absent when only `process`/`settle` were recorded (OTLP without a receive span). */
  receive?: number;
  /** Hop indexes of `process` hops, canonical order. */
  processes: number[];
  /** Hop indexes of `settle` hops, canonical order. */
  settles: number[];
}

/** What one consumer (one queue, one service) got of one message. */
export interface DeliveryNode {
  service: string;
  /** `""` when the hops did not say (OTLP spans without a destination). */
  queue: string;
  /** Attempts in order of their first hop. */
  attempts: Attempt[];
  /** Every hop index of this delivery, canonical order. */
  hops: number[];
}

/** One message: a node of the causal graph. */
export interface MessageNode {
  messageId: string;
  /** `send` hop indexes, canonical order; `sends[0]` is the publish everything else hangs off. */
  sends: number[];
  confirms: number[];
  returns: number[];
  /** Replay attempts of this (dead-lettered) message that left it where it was; a successful replay is the publish (`sends`) of a new message. */
  replays: number[];
  /** Ordered by first hop. */
  deliveries: DeliveryNode[];
  /** Every hop index of this message, canonical order. */
  hops: number[];
  /** `causationId`, when a hop carried one that is not the message's own id. */
  parentMessageId?: string;
  /** Message ids this one caused (only those present in the chain), canonical order. */
  childMessageIds: string[];
  /** True when the parent is absent from the chain (or the message had none). */
  root: boolean;
}

/** Why one hop must come before another. */
export type EdgeKind = 'publish' | 'delivery' | 'handling' | 'redelivery' | 'dead-letter' | 'causation' | 'replay';

/** A happens-before edge between two hops (indexes into {@link ChainGraph.hops}). */
export interface CausalEdge {
  from: number;
  to: number;
  kind: EdgeKind;
}

export interface ChainGraph {
  /** The chain's hops in canonical content order; every index in this module points here. */
  hops: StoredHop[];
  /** Messages in canonical order of their first hop. */
  messages: MessageNode[];
  byId: Map<string, MessageNode>;
  /** Hop index → message. */
  messageOf: MessageNode[];
  /** Hop index → delivery, for receive/process/settle hops. */
  deliveryOf: (DeliveryNode | undefined)[];
  edges: CausalEdge[];
}

const isConsumerKind = (k: HopKind): boolean => k === 'receive' || k === 'process' || k === 'settle';

/** Build the graph. Never throws on missing optional fields. */
export function buildGraph(input: readonly StoredHop[]): ChainGraph {
  const hops = [...input].sort(compareHopContent);
  const byId = new Map<string, MessageNode>();
  const messages: MessageNode[] = [];
  const messageOf: MessageNode[] = new Array(hops.length);
  const deliveryOf: (DeliveryNode | undefined)[] = new Array(hops.length);

  for (let i = 0; i < hops.length; i++) {
    const h = hops[i];
    const id = h.messageId ?? '';
    let m = byId.get(id);
    if (m === undefined) {
      m = { messageId: id, sends: [], confirms: [], returns: [], replays: [], deliveries: [], hops: [], childMessageIds: [], root: true };
      byId.set(id, m);
      messages.push(m);
    }
    m.hops.push(i);
    messageOf[i] = m;
    if (h.kind === 'send' || isReplayPublish(h)) m.sends.push(i);
    else if (h.kind === 'confirm') m.confirms.push(i);
    else if (h.kind === 'return') m.returns.push(i);
    else if (h.kind === 'replay') m.replays.push(i);
  }

  for (const m of messages) {
    groupDeliveries(hops, m, deliveryOf);
    m.parentMessageId = causationOf(hops, m);
  }
  for (const m of messages) {
    const parent = m.parentMessageId === undefined ? undefined : byId.get(m.parentMessageId);
    if (parent !== undefined) {
      parent.childMessageIds.push(m.messageId);
      m.root = false;
    }
  }
  promoteCycleRoots(messages, byId);

  const graph: ChainGraph = { hops, messages, byId, messageOf, deliveryOf, edges: [] };
  graph.edges = causalEdges(graph);
  return graph;
}

/** The message's `causationId`: from its publish when there is one, else from any hop. */
function causationOf(hops: readonly StoredHop[], m: MessageNode): string | undefined {
  for (const i of m.sends) {
    const c = hops[i].causationId;
    if (c && c !== m.messageId) return c;
  }
  for (const i of m.hops) {
    const c = hops[i].causationId;
    if (c && c !== m.messageId) return c;
  }
  return undefined;
}

/**
 * Messages caught in a causation cycle (bad ids upstream) would leave no
 * root to start from; the first message of each such cycle becomes one.
 */
function promoteCycleRoots(messages: MessageNode[], byId: Map<string, MessageNode>): void {
  const seen = new Set<MessageNode>();
  const visit = (start: MessageNode): void => {
    const stack = [start];
    seen.add(start);
    while (stack.length > 0) {
      const m = stack.pop()!;
      for (const c of m.childMessageIds) {
        const child = byId.get(c)!;
        if (!seen.has(child)) {
          seen.add(child);
          stack.push(child);
        }
      }
    }
  };
  for (const m of messages) if (m.root) visit(m);
  for (const m of messages) {
    if (!seen.has(m)) {
      m.root = true;
      visit(m);
    }
  }
}

/**
 * Split a message's consumer hops into deliveries (queue + service) and the
 * deliveries into attempts. Hops without a queue join the service's only
 * delivery of the message when there is exactly one.
 */
function groupDeliveries(hops: readonly StoredHop[], m: MessageNode, deliveryOf: (DeliveryNode | undefined)[]): void {
  const byKey = new Map<string, DeliveryNode>();
  const byService = new Map<string, DeliveryNode[]>();
  const queueless: number[] = [];
  const get = (service: string, queue: string): DeliveryNode => {
    const key = `${service}\u0000${queue}`;
    let d = byKey.get(key);
    if (d === undefined) {
      d = { service, queue, attempts: [], hops: [] };
      byKey.set(key, d);
      const list = byService.get(service);
      if (list === undefined) byService.set(service, [d]);
      else list.push(d);
    }
    return d;
  };
  for (const i of m.hops) {
    const h = hops[i];
    if (!isConsumerKind(h.kind)) continue;
    if (h.queue) get(h.service ?? '', h.queue).hops.push(i);
    else queueless.push(i);
  }
  for (const i of queueless) {
    const service = hops[i].service ?? '';
    const candidates = byService.get(service);
    const d = candidates !== undefined && candidates.length === 1 ? candidates[0] : get(service, '');
    d.hops.push(i);
  }
  for (const d of byKey.values()) {
    if (queueless.length > 0) d.hops.sort((a, b) => a - b);
    for (const i of d.hops) deliveryOf[i] = d;
    d.attempts = splitAttempts(hops, d.hops);
  }
  m.deliveries = [...byKey.values()].sort((a, b) => a.hops[0] - b.hops[0]);
}

/** Index of the last element of sorted `receives` with ts ≤ `ts`, or -1. */
function lastAtOrBefore(hops: readonly StoredHop[], receives: readonly number[], ts: number): number {
  let lo = 0;
  let hi = receives.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (hops[receives[mid]].ts <= ts) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}

/**
 * One attempt per `receive`. A `process`/`settle` joins the receive with the
 * same consumer tag and delivery tag when both are known, else the latest
 * receive at or before it on the same instance, else on the service (one
 * service's clock is trusted against itself). Without any receive, each
 * `process` starts an attempt and a `settle` joins the first process that
 * ended at or after it (the handler acks before it returns).
 */
function splitAttempts(hops: readonly StoredHop[], indexes: readonly number[]): Attempt[] {
  const receives = indexes.filter((i) => hops[i].kind === 'receive');
  if (receives.length === 1) {
    // One receive: every process and settle of the delivery is its attempt's (what the matching below picks too).
    const attempt: Attempt = { receive: receives[0], processes: [], settles: [] };
    for (const i of indexes) {
      const kind = hops[i].kind;
      if (kind === 'process') attempt.processes.push(i);
      else if (kind === 'settle') attempt.settles.push(i);
    }
    return [attempt];
  }
  const attempts: Attempt[] = receives.map((receive) => ({ receive, processes: [], settles: [] }));
  const attemptOfReceive = new Map<number, Attempt>();
  receives.forEach((r, k) => attemptOfReceive.set(r, attempts[k]));

  if (receives.length === 0) {
    const processes = indexes.filter((i) => hops[i].kind === 'process');
    const orphanAttempts = processes.map((p) => ({ processes: [p], settles: [] as number[] }));
    for (const i of indexes) {
      if (hops[i].kind !== 'settle') continue;
      const ts = hops[i].ts;
      // An attempt made for an earlier settle has no process to compare with: it takes later settles too.
      let target = orphanAttempts.find((a) => a.processes.length === 0 || hops[a.processes[0]].ts >= ts) ?? orphanAttempts.at(-1);
      if (target === undefined) {
        target = { processes: [], settles: [] };
        orphanAttempts.push(target);
      }
      target.settles.push(i);
    }
    return orphanAttempts;
  }

  const byTag = new Map<string, number[]>();
  const byInstance = new Map<string, number[]>();
  for (const r of receives) {
    const h = hops[r];
    if (h.consumerTag !== undefined && h.deliveryTag !== undefined) {
      const key = `${h.consumerTag}\u0000${h.deliveryTag}`;
      const list = byTag.get(key);
      if (list === undefined) byTag.set(key, [r]);
      else list.push(r);
    }
    const inst = h.instance ?? '';
    const list = byInstance.get(inst);
    if (list === undefined) byInstance.set(inst, [r]);
    else list.push(r);
  }
  const pick = (list: readonly number[] | undefined, ts: number): number | undefined => {
    if (list === undefined || list.length === 0) return undefined;
    const k = lastAtOrBefore(hops, list, ts);
    return k >= 0 ? list[k] : undefined;
  };

  for (const i of indexes) {
    const h = hops[i];
    if (h.kind === 'receive') continue;
    let r: number | undefined;
    if (h.consumerTag !== undefined && h.deliveryTag !== undefined) {
      const tagged = byTag.get(`${h.consumerTag}\u0000${h.deliveryTag}`);
      r = pick(tagged, h.ts) ?? tagged?.[0];
    }
    r ??= pick(byInstance.get(h.instance ?? ''), h.ts) ?? pick(receives, h.ts) ?? receives[0];
    const a = attemptOfReceive.get(r)!;
    if (h.kind === 'process') a.processes.push(i);
    else a.settles.push(i);
  }
  return attempts;
}

/** First hop of an attempt (its receive, else its earliest process/settle). */
export function attemptStart(a: Attempt): number | undefined {
  if (a.receive !== undefined) return a.receive;
  const p = a.processes[0];
  const s = a.settles[0];
  if (p === undefined) return s;
  if (s === undefined) return p;
  return Math.min(p, s);
}

/**
 * True for a replay hop that republished its dead-lettered message as a new
 * one (the hop's message, caused by the dead-lettered one): that message's publish.
 */
export function isReplayPublish(h: StoredHop): boolean {
  return h.kind === 'replay' && h.outcome === 'ack' && typeof h.causationId === 'string' && h.causationId !== '' && h.causationId !== h.messageId;
}

/**
 * The hop a replay of message `m` at `ts` starts from: its dead letter, the
 * latest reject without requeue or receive of a dead-lettered copy at or
 * before `ts` (the latest of them when the clocks disagree), else the
 * message's last hop.
 */
export function deadLetterAnchor(hops: readonly StoredHop[], m: MessageNode, ts: number): number | undefined {
  let before: number | undefined;
  let latest: number | undefined;
  for (const i of m.hops) {
    const h = hops[i];
    const deadLetter = isRejectingSettle(h) || (h.kind === 'receive' && Array.isArray(h.death) && h.death.length > 0);
    if (!deadLetter) continue;
    if (latest === undefined || h.ts >= hops[latest].ts) latest = i;
    if (h.ts <= ts && (before === undefined || h.ts >= hops[before].ts)) before = i;
  }
  if (before !== undefined || latest !== undefined) return before ?? latest;
  let last: number | undefined;
  for (const i of m.hops) if (hops[i].kind !== 'replay' && (last === undefined || hops[i].ts >= hops[last].ts)) last = i;
  return last;
}

/** True for a settle that drops the message from its queue (dead-letters it when the queue has a DLX). */
export function isRejectingSettle(h: StoredHop): boolean {
  return h.kind === 'settle' && (h.outcome === 'nack' || h.outcome === 'reject') && h.requeue === false;
}

/**
 * The happens-before edges:
 * - publish: the first `send` before later sends, confirms and returns;
 * - delivery: the first `send` before the first hop of every attempt;
 * - handling: an attempt's `receive` before its `process` and `settle` hops;
 * - redelivery: an attempt's last settle before the next attempt's receive;
 * - dead-letter: the reject that dead-lettered a message from a queue before
 *   the receive whose `x-death` names that queue (the n-th reject for a
 *   death count of n);
 * - causation: the parent's handling (the receive by the service that
 *   published the child, latest at or before the child's send) before the
 *   child's first hop; the parent's publish when that service's receive was
 *   not recorded; for a replayed message, the parent's dead letter
 *   ({@link deadLetterAnchor}) before the replay;
 * - replay: a message's dead letter before a replay attempt that moved nothing.
 */
function causalEdges(g: ChainGraph): CausalEdge[] {
  const { hops } = g;
  const edges: CausalEdge[] = [];
  const add = (from: number | undefined, to: number | undefined, kind: EdgeKind): void => {
    if (from !== undefined && to !== undefined && from !== to) edges.push({ from, to, kind });
  };

  for (const m of g.messages) {
    const s0 = m.sends[0];
    for (let k = 1; k < m.sends.length; k++) add(s0, m.sends[k], 'publish');
    for (const c of m.confirms) add(s0, c, 'publish');
    for (const r of m.returns) add(s0, r, 'publish');

    const rejectsByQueue = new Map<string, number[]>();
    for (const d of m.deliveries) {
      let previousSettle: number | undefined;
      for (const a of d.attempts) {
        const start = attemptStart(a);
        add(s0, start, 'delivery');
        if (a.receive !== undefined) {
          for (const p of a.processes) add(a.receive, p, 'handling');
          for (const s of a.settles) add(a.receive, s, 'handling');
          add(previousSettle, a.receive, 'redelivery');
        }
        if (a.settles.length > 0) previousSettle = a.settles.at(-1);
        for (const s of a.settles) {
          if (!isRejectingSettle(hops[s])) continue;
          const list = rejectsByQueue.get(d.queue);
          if (list === undefined) rejectsByQueue.set(d.queue, [s]);
          else list.push(s);
        }
      }
    }

    if (rejectsByQueue.size > 0) {
      for (const d of m.deliveries) {
        for (const a of d.attempts) {
          const death = a.receive === undefined ? undefined : hops[a.receive].death;
          if (!Array.isArray(death)) continue;
          for (const entry of death) {
            if (entry?.reason !== 'rejected') continue;
            const rejects = rejectsByQueue.get(entry.queue);
            if (rejects === undefined) continue;
            const n = Math.max(1, Math.min(rejects.length, Math.floor(entry.count ?? 1)));
            add(rejects[n - 1], a.receive, 'dead-letter');
          }
        }
      }
    }
  }

  // A replay that moved nothing still came after the dead letter it tried to move.
  for (const m of g.messages) {
    for (const r of m.replays) add(deadLetterAnchor(hops, m, hops[r].ts), r, 'replay');
  }

  for (const child of g.messages) {
    const parent = child.parentMessageId === undefined ? undefined : g.byId.get(child.parentMessageId);
    if (parent === undefined || parent === child) continue;
    const entries = child.sends.length > 0 ? [child.sends[0]] : child.deliveries.map((d) => attemptStart(d.attempts[0]));
    for (const entry of entries) {
      if (entry === undefined) continue;
      add(parentAnchor(hops, parent, hops[entry]), entry, 'causation');
    }
  }
  return edges;
}

/** The parent hop a child's first hop is placed after; see {@link causalEdges}. */
function parentAnchor(hops: readonly StoredHop[], parent: MessageNode, childEntry: StoredHop): number | undefined {
  // A replayed message branches off the dead letter of the message it replays.
  if (childEntry.kind === 'replay') return deadLetterAnchor(hops, parent, childEntry.ts);
  if (childEntry.kind === 'send') {
    let best: number | undefined;
    let fallback: number | undefined;
    for (const d of parent.deliveries) {
      if (d.service !== childEntry.service) continue;
      for (const a of d.attempts) {
        const start = attemptStart(a);
        if (start === undefined) continue;
        fallback ??= start;
        if (hops[start].ts <= childEntry.ts && (best === undefined || hops[start].ts >= hops[best].ts)) best = start;
      }
    }
    const anchor = best ?? fallback;
    if (anchor !== undefined) return anchor;
  }
  if (parent.sends.length > 0) return parent.sends[0];
  const first = parent.deliveries[0];
  return first === undefined ? parent.hops[0] : attemptStart(first.attempts[0]);
}
