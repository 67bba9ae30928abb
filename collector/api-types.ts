/**
 * The collector's HTTP API response shapes: the contract between the chain
 * engine, the HTTP server and the UI. JSON over the wire; every timestamp is
 * epoch milliseconds as the recording host's clock gave it unless named
 * `adjusted…`.
 */
import type { HopKind, HopRecord } from '../src/hop.ts';

/** Status of one message, worst first in {@link STATUS_SEVERITY}. */
export type MessageStatus =
  | 'ok'
  | 'in-flight'
  | 'failed'
  | 'dead-lettered'
  | 'discarded'
  | 'unroutable'
  | 'lost'
  | 'stuck'
  | 'redelivery-loop';

/** A chain's status is the most severe status of its messages. */
export type ChainStatus = MessageStatus;

/** Every status, most severe first; a chain takes the first one any of its messages has. */
export const STATUS_SEVERITY: readonly MessageStatus[] = [
  'discarded',
  'dead-lettered',
  'failed',
  'redelivery-loop',
  'unroutable',
  'lost',
  'stuck',
  'in-flight',
  'ok',
];

/** The statuses that are problems: every status but `in-flight` and `ok`, most severe first. */
export const PROBLEM_STATUSES: readonly MessageStatus[] = STATUS_SEVERITY.filter((s) => s !== 'in-flight' && s !== 'ok');

/** A hop as stored: the record plus the collector's own bookkeeping. */
export interface StoredHop extends HopRecord {
  /** Store row id; stable for the life of the store, unique across chains. */
  id: number;
  /** When the collector received it, epoch ms (collector clock). */
  receivedAt: number;
}

/** A hop in a chain response, in causal order. */
export interface ChainHop extends StoredHop {
  /** Position in causal order, 0-based. */
  seq: number;
  /** `ts` corrected by the service's estimated clock offset: for display only; `ts` stays raw. */
  adjustedTs: number;
  /**
   * On a `receive`: store id of the hop this delivery's time in the queue
   * started at: the publish; for a redelivery, the settle that requeued it
   * (else the previous attempt's last hop); for a dead-lettered copy, the
   * reject that dead-lettered it. Absent when none of those was recorded.
   */
  waitSinceHopId?: number;
}

/** What one consumer (one queue, one service) did with one message. */
export interface MessageDelivery {
  service: string;
  queue: string;
  consumerTag?: string;
  /** First `receive` of this message from this queue. */
  receivedTs?: number;
  /** Last `process` end. */
  processedTs?: number;
  /** Final `settle`. */
  settledTs?: number;
  /** send (for a dead-lettered copy: the reject that dead-lettered it) → first receive, on adjusted clocks. */
  queueWaitMs?: number;
  /**
   * True when that wait spans two services' clocks and a clock-skew estimate
   * shifted either of them: the figure is only as good as the estimate.
   */
  queueWaitApprox?: boolean;
  /** Sum of `process.durationMs` over attempts. */
  handlingMs?: number;
  /** Final settle outcome. */
  settle?: { outcome: 'ack' | 'nack' | 'reject'; requeue: boolean };
  /** Process attempts that ended in error. */
  errors: number;
  /** How many receives of this message from this queue were redeliveries. */
  redeliveries: number;
  /** Store ids of this delivery's hops (receives, processes, settles), in causal order. */
  hopIds: number[];
}

/** One dead-letter event in a message's history. */
export interface DeadLetterInfo {
  /** Queue it was dead-lettered from. */
  queue: string;
  reason: string;
  count: number;
  exchange: string;
  routingKeys: string[];
  /** Queue that received the dead-lettered copy, when seen. */
  deadLetterQueue?: string;
}

/** One message of a chain, a node of the causal graph. */
export interface ChainMessage {
  messageId: string;
  /** `causationId`: the message whose handler published this one. */
  parentMessageId?: string;
  /** Messages this one caused. */
  childMessageIds: string[];
  /** Who published it (from the `send` hop), when seen. */
  publisher?: { service: string; instance: string; exchange: string; routingKey: string; ts: number };
  messageType?: string;
  deliveries: MessageDelivery[];
  status: MessageStatus;
  /** A sentence saying why the status is what it is ("handler threw TypeError: …"). */
  statusReason?: string;
  /**
   * Queue wait of the critical delivery: the one with the longest queue wait
   * plus handling (the only one when there is one). Deliveries to several
   * queues run in parallel, so their figures are never added up; each
   * delivery has its own in `deliveries`.
   */
  queueWaitMs?: number;
  /** True when {@link queueWaitMs} rests on a clock-skew estimate (see {@link MessageDelivery.queueWaitApprox}). */
  queueWaitApprox?: boolean;
  /** Handling time of the critical delivery (the sum over its attempts). */
  handlingMs?: number;
  /** Index in `deliveries` of the critical delivery the two figures above come from. */
  criticalDelivery?: number;
  redeliveryCount: number;
  deadLetters: DeadLetterInfo[];
  /** Store ids of this message's hops, in causal order. */
  hopIds: number[];
}

