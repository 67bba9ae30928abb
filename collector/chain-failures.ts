/**
 * What a chain contributes to failure groups and what its replays did: each
 * message's problem deliveries with their fingerprints
 * (`failure-fingerprint.ts`), the messages replayed from a dead-letter queue
 * and by which new message, and every replay attempt with its outcome.
 *
 * A problem delivery is a message's worst finding at one place: a consumer's
 * delivery (service and queue) or the publish (publisher, exchange and
 * routing key). A handler error that got the message dead-lettered is one
 * delivery, `dead-lettered` with the handler's error, not two.
 */
import type { HopError } from '../src/contract/hop.ts';
import { ErrorCodes } from './errors.ts';
import type { ChainFailure, FailureTally, MessageStatus, ReplayAttempt, ReplayOutcome, StoredHop } from './api-types.ts';
import { configuredDeadLetterQueue, severity, type DiagnoseOptions, type MessageDiagnosis } from './chain-diagnose.ts';
import { isReplayPublish, type MessageNode } from './chain-graph.ts';
import { deliveryHops, isProcessError, type ChainContext } from './chain-messages.ts';
import { failureFingerprint } from './failure-fingerprint.ts';

/** Error text a failure keeps as it was. */
const MESSAGE_MAX = 300;
/** Minutes of failure buckets, as in the topology's. */
export const FAILURE_BUCKET_MS = 60_000;

export interface BuiltMessage {
  node: MessageNode;
  diagnosis: MessageDiagnosis;
}

/** Dead-lettered message id → the messages replaying it (new ids), in causal order. */
export function replayedMessages(ctx: ChainContext, messages: readonly BuiltMessage[]): Map<string, string[]> {
  const hops = ctx.graph.hops;
  const out = new Map<string, string[]>();
  for (const { node } of messages) {
    const parent = node.parentMessageId;
    if (parent === undefined || !ctx.graph.byId.has(parent)) continue;
    if (!node.sends.some((i) => isReplayPublish(hops[i]))) continue;
    const list = out.get(parent);
    if (list === undefined) out.set(parent, [node.messageId]);
    else list.push(node.messageId);
  }
  return out;
}

interface Place {
  service: string;
  queue?: string;
  exchange?: string;
  routingKey?: string;
}

const PUBLISH_KINDS = new Set(['send', 'confirm', 'return', 'replay']);

/** Where a finding happened: the consumer's delivery, or the publish; a dead letter at the queue it was dead-lettered from. */
/** A field as text: stored hops an older collector let in may hold anything. */
const text = (v: unknown): string => (typeof v === 'string' ? v : v === undefined || v === null ? '' : String(v));

function placeOf(ctx: ChainContext, node: MessageNode, hop: number, status: MessageStatus): Place {
  const h = ctx.graph.hops[hop];
  if (status === 'dead-lettered' && h.kind === 'receive') {
    // The receive of a dead-lettered copy whose reject was not recorded: the queue it came from, by the consumer of that queue.
    const from = text(Array.isArray(h.death) ? h.death[0]?.queue : undefined);
    const consumer = node.deliveries.find((d) => d.queue === from);
    return { service: text(consumer?.service ?? h.service), queue: from };
  }
  if (PUBLISH_KINDS.has(h.kind)) return { service: text(h.service), exchange: text(h.exchange), routingKey: text(h.routingKey) };
  const d = ctx.graph.deliveryOf[hop];
  return { service: text(d?.service ?? h.service), queue: text(d?.queue ?? h.queue) };
}

/** The error behind a finding: its own hop's, else the last handler error of that delivery, else a return's reply text. */
function errorOf(ctx: ChainContext, node: MessageNode, hop: number, place: Place): { type?: string; message?: string } {
  const h = ctx.graph.hops[hop];
  const own: HopError | undefined = h.error ?? undefined;
  if (own && typeof own === 'object') return { type: text(own.type) || 'Error', message: text(own.message) };
  if (h.kind === 'return') return { message: text(h.replyText) };
  if (place.queue !== undefined) {
    const d = node.deliveries.find((x) => x.queue === place.queue && x.service === place.service);
    if (d !== undefined) {
      const processes = deliveryHops(ctx, d, 'process');
      for (let k = processes.length - 1; k >= 0; k--) {
        const p = ctx.graph.hops[processes[k]];
        if (isProcessError(p)) return { type: text(p.error?.type) || 'Error', message: text(p.error?.message) };
      }
    }
  }
  return {};
}

/** The queue holding a dead-lettered copy from `queue`: configured, else the queue a copy was received from. */
function deadLetterQueueOf(ctx: ChainContext, node: MessageNode, queue: string, options: DiagnoseOptions): string | undefined {
  const configured = configuredDeadLetterQueue(options, queue);
  if (configured !== undefined) return configured;
  for (const i of node.hops) {
    const h = ctx.graph.hops[i];
    if (h.kind === 'receive' && h.death?.[0]?.queue === queue && h.queue) return h.queue;
  }
  return undefined;
}

