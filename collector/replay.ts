/**
 * Dead-letter replay: take dead-lettered messages out of their dead-letter
 * queues and publish them again where they were going, in the same chain.
 *
 * What to replay comes from the chains: a failure group's dead-lettered
 * messages not replayed yet, or messages by id; each with the dead-letter
 * queue its chain names (a receive of the dead-lettered copy, or
 * `--dead-letter-queue`). A dry run lists them and touches nothing. A replay
 * makes one pass per dead-letter queue (`replay-broker.ts`), at a bounded
 * rate, one replay at a time in the whole collector, and writes a `replay`
 * hop for every message it looked for: republished (the new message's
 * publish, caused by the dead-lettered one), left in place (returned or
 * nacked by the broker), or not there.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { CollectorError, ErrorCodes } from './errors.ts';
import type { HopError, HopRecord } from '../src/contract/hop.ts';
import type { ChainDetail, ChainFailure, ReplayConfig, ReplayMessageResult, ReplayRequest, ReplayResult } from './api-types.ts';
import { deathTarget, ReplayBroker, REPLAY_COUNT_HEADER, REPLAY_OF_HEADER, type Republished, type RepublishOutcome } from './replay-broker.ts';
import type { Store } from './store.ts';

/** The `service` of the collector's replay hops. */
export const REPLAY_SERVICE = 'hoptrace-collector';
/** Messages a replay request moves at most by default, and at most at all. */
export const REPLAY_DEFAULT_LIMIT = 1_000;
export const REPLAY_MAX_LIMIT = 10_000;
/** Messages a pass over one dead-letter queue gets at most before it gives up on the rest. */
const MAX_SCAN = 100_000;
/** Chains of a group read per page while collecting what to replay. */
const PAGE = 200;
/** Replayed message ids remembered (to report `already-replayed`), most recent kept. */
const MOVED_REMEMBERED = 100_000;

/** The replay's refusal when it is switched off (HTTP 409). */
export class ReplayDisabledError extends CollectorError {
  override name = 'ReplayDisabledError';
  constructor(message: string) {
    super(ErrorCodes.REPLAY_DISABLED, message, { statusCode: 409 });
  }
}

export interface ReplayOptions {
  store: Store;
  /** A chain built from its stored hops now (404 when unknown). */
  loadChain: (correlationId: string) => Promise<ChainDetail>;
  logger: Logger;
  /** The broker; undefined: replay is off. */
  amqpUrl: string | undefined;
  /** Whether a token guards replay (the admin token, else the ingest token). */
  guarded: boolean;
  /** Whether that token is the admin token. */
  adminToken: boolean;
  /** Messages republished per second at most. */
  ratePerSec: number;
}

/** A message to replay, from its chain. */
interface Candidate {
  messageId: string;
  correlationId: string;
  deadLetterQueue?: string;
  exchange?: string;
  routingKey?: string;
  traceId?: string;
  failure?: ChainFailure;
}

const countOutcomes = (messages: readonly ReplayMessageResult[]): ReplayResult['counts'] => {
  const counts: ReplayResult['counts'] = {};
  for (const m of messages) counts[m.outcome] = (counts[m.outcome] ?? 0) + 1;
  return counts;
};

export class ReplayService {
  readonly #o: ReplayOptions;
  readonly #broker: ReplayBroker | undefined;
  readonly #instance = `${hostname()}/${process.pid}`;
  /** One replay at a time: a pass holds the messages it is not after, which another pass must not take for missing. */
  #running: Promise<unknown> = Promise.resolve();
  /** Dead-lettered message id → the message it was republished as, by this collector. */
  readonly #moved = new Map<string, string>();
  #nextAt = 0;

  constructor(options: ReplayOptions) {
    this.#o = options;
    this.#broker = options.amqpUrl ? new ReplayBroker(options.amqpUrl, options.logger) : undefined;
  }

