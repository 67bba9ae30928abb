/**
 * instrument(channel): amqplib's own channel, seen through a Proxy that
 * intercepts publish, sendToQueue, consume, get and the settle methods.
 */
import type { Channel, ConfirmChannel, ConsumeMessage, GetMessage, Message, Options, Replies } from 'amqplib';
import { ConfigError } from './errors.ts';
import type { HoptraceOptions } from './options.ts';
import { ChannelState } from './internal/channel-state.ts';
import { type Config, resolveConfig } from './internal/config.ts';
import { Consumer, pullSource, receive } from './internal/consume.ts';
import { instrumentedPublish, returned } from './internal/publish.ts';
import { settleAll, settleMessage } from './internal/settle.ts';
import { kConfig, kRawChannel } from './internal/symbols.ts';
import { telemetryFailed } from './internal/telemetry.ts';

type AnyFn = (...args: any[]) => any;
type ConfirmCb = (err: any, ok: Replies.Empty) => void;

/**
 * Wrap an amqplib promise-API `Channel` or `ConfirmChannel`. The result is
 * typed exactly as the input and behaves exactly like it, except that
 * messages carry trace, correlation and causation ids and every hop is
 * recorded (a `publish` record per message sent, a `consume` record per
 * delivery). Options are validated here, once (a bad one throws `ConfigError`).
 * Wrapping an already instrumented channel returns it unchanged.
 *
 * A consume handler that throws is recorded (the delivery's record says
 * `error`) and
 * the error is rethrown to amqplib untouched: a 'handler-error' listener
 * receives it, or else amqplib closes the channel and the broker requeues
 * the unsettled messages. A handler whose promise rejects is recorded the
 * same way and the rejection is left unhandled, as with amqplib alone.
 * hoptrace never acks, nacks or rejects on the user's behalf.
 *
 * @example
 * const ch = instrument(await conn.createChannel(), { serviceName: 'billing' });
 */
export function instrument<C extends Channel>(channel: C, options?: HoptraceOptions): C {
  if (isInstrumented(channel)) return channel;
  if (
    channel === null ||
    typeof channel !== 'object' ||
    typeof channel.publish !== 'function' ||
    typeof channel.consume !== 'function' ||
    typeof channel.ack !== 'function'
  ) {
    throw new ConfigError('hoptrace: instrument() needs an amqplib promise-API Channel or ConfirmChannel (from connection.createChannel())');
  }
  return wrapChannel(channel, resolveConfig(options));
}

function isInstrumented(channel: unknown): boolean {
  return channel !== null && typeof channel === 'object' && (channel as { [kRawChannel]?: unknown })[kRawChannel] !== undefined;
}

