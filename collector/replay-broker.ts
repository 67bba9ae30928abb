/**
 * The collector's side of RabbitMQ for replay: one connection (opened when
 * first needed, again after it broke) and one confirm channel, on which a
 * pass over a dead-letter queue takes the wanted messages (`basic.get`,
 * matched on `messageId`) and republishes each with `mandatory`; everything
 * else it got is held and nacked back in place (requeue) when the pass ends,
 * so a pass sees every message of the queue once and leaves the rest as it
 * found them. A message is acked only after the broker confirmed its
 * republish and did not return it; otherwise it is nacked back with the rest.
 * If the channel or connection dies mid-pass, the broker requeues whatever
 * the pass held: nothing is lost.
 *
 * One pass at a time (the caller serializes), so two replays never see, and
 * never move, the same message.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import amqp, { type ChannelModel, type ConfirmChannel, type GetMessage, type Options } from 'amqplib';
import type { Logger } from 'pino';
import { brokerAdvice } from './broker-advice.ts';

/** Headers the broker writes when it dead-letters a message: left out of a replay, which is not dead-lettered. */
const DEATH_HEADERS = /^x-(death|first-death-.*|last-death-.*)$/;
/** The library's default id headers. */
export const CORRELATION_HEADER = 'x-correlation-id';
export const CAUSATION_HEADER = 'x-causation-id';
export const REPLAY_OF_HEADER = 'x-replay-of';
export const REPLAY_COUNT_HEADER = 'x-replay-count';
const TRACEPARENT = /^00-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/;

/** The newest `x-death` entry of a dead-lettered message: where it was published before it died. */
export interface DeathTarget {
  exchange: string;
  routingKey: string;
  queue: string;
  reason: string;
}

/** What became of one republish. */
export type RepublishOutcome =
  | { outcome: 'ack'; durationMs: number }
  | { outcome: 'returned'; replyCode: number; replyText: string; durationMs: number }
  | { outcome: 'nack'; durationMs: number; message: string }
  | { outcome: 'error'; message: string };

/** The message as republished. */
export interface Republished {
  /** When it was published (before the broker could deliver it), epoch ms. */
  ts: number;
  messageId: string;
  /** The dead-lettered message's id (the replay's cause). */
  replayOf: string;
  /** `x-replay-of`: the first message of the line of replays. */
  originalId: string;
  replayCount: number;
  traceId: string | undefined;
  spanId: string;
  target: DeathTarget;
  bodySize: number;
  contentType?: string;
  messageType?: string;
}

/** A pass over one queue: what the caller decides for each wanted message. */
export interface PassHandler {
  /** The message (its `messageId`) is one the pass is after. */
  wanted(messageId: string): boolean;
  /**
   * Called for each wanted message found, one at a time: republish it (with
   * `republish`), then say whether the dead-letter copy goes (`ack`, only
   * after a confirmed republish) or stays (`keep`: nacked back in place).
   */
  found(message: GetMessage, republish: (correlationId: string) => Promise<{ sent: Republished; result: RepublishOutcome }>): Promise<'ack' | 'keep'>;
}