  /** Whether replay is on, and why not. */
  get config(): ReplayConfig {
    const base = { adminToken: this.#o.adminToken, ratePerSec: this.#o.ratePerSec };
    if (!this.#o.amqpUrl) {
      return { ...base, enabled: false, reason: 'Replay is off: start the collector with --amqp-url so it can take messages from dead-letter queues and publish them again.' };
    }
    if (!this.#o.guarded) {
      return { ...base, enabled: false, reason: 'Replay is off: it moves messages, so it needs a token to guard it; start the collector with --admin-token (or --token).' };
    }
    return { ...base, enabled: true };
  }

  /** Replay (or with `dryRun`, list) what a request names. @throws ReplayDisabledError when replay is off (a dry run works regardless) */
  async replay(request: ReplayRequest): Promise<ReplayResult> {
    const dryRun = request.dryRun === true;
    const config = this.config;
    if (!dryRun && !config.enabled) throw new ReplayDisabledError(config.reason!);
    const limit = Math.min(request.limit ?? REPLAY_DEFAULT_LIMIT, REPLAY_MAX_LIMIT);
    const { candidates, refused, truncated } =
      request.group !== undefined ? await this.#groupCandidates(request.group, limit) : await this.#messageCandidates(request.messageIds ?? [], limit);
    const results: ReplayMessageResult[] = [...refused];
    const ready: Candidate[] = [];
    for (const c of candidates) {
      if (c.deadLetterQueue === undefined) {
        results.push({
          ...describe(c),
          outcome: 'no-dead-letter-queue',
          detail: 'its chain does not say which dead-letter queue holds it: no receive of the dead-lettered copy, and no --dead-letter-queue for its queue',
        });
      } else if (this.#moved.has(c.messageId)) {
        results.push({ ...describe(c), outcome: 'already-replayed', replayMessageId: this.#moved.get(c.messageId), detail: `already replayed as ${this.#moved.get(c.messageId)}` });
      } else if (dryRun) {
        results.push({ ...describe(c), outcome: 'would-replay', detail: `would be taken from ${c.deadLetterQueue} and republished` });
      } else ready.push(c);
    }
    if (!dryRun && ready.length > 0) {
      const requestedBy = request.requestedBy?.trim() || 'api';
      const moved = await this.#serial(() => this.#move(ready, requestedBy));
      results.push(...moved);
    }
    return { dryRun, counts: countOutcomes(results), messages: results, truncated };
  }

  #serial<T>(job: () => Promise<T>): Promise<T> {
    const next = this.#running.then(job, job);
    this.#running = next.catch(() => undefined);
    return next;
  }

  /** A failure group's dead-lettered messages not replayed yet, from its chains. */
  async #groupCandidates(fingerprint: string, limit: number): Promise<{ candidates: Candidate[]; refused: ReplayMessageResult[]; truncated: boolean }> {
    const candidates: Candidate[] = [];
    let cursor: string | undefined;
    for (;;) {
      const page = await this.#o.store.listChains({ failure: fingerprint, limit: PAGE, cursor });
      for (const chain of page.items) {
        let detail: ChainDetail;
        try {
          detail = await this.#o.loadChain(chain.correlationId);
        } catch {
          continue; // deleted by retention meanwhile
        }
        for (const f of detail.failures ?? []) {
          if (f.fingerprint !== fingerprint || f.replayed || f.status !== 'dead-lettered') continue;
          if (candidates.length === limit) return { candidates, refused: [], truncated: true };
          candidates.push(candidateOf(detail, f));
        }
      }
      if (page.nextCursor === null) break;
      cursor = page.nextCursor;
    }
    return { candidates, refused: [], truncated: false };
  }

  /** Messages by id: each from its chain, when it was dead-lettered. */
  async #messageCandidates(ids: readonly string[], limit: number): Promise<{ candidates: Candidate[]; refused: ReplayMessageResult[]; truncated: boolean }> {
    const candidates: Candidate[] = [];
    const refused: ReplayMessageResult[] = [];
    for (const messageId of [...new Set(ids)].slice(0, limit)) {
      const chains = await this.#o.store.messageChains(messageId);
      let found: Candidate | undefined;
      let correlationId: string | undefined;
      for (const id of chains) {
        let detail: ChainDetail;
        try {
          detail = await this.#o.loadChain(id);
        } catch {
          continue;
        }
        correlationId ??= id;
        const failure = (detail.failures ?? []).find((f) => f.messageId === messageId && f.status === 'dead-lettered');
        if (failure !== undefined) {
          found = candidateOf(detail, failure);
          break;
        }
      }
      if (found !== undefined) candidates.push(found);
      else if (correlationId === undefined) refused.push({ messageId, outcome: 'not-found', detail: 'the collector has no message with this id' });
      else refused.push({ messageId, correlationId, outcome: 'not-dead-lettered', detail: 'its chain shows no dead letter of this message' });
    }
    return { candidates, refused, truncated: ids.length > limit };
  }

