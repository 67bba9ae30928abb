/**
 * Diagnosis: each message's status and the sentence that explains it, the
 * chain's status and problems, and the first hop where something went wrong.
 *
 * A message collects findings, each a problem status, a reason and the hop
 * it shows at; its status is the most severe finding
 * ({@link STATUS_SEVERITY}), else `in-flight` while something is still
 * pending within its time limit, else `ok`. What it still waits for (in
 * flight, lost or stuck) is listed as open waits, drawn as open in the UI.
 *
 * A reject or nack without requeue drops the message from its queue: the
 * broker dead-letters it when the queue has a dead-letter exchange and
 * discards it otherwise. Hops do not say which; a dead-lettered copy's
 * receive (`x-death`) does. Until one shows up, within the `lostAfterMs`
 * limit (the copy is a message the broker publishes), the message is in
 * flight; after it, `discarded`.
 */
import { STATUS_SEVERITY, type FirstFailure, type MessageDelivery, type MessageStatus, type OpenWait, type Recovery, type StoredHop } from './api-types.ts';
import { isRejectingSettle, type MessageNode } from './chain-graph.ts';
import { deliveryHops, isProcessError, maxDeath, type ChainContext } from './chain-messages.ts';

/** The limits a diagnosis is judged against (a subset of the engine options). */
export interface DiagnoseOptions {
  now: number;
  lostAfterMs: number;
  stuckAfterMs: number;
  redeliveryLoopThreshold: number;
  /** Queue → the dead-letter queue its rejects go to, where nobody consumes and so no copy is seen (see `ChainEngineOptions`). */
  deadLetterQueues?: Readonly<Record<string, string>>;
}

/** The dead-letter queue configured for a queue, if any. */
export function configuredDeadLetterQueue(options: { deadLetterQueues?: Readonly<Record<string, string>> }, queue: string): string | undefined {
  const map = options.deadLetterQueues;
  return map !== undefined && Object.hasOwn(map, queue) ? map[queue] : undefined;
}

/** One thing that went wrong with a message. */
export interface Finding {
  status: Exclude<MessageStatus, 'ok' | 'in-flight'>;
  reason: string;
  /** Hop index where it shows. */
  hop: number;
}

/** Something a message still waits for; {@link OpenWait} with a hop index. */
export interface OpenFinding {
  kind: OpenWait['kind'];
  status: OpenWait['status'];
  /** Hop index it waits since. */
  hop: number;
  queue?: string;
  waitedMs: number;
}

/** {@link Recovery} with a hop index. */
export type RecoveryFinding = Omit<Recovery, 'hopId'> & { hop: number };

export interface MessageDiagnosis {
  status: MessageStatus;
  statusReason: string;
  findings: Finding[];
  /** Something is still pending within its time limit (a worse finding may hide it in `status`). */
  pending: boolean;
  /** What it still waits for, lost and stuck included. */
  open: OpenFinding[];
}

const severityOf = new Map<MessageStatus, number>(STATUS_SEVERITY.map((s, i) => [s, i]));

/** Lower is more severe. */
export function severity(status: MessageStatus): number {
  return severityOf.get(status) ?? STATUS_SEVERITY.length;
}

/** "2.5 s", "3 min", "1.2 h": durations people read in a status line. */
export function formatDuration(ms: number): string {
  const abs = Math.abs(ms);
  if (abs < 1000) return `${Math.round(ms)} ms`;
  if (abs < 120_000) return `${Math.round(ms / 100) / 10} s`;
  if (abs < 7_200_000) return `${Math.round(ms / 6000) / 10} min`;
  return `${Math.round(ms / 360_000) / 10} h`;
}

const q = (s: string | undefined): string => JSON.stringify(s ?? '');

function errorText(h: StoredHop): string {
  const e = h.error;
  if (e === undefined || e === null) return 'an error';
  const type = e.type || 'Error';
  return e.message ? `${type}: ${e.message}` : type;
}

function destination(h: StoredHop): string {
  return `exchange ${q(h.exchange)} with routing key ${q(h.routingKey)}`;
}