/**
 * What a clock offset rests on:
 * - `reference`: the clock the others are measured against (offset 0);
 * - `measured`: traffic in both directions (to and from clocks already
 *   placed) bounds the offset from both sides; the estimate lies inside
 *   [`lowerMs`, `upperMs`];
 * - `bounded`: the constraints bound it from one side only (traffic one way):
 *   the estimate is the smallest correction that keeps the chain causal
 *   (0 when none is needed), not a measurement;
 * - `none`: no cross-service hop relates this clock to the reference;
 * - `conflicting`: the constraints contradict each other (a clock jumped, or
 *   bad ids link unrelated hops); the offset is a best effort.
 */
export type SkewBasis = 'reference' | 'measured' | 'bounded' | 'none' | 'conflicting';

/** Estimated clock offset of one service, relative to the chain's reference service. */
export interface ServiceSkew {
  service: string;
  /** Milliseconds added to this service's timestamps to make the chain causal (0 for the reference). */
  offsetMs: number;
  /** How many causal constraints (send → receive pairs) the estimate rests on. */
  samples: number;
  /** True for the service whose clock the others are measured against. */
  reference: boolean;
  basis: SkewBasis;
  /**
   * The interval of offsets that keep every causal constraint this service
   * is part of, with the other clocks at their estimates: `offsetMs` lies
   * inside. An absent bound is unbounded on that side.
   */
  lowerMs?: number;
  upperMs?: number;
}

/** The first hop where something went wrong. */
export interface FirstFailure {
  hopId: number;
  messageId: string;
  kind: HopKind;
  status: MessageStatus;
  reason: string;
}

/**
 * Something a chain was still waiting for when it was judged: a message sent
 * and not received, received and not settled, requeued and not redelivered,
 * or rejected without requeue with its dead-lettered copy not seen yet.
 */
export interface OpenWait {
  kind: 'unreceived' | 'unsettled' | 'requeued' | 'dead-letter';
  /** `lost` or `stuck` once past its limit, else `in-flight`. */
  status: 'lost' | 'stuck' | 'in-flight';
  messageId: string;
  /** Store id of the hop it has been waiting since (the send, the receive, the settle). */
  hopId: number;
  /** The service that hop belongs to. */
  service: string;
  /** The queue it waits in or was received from, when known. */
  queue?: string;
  /** How long it had waited when judged: `judgedAt` − that hop's raw `ts`. */
  waitedMs: number;
}

/** A delivery that failed or was requeued and then succeeded on a later attempt. */
export interface Recovery {
  messageId: string;
  service: string;
  queue: string;
  /** Attempts in all, the successful one included. */
  attempts: number;
  /** Handler errors before the success, by text (`GrinderJammedError: grinder jammed`), first seen first. */
  errors: { text: string; count: number }[];
  /** Attempts settled with nack/reject and requeue. */
  requeues: number;
  /** Store id of the first failing hop (the failed process, else the requeueing settle). */
  hopId: number;
}

/** `GET /api/chains/:correlationId` */
export interface ChainDetail {
  correlationId: string;
  status: ChainStatus;
  /** Every distinct non-ok status among the messages, most severe first (UI badges). */
  problems: MessageStatus[];
  firstFailure?: FirstFailure;
  /** Deliveries that failed or were requeued before a later attempt succeeded; absent when none. */
  recoveries?: Recovery[];
  services: string[];
  traceIds: string[];
  /** Earliest / latest adjusted timestamp. */
  startTs: number;
  endTs: number;
  /** The span of the recorded hops; while {@link open} is not empty the chain has lasted longer. */
  durationMs: number;
  hopCount: number;
  messageCount: number;
  /** "Now" on the collector's clock when the statuses were judged, epoch ms. */
  judgedAt: number;
  /** What the chain was still waiting for at `judgedAt`; empty when nothing. */
  open: OpenWait[];
  /** Clock offsets; every service of the chain appears once. */
  skew: ServiceSkew[];
  /** Messages with no parent in this chain. */
  rootMessageIds: string[];
  messages: ChainMessage[];
  /** All hops, in causal order (`seq` ascending). */
  hops: ChainHop[];
}

/**
 * Lost or stuck messages of a chain, on the topology edge where they stopped:
 * sent and never received, on the exchange → queue edge when the queue is
 * known (default exchange: the routing key), else on the publisher →
 * exchange edge; requeued and never redelivered, or received and never
 * settled, on the queue → consumer edge.
 */
export interface StalledEdge {
  status: 'lost' | 'stuck';
  /** Topology node ids, as in {@link TopologyEdge}. */
  from: string;
  to: string;
  count: number;
  /** Raw timestamp of the earliest hop they stopped after. */
  ts: number;
}

