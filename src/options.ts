/**
 * The one options object shared by `instrument()` and `connect()`, and its
 * validation. Options are read and checked once, when a channel is wrapped;
 * nothing here runs per message.
 */
import type { TracerProvider } from '@opentelemetry/api';
import type { Logger } from 'pino';
import type { AnyHopRecord } from './contract/hop.ts';

/** What a payload `redact` function is told about the message it is redacting. */
export interface PayloadInfo {
  /** `send` for an outgoing message, `receive` for a delivery. */
  direction: 'send' | 'receive';
  exchange: string;
  routingKey: string;
  contentType: string | undefined;
  /** AMQP `type` property. */
  messageType: string | undefined;
  /** The message headers as they travel (read-only: do not modify). */
  headers: Readonly<Record<string, unknown>> | undefined;
}

/** Payload capture settings (see {@link HoptraceOptions.capturePayload}). */
export interface CapturePayloadOptions {
  /**
   * Bytes of the body kept; longer bodies are cut and the hop says
   * `payloadTruncated: true`.
   * @default 4096
   */
  maxBytes?: number;
  /**
   * Rewrites the captured text before it is logged, e.g. to mask personal
   * data. If it throws, the payload is left out of the hop (never logged
   * unredacted) and the failure is counted.
   * @example (text) => text.replace(/"email":"[^"]*"/g, '"email":"***"')
   */
  redact?: (text: string, message: PayloadInfo) => string;
}

/** Callbacks for what hoptrace records. Errors they throw are contained and counted. */
export interface HoptraceHooks {
  /**
   * Called with every record, after it is written (also when the logger's
   * level leaves it out): version-2 `publish` and `consume` records (an
   * `open` one, then the complete one, for a side unfinished after
   * `recordGraceMs`), and version-1 `return` hops. A record here always
   * has its `instance` (a line may leave it out when the pino line's own
   * `hostname` and `pid` say it). Must not modify it.
   * @example onHop: (record) => metrics.increment(`records.${record.kind}`)
   */
  onHop?: (record: Readonly<AnyHopRecord>) => void;
}

/**
 * Options for {@link instrument} and {@link connect}. Every field is optional.
 *
 * @example
 * import pino from 'pino';
 * import { connect } from 'hoptrace';
 *
 * const conn = await connect(process.env.AMQP_URL, {
 *   serviceName: 'family-account',
 *   logger: pino(),
 *   capturePayload: { maxBytes: 1024, redact: (text) => text.replace(/\d{4,}/g, '****') },
 *   hooks: { onHop: (hop) => console.log(hop.kind, hop.messageId) },
 * });
 * const ch = await conn.createChannel(); // instrumented
 */
export interface HoptraceOptions {
  /**
   * Name of this service, written into every record (`service`). At most
   * 255 bytes of UTF-8 and no control characters (a longer or odd one is a
   * `ConfigError` when the channel is wrapped: an AMQP short string could
   * not carry it).
   * @default process.env.OTEL_SERVICE_NAME, else 'unknown_service:node'
   * @example 'member-service'
   */
  serviceName?: string;
  /**
   * pino logger records are written to: a line per record under the `hop`
   * key, one `publish` record per message sent and one `consume` record per
   * delivery (`info`; `warn` for returns, broker nacks, nacks and rejects;
   * `error` for handler failures), respecting the logger's level. For a
   * plain pino logger hoptrace builds these lines itself and writes them to
   * the logger's destination in batches (one write at most 25 ms after a
   * batch's first line, and on exit);
   * a logger with a mixin, `formatters.log`, hooks, redaction or a `hop`
   * serializer gets them through `logger.info({ hop })` instead.
   * @default `pino({ name: 'hoptrace' }, pino.destination({ dest: 1, sync: false, maxWrite: 4096 }))`:
   *   stdout, asynchronous, flushed on exit
   * @example pino({ level: 'info' }, pino.destination({ dest: '/var/log/hops.ndjson', sync: true }))
   */
  logger?: Logger;
  /**
   * Header names for the correlation and causation ids, for systems that
   * already carry them under other names.
   * @default { correlationId: 'x-correlation-id', causationId: 'x-causation-id' }
   * @example { correlationId: 'x-request-id' }
   */
  headerNames?: { correlationId?: string; causationId?: string };
  /**
   * Record message bodies in `send` and `receive` hops. Off by default:
   * bodies often hold personal data. `true` means `{ maxBytes: 4096 }`.
   * @default false
   * @example { maxBytes: 2048, redact: (text) => text.replace(/"password":"[^"]*"/g, '"password":"***"') }
   */
  capturePayload?: boolean | CapturePayloadOptions;
  /**
   * Callbacks for recorded hops.
   * @default {}
   * @example { onHop: (hop) => forward(hop) }
   */
  hooks?: HoptraceHooks;
  /**
   * How a consumer span relates to the producer's span: `child` continues the
   * producer's trace; `link` starts a new trace per delivery with a span link
   * to the producer (for long-lived or fan-out flows).
   * @default 'child'
   * @example 'link'
   */
  consumerSpanParent?: 'child' | 'link';
  /**
   * A delivery that is neither acked, nacked nor rejected within this many
   * milliseconds has its consumer span ended (with a `hoptrace.settle_timeout`
   * event) and its bookkeeping dropped, so nothing leaks. A later settle is
   * still recorded as a hop.
   * @default 300000
   * @example 60_000
   */
  settleTimeoutMs?: number;
  /**
   * A message side (a publish waiting for its confirm, a delivery not yet
   * handled and settled) unfinished for this many milliseconds has an
   * `open` record written at once with what is known, so a delivery that
   * never settles still reaches the log (and the collector calls it
   * stuck); the complete record follows when it finishes. This is also
   * what a crash can lose at most, besides the last 25 ms batch of lines
   * not yet handed to the destination (see the README, "The hop record").
   * @default 1000
   * @example 5_000
   */
  recordGraceMs?: number;
  /**
   * Copy message headers into records, each value as a string of at most
   * 256 characters (a longer one is cut, ends with `…` and the record says
   * `truncated`), at most 32 headers.
   * @default true
   * @example false
   */
  recordHeaders?: boolean;
  /**
   * Tracer provider for spans.
   * @default the global provider (`trace.getTracerProvider()`); with no SDK
   *   registered no spans are made, but ids are still generated and propagated
   * @example new TracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
   */
  tracerProvider?: TracerProvider;
}