/** Diagnose one message; `deliveries` are its {@link MessageDelivery} figures, in `m.deliveries` order. */
export function diagnoseMessage(
  ctx: ChainContext,
  m: MessageNode,
  deliveries: readonly MessageDelivery[],
  redeliveryCount: number,
  options: DiagnoseOptions,
): MessageDiagnosis {
  const hops = ctx.graph.hops;
  const findings: Finding[] = [];
  const pending: string[] = [];
  const open: OpenFinding[] = [];
  const s0 = m.sends[0];
  const { now } = options;

  for (const r of m.returns) {
    const h = hops[r];
    const code = [h.replyCode, h.replyText].filter((x) => x !== undefined && x !== '').join(' ');
    findings.push({ status: 'unroutable', reason: `returned by the broker${code ? ` (${code})` : ''}: no queue bound for ${destination(h)}`, hop: r });
  }
  for (const c of m.confirms) {
    const h = hops[c];
    if (h.outcome === 'nack') findings.push({ status: 'unroutable', reason: `the broker refused the publish to ${destination(h)} (confirm nack)`, hop: c });
  }

  // Handler errors, per delivery: failed unless a later attempt of that delivery processed it fine.
  const lastError = new Map<number, number>();
  m.deliveries.forEach((d, k) => {
    const processes = deliveryHops(ctx, d, 'process');
    let trailing: number | undefined;
    for (const p of processes) {
      if (isProcessError(hops[p])) trailing ??= p;
      else trailing = undefined;
    }
    if (trailing !== undefined) {
      lastError.set(k, processes.at(-1)!);
      const attempts = deliveries[k].errors;
      findings.push({
        status: 'failed',
        reason: `handler in ${d.service} failed on queue ${q(d.queue)}: ${errorText(hops[trailing])}${attempts > 1 ? ` (${attempts} failed attempts)` : ''}`,
        hop: trailing,
      });
    }
  });

  // Dead letters: x-death on a received copy, or a reject without requeue.
  const handlerErrorOn = (queue: string): string => {
    for (const [k, p] of lastError) if (m.deliveries[k].queue === queue) return ` after the handler failed with ${errorText(hops[p])}`;
    return '';
  };
  const rejectOf = new Map<string, number>();
  for (const d of m.deliveries) {
    for (const s of deliveryHops(ctx, d, 'settle')) if (isRejectingSettle(hops[s]) && !rejectOf.has(d.queue)) rejectOf.set(d.queue, s);
  }
  const explained = new Set<string>();
  const receives = m.deliveries.flatMap((d) => deliveryHops(ctx, d, 'receive')).sort((a, b) => ctx.position[a] - ctx.position[b]);
  for (const r of receives) {
    const death = hops[r].death;
    const newest = Array.isArray(death) ? death[0] : undefined;
    if (newest === undefined || newest === null) continue;
    const key = `${newest.queue}\u0000${newest.reason}`;
    if (explained.has(key)) continue;
    explained.add(key);
    const source = ctx.deadLetterSource.get(r) ?? (newest.reason === 'rejected' ? rejectOf.get(newest.queue) : undefined);
    findings.push({
      status: 'dead-lettered',
      reason: `dead-lettered from queue ${q(newest.queue)} (${newest.reason}) to queue ${q(hops[r].queue)}${newest.reason === 'rejected' ? handlerErrorOn(newest.queue) : ''}`,
      hop: source ?? r,
    });
  }
  for (const [queue, s] of rejectOf) {
    if (explained.has(`${queue}\u0000rejected`)) continue;
    const h = hops[s];
    const configured = configuredDeadLetterQueue(options, queue);
    if (configured !== undefined) {
      // The operator said where this queue dead-letters to: no copy needs to be seen.
      findings.push({ status: 'dead-lettered', reason: `dead-lettered from queue ${q(queue)} (rejected) to queue ${q(configured)}${handlerErrorOn(queue)}`, hop: s });
      continue;
    }
    const verb = h.outcome === 'reject' ? 'rejected' : 'nacked';
    const age = now - h.ts;
    if (age > options.lostAfterMs) {
      findings.push({
        status: 'discarded',
        reason:
          `${h.service} ${verb} it on queue ${q(queue)} without requeue${handlerErrorOn(queue)}; no dead-lettered copy seen ` +
          `within ${formatDuration(options.lostAfterMs)}: RabbitMQ discards such a message unless the queue has a dead-letter exchange`,
        hop: s,
      });
    } else {
      pending.push(`${verb} without requeue by ${h.service} on queue ${q(queue)}; a dead-lettered copy may still arrive`);
      open.push({ kind: 'dead-letter', status: 'in-flight', hop: s, queue, waitedMs: Math.max(0, age) });
    }
  }

  // Nothing received at all: in flight, then lost.
  if (m.deliveries.length === 0 && s0 !== undefined && m.returns.length === 0 && !m.confirms.some((c) => hops[c].outcome === 'nack')) {
    const age = now - hops[s0].ts;
    const lost = age > options.lostAfterMs;
    if (lost) {
      findings.push({
        status: 'lost',
        reason: `sent by ${hops[s0].service} to ${destination(hops[s0])} ${formatDuration(age)} ago and never received (limit ${formatDuration(options.lostAfterMs)})`,
        hop: s0,
      });
    } else pending.push(`sent ${formatDuration(Math.max(0, age))} ago, not received yet`);
    const sent: OpenFinding = { kind: 'unreceived', status: lost ? 'lost' : 'in-flight', hop: s0, waitedMs: Math.max(0, age) };
    // Through the default exchange the routing key is the queue.
    if (hops[s0].exchange === '' && hops[s0].routingKey) sent.queue = hops[s0].routingKey;
    open.push(sent);
  }

  // Each delivery's latest attempt: unsettled → in flight, then stuck; requeued → awaiting redelivery.
  for (const d of m.deliveries) {
    const last = d.attempts.at(-1);
    if (last === undefined || last.receive === undefined) continue;
    const r = last.receive;
    if (last.settles.length === 0) {
      const age = now - hops[r].ts;
      const stuck = age > options.stuckAfterMs;
      if (stuck) {
        findings.push({
          status: 'stuck',
          reason: `received by ${d.service} from queue ${q(d.queue)} ${formatDuration(age)} ago and never settled (limit ${formatDuration(options.stuckAfterMs)})`,
          hop: r,
        });
      } else pending.push(`being handled by ${d.service} on queue ${q(d.queue)}`);
      open.push({ kind: 'unsettled', status: stuck ? 'stuck' : 'in-flight', hop: r, queue: d.queue, waitedMs: Math.max(0, age) });
      continue;
    }
    const s = last.settles.reduce((a, b) => (ctx.position[a] > ctx.position[b] ? a : b));
    const h = hops[s];
    if ((h.outcome === 'nack' || h.outcome === 'reject') && h.requeue !== false) {
      const age = now - h.ts;
      const lost = age > options.lostAfterMs;
      if (lost) {
        findings.push({
          status: 'lost',
          reason: `requeued by ${d.service} on queue ${q(d.queue)} ${formatDuration(age)} ago and never redelivered (limit ${formatDuration(options.lostAfterMs)})`,
          hop: s,
        });
      } else pending.push(`requeued by ${d.service} on queue ${q(d.queue)}, awaiting redelivery`);
      open.push({ kind: 'requeued', status: lost ? 'lost' : 'in-flight', hop: s, queue: d.queue, waitedMs: Math.max(0, age) });
    }
  }

  // Redelivery loop: too many redeliveries, or too many dead-letter round trips.
  const threshold = options.redeliveryLoopThreshold;
  const death = maxDeath(ctx, m);
  if (redeliveryCount >= threshold || death.count >= threshold) {
    let trigger: number | undefined;
    for (const i of m.hops) {
      const h = hops[i];
      const wrong =
        isProcessError(h) ||
        (h.kind === 'settle' && (h.outcome === 'nack' || h.outcome === 'reject')) ||
        (h.kind === 'receive' && (h.redelivered === true || (h.death?.length ?? 0) > 0));
      if (wrong && (trigger === undefined || ctx.position[i] < ctx.position[trigger])) trigger = i;
    }
    const reason =
      redeliveryCount >= threshold
        ? `redelivered ${redeliveryCount} times (loop threshold ${threshold})`
        : `dead-lettered ${death.count} times (loop threshold ${threshold})`;
    findings.push({ status: 'redelivery-loop', reason, hop: trigger ?? death.hop ?? m.hops[0] });
  }

  if (findings.length > 0) {
    let worst = findings[0];
    for (const f of findings) {
      const d = severity(f.status) - severity(worst.status);
      if (d < 0 || (d === 0 && ctx.position[f.hop] > ctx.position[worst.hop])) worst = f;
    }
    return { status: worst.status, statusReason: worst.reason, findings, pending: pending.length > 0, open };
  }
  if (pending.length > 0) return { status: 'in-flight', statusReason: pending.join('; '), findings, pending: true, open };
  return { status: 'ok', statusReason: okReason(m, deliveries), findings, pending: false, open };
}

