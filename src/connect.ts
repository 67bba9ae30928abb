/**
 * connect(url, options): amqplib's connect, whose channels come back
 * instrumented, and an unreachable broker reported with a code and a fix.
 */
import amqp, { type Channel, type ChannelModel, type ChannelOptions, type ConfirmChannel, type Options } from 'amqplib';
import { ErrorCodes, HoptraceError } from './errors.ts';
import { wrapChannel } from './instrument.ts';
import type { HoptraceOptions } from './options.ts';
import { resolveConfig } from './internal/config.ts';
import { Defaults, Env } from './contract/semconv.ts';
import { redactUrl } from './contract/url.ts';
import { describe } from './internal/telemetry.ts';

/** amqplib's socket options (TLS, heartbeat-independent socket settings, client properties). */
export type SocketOptions = Parameters<typeof amqp.connect>[1];

/**
 * Connect to RabbitMQ. Returns amqplib's own `ChannelModel`; its
 * `createChannel()` and `createConfirmChannel()` return instrumented
 * channels sharing one configuration. Options are validated before
 * connecting.
 *
 * @param url AMQP URL or amqplib connect object.
 *   Default: `process.env.AMQP_URL`, else `amqp://guest:guest@localhost:5672`.
 * @param options hoptrace options (see {@link HoptraceOptions}).
 * @param socketOptions passed to amqplib's `connect` unchanged.
 * @throws ConfigError for a bad option; HoptraceError with code
 *   `HOPTRACE_ERR_BROKER_UNREACHABLE` when the broker cannot be reached.
 * @example
 * const conn = await connect(undefined, { serviceName: 'member-service' });
 * const ch = await conn.createConfirmChannel();
 */
export async function connect(
  url?: string | Options.Connect,
  options?: HoptraceOptions,
  socketOptions?: SocketOptions,
): Promise<ChannelModel> {
  const cfg = resolveConfig(options);
  const env = process.env[Env.AMQP_URL];
  const target = url ?? (env !== undefined && env !== '' ? env : Defaults.AMQP_URL);
  let model: ChannelModel;
  try {
    model = await amqp.connect(target, socketOptions);
  } catch (cause) {
    throw new HoptraceError(
      ErrorCodes.BROKER_UNREACHABLE,
      `hoptrace: cannot connect to RabbitMQ at ${showUrl(target)}: ${describe(cause)}. ` +
        `Check that the broker is running and reachable from here, and that the URL (argument or ${Env.AMQP_URL}) and its credentials are right.`,
      { cause },
    );
  }
  // The model is ours (made just now), so its two factories are replaced in
  // place: everything else about it stays amqplib's.
  const createChannel = model.createChannel;
  const createConfirmChannel = model.createConfirmChannel;
  model.createChannel = async function (this: ChannelModel, channelOptions?: ChannelOptions): Promise<Channel> {
    return wrapChannel(await createChannel.call(model, channelOptions), cfg);
  };
  model.createConfirmChannel = async function (channelOptions?: ChannelOptions): Promise<ConfirmChannel> {
    return wrapChannel(await createConfirmChannel.call(model, channelOptions), cfg);
  };
  return model;
}

/** The URL without its password, for error messages. */
function showUrl(url: string | Options.Connect): string {
  if (typeof url !== 'string') {
    return `${url.protocol ?? 'amqp'}://${url.hostname ?? 'localhost'}:${url.port ?? 5672}${url.vhost === undefined ? '' : `/${url.vhost}`}`;
  }
  // Text that is no URL is quoted, so the message shows exactly what was given.
  return URL.canParse(url) ? redactUrl(url) : JSON.stringify(redactUrl(url));
}