  /** Wait for the rate limit's next slot. */
  async #slot(): Promise<void> {
    const now = performance.now();
    const wait = this.#nextAt - now;
    this.#nextAt = Math.max(now, this.#nextAt) + 1000 / this.#o.ratePerSec;
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }

  /** Take the candidates from their dead-letter queues, one pass per queue. */
  async #move(candidates: readonly Candidate[], requestedBy: string): Promise<ReplayMessageResult[]> {
    const broker = this.#broker!;
    const results: ReplayMessageResult[] = [];
    const hops: HopRecord[] = [];
    const byQueue = new Map<string, Map<string, Candidate>>();
    for (const c of candidates) {
      // A replay that ran while this one waited may have moved it.
      const as = this.#moved.get(c.messageId);
      if (as !== undefined) {
        results.push({ ...describe(c), outcome: 'already-replayed', replayMessageId: as, detail: `already replayed as ${as}` });
        continue;
      }
      let wanted = byQueue.get(c.deadLetterQueue!);
      if (wanted === undefined) byQueue.set(c.deadLetterQueue!, (wanted = new Map()));
      wanted.set(c.messageId, c);
    }
    for (const [queue, wanted] of byQueue) {
      const done = new Set<string>();
      let failedPass: string | undefined;
      try {
        await broker.pass(
          queue,
          {
            wanted: (id) => wanted.has(id) && !done.has(id),
            found: async (message, republish) => {
              const id = String(message.properties.messageId);
              const c = wanted.get(id)!;
              done.add(id);
              if (deathTarget(message) === undefined) {
                results.push({ ...describe(c), outcome: 'not-dead-lettered', detail: `the message in ${queue} carries no x-death header: it was not dead-lettered there, so it is left in place` });
                return 'keep';
              }
              await this.#slot();
              const { sent, result } = await republish(c.correlationId);
              hops.push(this.#hop(c, requestedBy, sent, result));
              const r = outcomeOf(c, sent, result);
              results.push(r);
              if (r.outcome === 'replayed') {
                this.#moved.set(id, sent.messageId);
                // Remember the most recent ones: enough to answer a repeated request, bounded for a long-lived collector.
                if (this.#moved.size > MOVED_REMEMBERED) this.#moved.delete(this.#moved.keys().next().value!);
                return 'ack';
              }
              return 'keep';
            },
          },
          { maxScan: MAX_SCAN, stopWhen: () => done.size === wanted.size },
        );
      } catch (err) {
        failedPass = (err as Error).message;
        this.#o.logger.warn({ err, queue }, 'replay pass over a dead-letter queue failed');
      }
      for (const c of wanted.values()) {
        if (done.has(c.messageId)) continue;
        if (failedPass !== undefined) {
          results.push({ ...describe(c), outcome: 'error', detail: `could not read ${queue}: ${failedPass}` });
          hops.push(this.#failedHop(c, requestedBy, { type: 'ReplayError', code: ErrorCodes.REPLAY_FAILED, message: `could not read queue "${queue}": ${failedPass}` }));
        } else {
          results.push({ ...describe(c), outcome: 'not-found', detail: `not in ${queue}: it expired, was consumed, or was moved by someone else` });
          hops.push(
            this.#failedHop(c, requestedBy, {
              type: 'ReplayNotFoundError',
              code: ErrorCodes.REPLAY_NOT_FOUND,
              message: `not in queue "${queue}" (expired, consumed, or moved by someone else)`,
            }),
          );
        }
      }
    }
    if (hops.length > 0) {
      try {
        await this.#o.store.insertHops(hops, Date.now());
      } catch (err) {
        // The broker's part is done either way; the chains miss the record of it.
        this.#o.logger.error({ err }, 'could not store the replay hops');
      }
    }
    return results;
  }

  /** The `replay` hop of a republish: the new message's publish on success, else an attempt on the dead-lettered message. */
  #hop(c: Candidate, requestedBy: string, sent: Republished, result: RepublishOutcome): HopRecord {
    if (result.outcome !== 'ack') {
      const error: HopError =
        result.outcome === 'returned'
          ? { type: 'ReplayReturnedError', code: ErrorCodes.REPLAY_FAILED, message: `the broker returned the republish as unroutable (${result.replyCode} ${result.replyText}); the message stays in the dead-letter queue` }
          : { type: result.outcome === 'nack' ? 'ReplayRejectedError' : 'ReplayError', code: ErrorCodes.REPLAY_FAILED, message: `${result.message}; the message stays in the dead-letter queue` };
      const hop = this.#failedHop(c, requestedBy, error, sent);
      if (result.outcome === 'returned') {
        hop.outcome = 'returned';
        hop.replyCode = result.replyCode;
        hop.replyText = result.replyText;
      } else if (result.outcome === 'nack') hop.outcome = 'nack';
      if (result.outcome !== 'error') hop.durationMs = result.durationMs;
      return hop;
    }
    const hop: HopRecord = {
      v: 1,
      kind: 'replay',
      // The publish's own time: a consumer may receive the message before the broker's confirm is back.
      ts: sent.ts,
      service: REPLAY_SERVICE,
      instance: this.#instance,
      traceId: sent.traceId ?? c.traceId ?? randomBytes(16).toString('hex'),
      spanId: sent.spanId,
      correlationId: c.correlationId,
      causationId: sent.replayOf,
      messageId: sent.messageId,
      exchange: sent.target.exchange,
      routingKey: sent.target.routingKey,
      queue: c.deadLetterQueue,
      outcome: 'ack',
      durationMs: result.durationMs,
      bodySize: sent.bodySize,
      headers: { [REPLAY_OF_HEADER]: sent.originalId, [REPLAY_COUNT_HEADER]: String(sent.replayCount) },
      requestedBy,
    };
    if (sent.contentType !== undefined) hop.contentType = sent.contentType;
    if (sent.messageType !== undefined) hop.messageType = sent.messageType;
    return hop;
  }

  /** A `replay` hop about the dead-lettered message itself: the attempt moved nothing. */
  #failedHop(c: Candidate, requestedBy: string, error: HopError, sent?: Republished): HopRecord {
    const hop: HopRecord = {
      v: 1,
      kind: 'replay',
      ts: sent?.ts ?? Date.now(),
      service: REPLAY_SERVICE,
      instance: this.#instance,
      traceId: sent?.traceId ?? c.traceId ?? randomBytes(16).toString('hex'),
      spanId: sent?.spanId ?? randomBytes(8).toString('hex'),
      correlationId: c.correlationId,
      messageId: c.messageId,
      outcome: 'error',
      error,
      requestedBy,
    };
    if (c.deadLetterQueue !== undefined) hop.queue = c.deadLetterQueue;
    const exchange = sent?.target.exchange ?? c.exchange;
    const routingKey = sent?.target.routingKey ?? c.routingKey;
    if (exchange !== undefined) hop.exchange = exchange;
    if (routingKey !== undefined) hop.routingKey = routingKey;
    return hop;
  }

  async close(): Promise<void> {
    await this.#running.catch(() => undefined);
    await this.#broker?.close();
  }
}