/**
 * Deliveries that succeeded after failing or being requeued: the last attempt
 * processed without error and was acked, an earlier one did not.
 */
export function recoveries(ctx: ChainContext, m: MessageNode, deliveries: readonly MessageDelivery[]): RecoveryFinding[] {
  const hops = ctx.graph.hops;
  const out: RecoveryFinding[] = [];
  m.deliveries.forEach((d, k) => {
    if (deliveries[k].settle?.outcome !== 'ack') return;
    const processes = deliveryHops(ctx, d, 'process');
    const last = processes.at(-1);
    if (last !== undefined && isProcessError(hops[last])) return;
    const errors = new Map<string, number>();
    let first: number | undefined;
    for (const p of processes) {
      if (!isProcessError(hops[p])) continue;
      const text = errorText(hops[p]);
      errors.set(text, (errors.get(text) ?? 0) + 1);
      first ??= p;
    }
    const requeued = deliveryHops(ctx, d, 'settle').filter((s) => {
      const h = hops[s];
      return (h.outcome === 'nack' || h.outcome === 'reject') && h.requeue !== false;
    });
    if (errors.size === 0 && requeued.length === 0) return;
    out.push({
      messageId: m.messageId,
      service: d.service,
      queue: d.queue,
      attempts: d.attempts.length,
      errors: [...errors].map(([text, count]) => ({ text, count })),
      requeues: requeued.length,
      hop: first ?? requeued[0],
    });
  });
  return out;
}