/** Every problem delivery of the chain, with its failure group; `replayed` marks the messages replayed since. */
export function chainFailures(
  ctx: ChainContext,
  messages: readonly BuiltMessage[],
  replayed: ReadonlyMap<string, readonly string[]>,
  options: DiagnoseOptions,
): ChainFailure[] {
  const hops = ctx.graph.hops;
  const out: { position: number; failure: ChainFailure }[] = [];
  for (const { node, diagnosis } of messages) {
    if (diagnosis.findings.length === 0) continue;
    const worst = new Map<string, { hop: number; status: MessageStatus; place: Place }>();
    for (const f of diagnosis.findings) {
      const place = placeOf(ctx, node, f.hop, f.status);
      const key = `${place.service}\u0000${place.queue ?? ''}\u0000${place.exchange ?? ''}\u0000${place.routingKey ?? ''}`;
      const seen = worst.get(key);
      const d = seen === undefined ? -1 : severity(f.status) - severity(seen.status);
      if (seen === undefined || d < 0 || (d === 0 && ctx.position[f.hop] < ctx.position[seen.hop])) worst.set(key, { hop: f.hop, status: f.status, place });
    }
    for (const { hop, status, place } of worst.values()) {
      const h = hops[hop];
      const error = errorOf(ctx, node, hop, place);
      const { fingerprint, pattern } = failureFingerprint({ status, ...place, errorType: error.type, message: error.message });
      const failure: ChainFailure = {
        fingerprint,
        status,
        messageId: text(node.messageId),
        hopId: h.id,
        ts: h.ts,
        service: place.service,
        pattern,
        replayed: replayed.has(node.messageId),
      };
      if (place.queue !== undefined) failure.queue = place.queue;
      if (place.exchange !== undefined) failure.exchange = place.exchange;
      if (place.routingKey !== undefined) failure.routingKey = place.routingKey;
      if (error.type !== undefined) failure.errorType = error.type;
      if (error.message) failure.message = error.message.length > MESSAGE_MAX ? `${error.message.slice(0, MESSAGE_MAX - 1)}…` : error.message;
      if (status === 'dead-lettered' && place.queue !== undefined) {
        const dlq = deadLetterQueueOf(ctx, node, place.queue, options);
        if (dlq !== undefined) failure.deadLetterQueue = dlq;
      }
      out.push({ position: ctx.position[hop], failure });
    }
  }
  return out
    .sort((a, b) => a.position - b.position || (a.failure.fingerprint < b.failure.fingerprint ? -1 : a.failure.fingerprint > b.failure.fingerprint ? 1 : 0))
    .map((x) => x.failure);
}

/** Failures added up per fingerprint and minute, in a stable order (it is stored, and compared). */
export function failureTally(failures: readonly ChainFailure[]): FailureTally[] {
  const byKey = new Map<string, FailureTally>();
  for (const f of failures) {
    // A time no minute holds (a stored hop an older collector let in) is counted nowhere.
    if (typeof f.ts !== 'number' || !Number.isFinite(f.ts)) continue;
    const bucket = Math.floor(f.ts / FAILURE_BUCKET_MS) * FAILURE_BUCKET_MS;
    const key = `${f.fingerprint}\u0000${bucket}`;
    let t = byKey.get(key);
    if (t === undefined) byKey.set(key, (t = { fingerprint: f.fingerprint, bucket, count: 0, unresolved: 0 }));
    t.count++;
    if (!f.replayed) t.unresolved++;
  }
  return [...byKey.values()].sort((a, b) => (a.fingerprint < b.fingerprint ? -1 : a.fingerprint > b.fingerprint ? 1 : a.bucket - b.bucket));
}

const OUTCOMES: Record<string, ReplayOutcome> = { ack: 'replayed', returned: 'unroutable', nack: 'rejected' };

/** Every replay hop of the chain as an attempt, oldest first; `statusOf` gives a message's status. */
export function replayAttempts(ctx: ChainContext, statusOf: (messageId: string) => MessageStatus | undefined): ReplayAttempt[] {
  const hops = ctx.graph.hops;
  const out: { position: number; attempt: ReplayAttempt }[] = [];
  for (let i = 0; i < hops.length; i++) {
    const h: StoredHop = hops[i];
    if (h.kind !== 'replay') continue;
    const publish = isReplayPublish(h);
    let outcome: ReplayOutcome = OUTCOMES[h.outcome ?? ''] ?? 'error';
    if (outcome === 'replayed' && !publish) outcome = 'error';
    if (h.error?.code === ErrorCodes.REPLAY_NOT_FOUND) outcome = 'not-found';
    const attempt: ReplayAttempt = { hopId: h.id, messageId: publish ? h.causationId! : h.messageId, ts: h.ts, outcome };
    if (h.requestedBy !== undefined) attempt.requestedBy = h.requestedBy;
    if (publish) {
      attempt.replayMessageId = h.messageId;
      const status = statusOf(h.messageId);
      if (status !== undefined) attempt.replayStatus = status;
    } else if (h.error) attempt.reason = h.error.message || h.error.type;
    else if (h.replyText) attempt.reason = `returned by the broker: ${h.replyCode ?? ''} ${h.replyText}`.replace(/\s+/g, ' ');
    if (h.queue !== undefined) attempt.deadLetterQueue = h.queue;
    if (h.exchange !== undefined) attempt.exchange = h.exchange;
    if (h.routingKey !== undefined) attempt.routingKey = h.routingKey;
    out.push({ position: ctx.position[i], attempt });
  }
  return out.sort((a, b) => a.position - b.position).map((x) => x.attempt);
}