function candidateOf(detail: ChainDetail, f: ChainFailure): Candidate {
  const message = detail.messages.find((m) => m.messageId === f.messageId);
  const death = message?.deadLetters.find((d) => d.queue === f.queue) ?? message?.deadLetters[0];
  const c: Candidate = { messageId: f.messageId, correlationId: detail.correlationId, failure: f };
  if (f.deadLetterQueue !== undefined) c.deadLetterQueue = f.deadLetterQueue;
  if (death !== undefined) {
    c.exchange = death.exchange;
    if (death.routingKeys[0] !== undefined) c.routingKey = death.routingKeys[0];
  }
  const trace = detail.hops.find((h) => h.messageId === f.messageId)?.traceId;
  if (trace) c.traceId = trace;
  return c;
}

function describe(c: Candidate): Omit<ReplayMessageResult, 'outcome'> {
  const r: Omit<ReplayMessageResult, 'outcome'> = { messageId: c.messageId, correlationId: c.correlationId };
  if (c.deadLetterQueue !== undefined) r.deadLetterQueue = c.deadLetterQueue;
  if (c.exchange !== undefined) r.exchange = c.exchange;
  if (c.routingKey !== undefined) r.routingKey = c.routingKey;
  return r;
}

function outcomeOf(c: Candidate, sent: Republished, result: RepublishOutcome): ReplayMessageResult {
  const r: ReplayMessageResult = { ...describe(c), exchange: sent.target.exchange, routingKey: sent.target.routingKey, outcome: 'replayed' };
  const where = `exchange "${sent.target.exchange}" with routing key "${sent.target.routingKey}"`;
  switch (result.outcome) {
    case 'ack':
      return { ...r, replayMessageId: sent.messageId, detail: `republished to ${where} as ${sent.messageId} (replay ${sent.replayCount})` };
    case 'returned':
      return { ...r, outcome: 'unroutable', detail: `the broker returned it (${result.replyCode} ${result.replyText}): no queue is bound for ${where}; it stays in ${c.deadLetterQueue}` };
    case 'nack':
      return { ...r, outcome: 'rejected', detail: `the broker nacked the republish to ${where}; it stays in ${c.deadLetterQueue}` };
    default:
      return { ...r, outcome: 'error', detail: `${result.message}; it stays in ${c.deadLetterQueue}` };
  }
}