/** The newest `x-death` entry, or undefined when the message was never dead-lettered. */
export function deathTarget(message: GetMessage): DeathTarget | undefined {
  const death = message.properties.headers?.['x-death'] as unknown;
  if (!Array.isArray(death) || death.length === 0) return undefined;
  const newest = death[0] as Record<string, unknown>;
  const keys = newest['routing-keys'];
  const routingKey = Array.isArray(keys) && keys.length > 0 ? String(keys[0]) : '';
  return { exchange: String(newest.exchange ?? ''), routingKey, queue: String(newest.queue ?? ''), reason: String(newest.reason ?? '') };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class ReplayBroker {
  readonly #url: string;
  readonly #logger: Logger;
  readonly #user: string;
  #connection: Promise<ChannelModel> | undefined;
  #channel: Promise<ConfirmChannel> | undefined;
  /** Why the channel closed last (the broker's words), for the outcome of what it was doing. */
  #channelError: string | undefined;
  readonly #returned = new Map<string, { replyCode: number; replyText: string }>();
  #closed = false;

  constructor(url: string, logger: Logger) {
    this.#url = url;
    this.#logger = logger;
    let user = 'guest';
    try {
      user = decodeURIComponent(new URL(url).username) || 'guest';
    } catch {
      // amqplib reports a bad URL when it connects
    }
    this.#user = user;
  }

  /** The broker's address without credentials, for messages. */
  get where(): string {
    try {
      const u = new URL(this.#url);
      return `${u.protocol}//${u.host}${u.pathname}`;
    } catch {
      return 'the broker';
    }
  }

  #connect(): Promise<ChannelModel> {
    if (this.#closed) return Promise.reject(new Error('the replay connection is closed'));
    this.#connection ??= amqp.connect(this.#url, { clientProperties: { connection_name: 'hoptrace-collector replay' } }).then(
      (conn) => {
        const forget = () => {
          this.#connection = undefined;
          this.#channel = undefined;
        };
        conn.on('close', forget);
        conn.on('error', (err: Error) => this.#logger.warn({ err }, 'replay connection to RabbitMQ failed'));
        return conn;
      },
      (err: unknown) => {
        this.#connection = undefined;
        // The advice names the cause (a refused login is not a broker that is down) and what to do.
        throw new Error(brokerAdvice(this.#url, err, { setting: '--amqp-url' }), { cause: err });
      },
    );
    return this.#connection;
  }

  #confirmChannel(): Promise<ConfirmChannel> {
    this.#channel ??= this.#connect()
      .then((conn) => conn.createConfirmChannel())
      .then(
        (ch) => {
          this.#channelError = undefined;
          ch.on('error', (err: Error) => {
            this.#channelError = err.message;
          });
          ch.on('close', () => {
            this.#channel = undefined;
          });
          ch.on('return', (msg) => {
            const id = msg.properties.messageId as string | undefined;
            const fields = msg.fields as unknown as { replyCode: number; replyText: string };
            if (id) this.#returned.set(id, { replyCode: fields.replyCode, replyText: fields.replyText });
          });
          return ch;
        },
        (err: unknown) => {
          this.#channel = undefined;
          throw err;
        },
      );
    return this.#channel;
  }

  /**
   * One pass over `queue`: get every message (at most `maxScan`), hand the
   * wanted ones to `handler.found`, hold the others, then nack every held
   * message back in place. Resolves with how many messages it saw; rejects
   * when the queue cannot be read (what the pass held goes back all the same).
   */
  async pass(queue: string, handler: PassHandler, options: { maxScan: number; stopWhen: () => boolean }): Promise<{ scanned: number }> {
    const ch = await this.#confirmChannel();
    const held: GetMessage[] = [];
    let scanned = 0;
    try {
      while (scanned < options.maxScan && !options.stopWhen()) {
        let msg: GetMessage | false;
        try {
          msg = await ch.get(queue, { noAck: false });
        } catch (err) {
          throw new Error(this.#channelError ?? (err as Error).message, { cause: err });
        }
        if (msg === false) break;
        scanned++;
        const id = msg.properties.messageId as string | undefined;
        if (id === undefined || !handler.wanted(id)) {
          held.push(msg);
          continue;
        }
        const message = msg;
        const decision = await handler.found(message, (correlationId) => this.#republish(ch, message, correlationId));
        if (decision === 'ack') ch.ack(message);
        else held.push(message);
      }
    } finally {
      // Back in place, each one (a channel that died has requeued them already).
      for (const m of held) {
        try {
          ch.nack(m, false, true);
        } catch {
          // the channel is gone: the broker requeued what it held
        }
      }
    }
    return { scanned };
  }

  /** Republish a dead-lettered message to its newest x-death's exchange and routing key, and wait for the broker. */
  async #republish(ch: ConfirmChannel, message: GetMessage, correlationId: string): Promise<{ sent: Republished; result: RepublishOutcome }> {
    const p = message.properties;
    const target = deathTarget(message)!;
    const replayOf = String(p.messageId);
    const headers: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(p.headers ?? {})) if (!DEATH_HEADERS.test(k)) headers[k] = v;
    const originalId = typeof headers[REPLAY_OF_HEADER] === 'string' ? (headers[REPLAY_OF_HEADER] as string) : replayOf;
    const replayCount = (Number(headers[REPLAY_COUNT_HEADER]) || 0) + 1;
    const spanId = randomBytes(8).toString('hex');
    const trace = typeof headers.traceparent === 'string' ? TRACEPARENT.exec(headers.traceparent) : null;
    const traceId = trace?.[1];
    headers[REPLAY_OF_HEADER] = originalId;
    headers[REPLAY_COUNT_HEADER] = replayCount;
    headers[CAUSATION_HEADER] = replayOf;
    // The first message of a chain may carry no correlation header (its id is the chain's): the replay,
    // a message with an id of its own, must name the chain.
    headers[CORRELATION_HEADER] = correlationId;
    // The replay is the new message's parent span.
    if (traceId !== undefined) headers.traceparent = `00-${traceId}-${spanId}-01`;
    const messageId = randomUUID();
    const options: Options.Publish = { mandatory: true, messageId, headers };
    if (p.contentType !== undefined) options.contentType = p.contentType;
    if (p.contentEncoding !== undefined) options.contentEncoding = p.contentEncoding;
    if (p.deliveryMode !== undefined) options.deliveryMode = p.deliveryMode;
    if (p.priority !== undefined) options.priority = p.priority;
    if (p.correlationId !== undefined) options.correlationId = p.correlationId;
    if (p.replyTo !== undefined) options.replyTo = p.replyTo;
    if (p.expiration !== undefined) options.expiration = p.expiration;
    if (p.timestamp !== undefined) options.timestamp = p.timestamp;
    if (p.type !== undefined) options.type = p.type;
    if (p.appId !== undefined) options.appId = p.appId;
    // The broker refuses a user id that is not the connection's own (a channel error): kept only when it is.
    if (p.userId !== undefined && p.userId === this.#user) options.userId = p.userId;
    const sent: Republished = {
      ts: Date.now(),
      messageId,
      replayOf,
      originalId,
      replayCount,
      traceId,
      spanId,
      target,
      bodySize: message.content.length,
      ...(p.contentType === undefined ? {} : { contentType: String(p.contentType) }),
      ...(p.type === undefined ? {} : { messageType: String(p.type) }),
    };
    const started = performance.now();
    const confirmed = await new Promise<Error | undefined>((resolve) => {
      try {
        ch.publish(target.exchange, target.routingKey, message.content, options, (err) => resolve(err ?? undefined));
      } catch (err) {
        resolve(err as Error);
      }
    });
    const durationMs = Math.round((performance.now() - started) * 1000) / 1000;
    const returned = this.#returned.get(messageId);
    this.#returned.delete(messageId);
    if (confirmed !== undefined) {
      if (confirmed.message === 'message nacked') return { sent, result: { outcome: 'nack', durationMs, message: 'the broker nacked the republish' } };
      // Give the channel's error event a moment to say why it closed.
      if (this.#channelError === undefined) await sleep(10);
      return { sent, result: { outcome: 'error', message: this.#channelError ?? confirmed.message } };
    }
    if (returned !== undefined) return { sent, result: { outcome: 'returned', ...returned, durationMs } };
    return { sent, result: { outcome: 'ack', durationMs } };
  }

  async close(): Promise<void> {
    this.#closed = true;
    const conn = this.#connection;
    this.#connection = undefined;
    this.#channel = undefined;
    if (conn === undefined) return;
    try {
      await (await conn).close();
    } catch {
      // already closed, or never opened
    }
  }
}
