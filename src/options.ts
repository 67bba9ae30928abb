/**
 * The one options object shared by `instrument()` and `connect()`, and its
 * validation. Options are read and checked once, when a channel is wrapped;
 * nothing here runs per message.
 */
import type { TracerProvider } from '@opentelemetry/api';
import type { Logger } from 'pino';
import type { HopRecord } from './hop.ts';

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
   * Called with every hop record, after it is logged. Must not modify it.
   * @example onHop: (hop) => metrics.increment(`hops.${hop.kind}`)
   */
  onHop?: (hop: Readonly<HopRecord>) => void;
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
   * Name of this service, written into every hop (`service`) and as the
   * AMQP `appId` of messages that carry none.
   * @default process.env.OTEL_SERVICE_NAME, else 'unknown_service:node'
   * @example 'member-service'
   */
  serviceName?: string;
  /**
   * pino logger every hop is written to, one line per hop under the `hop`
   * key (`info`; `warn` for returns, nacks and rejects; `error` for handler
   * failures).
   * For throughput, give it a destination of its own: a file written
   * synchronously costs least per line, `pino.destination({ dest, sync: true })`;
   * asynchronous destinations cost less with a small `maxWrite` (4096).
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
   * Copy message headers into `send` and `receive` hops, each value as a
   * string of at most 256 characters, at most 32 headers.
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