function okReason(m: MessageNode, deliveries: readonly MessageDelivery[]): string {
  const settled = deliveries.filter((d) => d.settle !== undefined).map((d) => d.service);
  const consumers = [...new Set(deliveries.map((d) => d.service))];
  if (consumers.length === 0) return m.sends.length > 0 ? 'published' : 'seen';
  if (settled.length === deliveries.length) return `processed and settled by ${[...new Set(settled)].join(', ')}`;
  return `processed by ${consumers.join(', ')}`;
}

/**
 * Chain status (the most severe message status), problems (every status any
 * message has or shows a finding for, plus `in-flight` while anything is
 * pending; most severe first) and the first failing hop: the earliest hop in
 * causal order among the findings of messages whose status is a problem.
 * Messages in `replayed` (republished from their dead-letter queue as a new
 * message) leave status and problems to their replay; their failures are the
 * first failure only when no other message failed (marked `replayed`).
 */
export function diagnoseChain(
  ctx: ChainContext,
  messages: readonly { node: MessageNode; diagnosis: MessageDiagnosis }[],
  replayed: ReadonlySet<string> = new Set(),
): { status: MessageStatus; problems: MessageStatus[]; firstFailure?: FirstFailure } {
  const statuses = new Set<MessageStatus>();
  type First = { finding: Finding; node: MessageNode; status: MessageStatus };
  let first: First | undefined;
  // The failures of replayed messages: history, the first failure only when nothing else failed.
  let firstReplayed: First | undefined;
  const earlier = (f: Finding, than: First | undefined) => than === undefined || ctx.position[f.hop] < ctx.position[than.finding.hop];
  let status: MessageStatus = 'ok';
  for (const { node, diagnosis } of messages) {
    if (diagnosis.status === 'ok' || diagnosis.status === 'in-flight' || !replayed.has(node.messageId)) {
      // A replayed message's status is history: the chain follows its replay (a message of its own).
      statuses.add(diagnosis.status);
      for (const f of diagnosis.findings) statuses.add(f.status);
      if (diagnosis.pending) statuses.add('in-flight');
      if (severity(diagnosis.status) < severity(status)) status = diagnosis.status;
    } else {
      for (const f of diagnosis.findings) if (earlier(f, firstReplayed)) firstReplayed = { finding: f, node, status: diagnosis.status };
      continue;
    }
    if (diagnosis.status === 'ok' || diagnosis.status === 'in-flight') continue;
    for (const f of diagnosis.findings) if (earlier(f, first)) first = { finding: f, node, status: diagnosis.status };
  }
  const ordered = [...statuses].sort((a, b) => severity(a) - severity(b));
  const result: { status: MessageStatus; problems: MessageStatus[]; firstFailure?: FirstFailure } = {
    status,
    problems: ordered.filter((s) => s !== 'ok'),
  };
  const chosen = first ?? firstReplayed;
  if (chosen !== undefined) {
    const h = ctx.graph.hops[chosen.finding.hop];
    result.firstFailure = {
      hopId: h.id,
      messageId: chosen.node.messageId,
      kind: h.kind,
      status: chosen.status,
      reason: chosen.finding.reason,
    };
    if (first === undefined) result.firstFailure.replayed = true;
  }
  return result;
}