/** Wrap with an already resolved configuration (shared by a connection's channels). */
export function wrapChannel<C extends Channel>(raw: C, cfg: Config): C {
  if (isInstrumented(raw)) return raw;
  const confirm = typeof (raw as unknown as ConfirmChannel).waitForConfirms === 'function';
  const chan = new ChannelState(raw, cfg, confirm);
  // Our listeners never change amqplib's behaviour: 'return' and 'close'
  // have no default action, and we add no 'error' listener (that would
  // swallow errors that should surface).
  raw.on('return', (msg: Message) => {
    try {
      returned(chan, msg);
    } catch (err) {
      telemetryFailed(cfg, 'internal', err);
    }
  });
  raw.on('close', chan.onClose);
  if (chan.confirm) {
    // Before amqplib's own listeners, which run the callbacks (a throwing one would stop later listeners).
    raw.prependListener('ack', chan.onAck);
    raw.prependListener('nack', chan.onNack);
  }

  const overrides: Record<string, AnyFn> = Object.create(null);
  overrides.publish = function publish(
    exchange: string,
    routingKey: string,
    content: Buffer,
    options?: Options.Publish,
    callback?: ConfirmCb,
  ): boolean {
    return instrumentedPublish(chan, exchange, routingKey, content, options, callback);
  };
  overrides.sendToQueue = function sendToQueue(
    queue: string,
    content: Buffer,
    options?: Options.Publish,
    callback?: ConfirmCb,
  ): boolean {
    return instrumentedPublish(chan, '', queue, content, options, callback);
  };
  overrides.consume = function consume(
    queue: string,
    onMessage: (msg: ConsumeMessage | null) => void,
    options?: Options.Consume,
  ): Promise<Replies.Consume> {
    // Let amqplib reject bad arguments exactly as it would.
    if (typeof onMessage !== 'function') return raw.consume(queue, onMessage, options);
    const consumer = new Consumer(chan, queue, onMessage, options?.noAck === true);
    return raw.consume(queue, consumer.onMessage, options);
  };
  overrides.get = function get(queue: string, options?: Options.Get): Promise<GetMessage | false> {
    const noAck = options?.noAck === true;
    return raw.get(queue, options).then((msg) => {
      if (msg !== false) {
        try {
          receive(pullSource(chan, queue, noAck), msg);
        } catch (err) {
          telemetryFailed(cfg, 'internal', err);
        }
      }
      return msg;
    });
  };
  // Settle: amqplib first (if it throws, nothing was settled and nothing is recorded).
  overrides.ack = function ack(message: Message, allUpTo?: boolean): void {
    raw.ack(message, allUpTo);
    settleMessage(chan, message, 'ack', undefined, allUpTo === true);
  };
  overrides.nack = function nack(message: Message, allUpTo?: boolean, requeue?: boolean): void {
    raw.nack(message, allUpTo, requeue);
    settleMessage(chan, message, 'nack', requeue ?? true, allUpTo === true);
  };
  overrides.reject = function reject(message: Message, requeue?: boolean): void {
    raw.reject(message, requeue);
    settleMessage(chan, message, 'reject', requeue ?? true, false);
  };
  // Closing hands the writer's pending lines to the destination at once (and the close event
  // writes what is still open): a service that closes and then ends its logger loses no line.
  overrides.close = function close(): Promise<void> {
    try {
      cfg.writer.flush();
    } catch (err) {
      telemetryFailed(cfg, 'internal', err);
    }
    return raw.close();
  };
  overrides.ackAll = function ackAll(): void {
    raw.ackAll();
    settleAll(chan, 'ack', undefined);
  };
  overrides.nackAll = function nackAll(requeue?: boolean): void {
    raw.nackAll(requeue);
    settleAll(chan, 'nack', requeue ?? true);
  };

  // Why a Proxy over the real channel, and why other methods run with the
  // real channel as `this`: amqplib keeps its state in plain properties it
  // reads and rewrites (`reply`, `pending`, `accept`, `sendImmediately` is
  // replaced on close, ...). Calling through with `this` = the real channel
  // means every write lands there, and the channel the connection
  // dispatches frames to is the one holding the state. A wrapper class or a
  // prototype copy would split that state. Methods returning the channel
  // itself (EventEmitter's `on`, ...) return the proxy, so chained calls stay
  // instrumented. Wrappers are made once per method and reused.
  const cache = new Map<PropertyKey, { fn: AnyFn; wrapped: AnyFn }>();
  let proxy: C;
  const handler: ProxyHandler<C> = {
    get(target, prop) {
      if (typeof prop === 'string') {
        const own = overrides[prop];
        if (own !== undefined) return own;
      } else if (prop === kRawChannel) {
        return target;
      } else if (prop === kConfig) {
        return cfg;
      }
      const value: unknown = Reflect.get(target, prop, target);
      if (typeof value !== 'function' || prop === 'constructor') return value;
      const hit = cache.get(prop);
      if (hit !== undefined && hit.fn === value) return hit.wrapped;
      const fn = value as AnyFn;
      const wrapped = function (this: unknown, ...args: unknown[]): unknown {
        const result = Reflect.apply(fn, target, args);
        return result === target ? proxy : result;
      };
      cache.set(prop, { fn, wrapped });
      return wrapped;
    },
    set(target, prop, value) {
      return Reflect.set(target, prop, value, target);
    },
  };
  proxy = new Proxy(raw, handler);
  return proxy;
}