/** The first failure as a list row shows it. */
export interface ChainFailureSummary {
  status: MessageStatus;
  /** The service whose hop is the first failure. */
  service: string;
  kind: HopKind;
  /** The sentence of {@link FirstFailure.reason}, at most 300 characters. */
  reason: string;
  /** The failing hop's error, `Type: message` (at most 300 characters), when it carried one. */
  error?: string;
}

/** One row of `GET /api/chains`. */
export interface ChainSummary {
  correlationId: string;
  status: ChainStatus;
  problems: MessageStatus[];
  /** For a chain with a problem: where it first failed. */
  failure?: ChainFailureSummary;
  /** True while the chain waits for something (see {@link ChainDetail.open}): its duration is still growing. */
  open?: boolean;
  /** Lost and stuck messages by topology edge; absent when none. */
  stalled?: StalledEdge[];
  /** True when any delivery of the chain was a redelivery. */
  redelivered: boolean;
  services: string[];
  traceIds: string[];
  hopCount: number;
  messageCount: number;
  startTs: number;
  endTs: number;
  durationMs: number;
  /** Routing key (or queue) and type of the chain's first message, for a readable label. */
  rootRoutingKey?: string;
  rootMessageType?: string;
  /** Last time a hop of this chain was ingested (collector clock). */
  updatedAt: number;
}

/** `GET /api/chains` */
export interface ChainList {
  items: ChainSummary[];
  /** Opaque; pass as `cursor` for the next (older) page. `null` on the last page. */
  nextCursor: string | null;
}

/** `GET /api/messages/:messageId` */
export interface MessageDetail {
  correlationId: string;
  message: ChainMessage;
  hops: ChainHop[];
}

export type TopologyNodeKind = 'service' | 'exchange' | 'queue';

export interface TopologyNode {
  /** `service:NAME`, `exchange:NAME` (`exchange:` for the default exchange), `queue:NAME`. */
  id: string;
  kind: TopologyNodeKind;
  label: string;
}

export interface TopologyEdge {
  from: string;
  to: string;
  /** Messages that went along this edge; 0 for an edge drawn only for its lost or stuck messages. */
  count: number;
  /** Of those, how many failed (handler error, nack/reject, return, dead-letter). */
  errorCount: number;
  errorRate: number;
  /** Queue wait percentiles, on edges into a consuming service. */
  queueWaitP50Ms?: number;
  queueWaitP95Ms?: number;
  /** Messages per second over the part of the window in which this edge had traffic (first to last message, at least a minute). */
  ratePerSec?: number;
  /** Messages that stopped on this edge, sent in the window: never received (`lost`), or received and never settled (`stuck`). */
  lostCount?: number;
  stuckCount?: number;
}

/** `GET /api/topology` */
export interface Topology {
  nodes: TopologyNode[];
  edges: TopologyEdge[];
  /** Time window the counts cover, epoch ms. */
  from: number;
  to: number;
  /**
   * The part of the window that had traffic (first to last message, to the
   * minute where only minute totals are kept), at least one minute long.
   * Absent when the window had none.
   */
  trafficFrom?: number;
  trafficTo?: number;
}

/**
 * `POST /v1/hops` → 202. When every record is valid the answer is exactly
 * `{ accepted, duplicates }`. When some are invalid, the valid ones are
 * committed all the same and the answer adds `rejected` and `rejections`
 * (like OTLP's `partial_success`). When every record is invalid the answer
 * is a `400` error body (`HOPTRACE_ERR_INVALID_HOP`) carrying the same two
 * fields, and nothing is stored.
 */
export interface IngestResult {
  /** Hops committed from this request (a version-2 record counts as the hops it stands for). */
  accepted: number;
  /** Of those, how many were already stored (idempotent retries). */
  duplicates: number;
  /** Records of the request that were invalid and not stored; absent when there were none. */
  rejected?: number;
  /** The first 1,000 of them, in request order; absent when there were none. */
  rejections?: RejectedRecord[];
}

/** One invalid record of an ingest request. */
export interface RejectedRecord {
  /** Position of the record in the request (0-based: NDJSON line among the non-blank ones, or array index). */
  index: number;
  /** Dotted path of the offending field (`hop.death[0].count`), `(record)` or `hop` for a record that is no object. */
  field: string;
  /** What the field must be (`must be at least 0`). */
  reason: string;
}

/** `GET /api/live` event payloads (server-sent events, `event: chain`). */
export interface LiveChainEvent {
  type: 'new' | 'changed';
  chain: ChainSummary;
}

/** `GET /healthz` */
export interface Health {
  status: 'ok';
  version: string;
  hops: number;
  uptimeSec: number;
}

/** `GET /api/config`: what the UI needs to know about this collector. */
export interface UiConfig {
  version: string;
  /** Base URL of a Jaeger UI, when configured (`--jaeger-url` / `HOPTRACE_JAEGER_URL`); the UI links `${jaegerUrl}/trace/${traceId}`. */
  jaegerUrl?: string;
  lostAfterMs: number;
  stuckAfterMs: number;
}
