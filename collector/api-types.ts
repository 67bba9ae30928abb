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
  | 'unroutable'
  | 'lost'
  | 'stuck'
  | 'redelivery-loop';

/** A chain's status is the most severe status of its messages. */
export type ChainStatus = MessageStatus;

/** Every status, most severe first; a chain takes the first one any of its messages has. */
export const STATUS_SEVERITY: readonly MessageStatus[] = [
  'dead-lettered',
  'failed',
  'redelivery-loop',
  'unroutable',
  'lost',
  'stuck',
  'in-flight',
  'ok',
];

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
  /** send → first receive, on adjusted clocks. */
  queueWaitMs?: number;
  /** Sum of `process.durationMs` over attempts. */
  handlingMs?: number;
  /** Final settle outcome. */
  settle?: { outcome: 'ack' | 'nack' | 'reject'; requeue: boolean };
  /** Process attempts that ended in error. */
  errors: number;
  /** How many receives of this message from this queue were redeliveries. */
  redeliveries: number;
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
  /** Earliest queue wait over deliveries. */
  queueWaitMs?: number;
  /** Total handling time over deliveries. */
  handlingMs?: number;
  redeliveryCount: number;
  deadLetters: DeadLetterInfo[];
  /** Store ids of this message's hops, in causal order. */
  hopIds: number[];
}

/** Estimated clock offset of one service, relative to the chain's reference service. */
export interface ServiceSkew {
  service: string;
  /** Milliseconds added to this service's timestamps to make the chain causal (0 for the reference). */
  offsetMs: number;
  /** How many causal constraints (send → receive pairs) the estimate rests on. */
  samples: number;
  /** True for the service whose clock the others are measured against. */
  reference: boolean;
}

/** The first hop where something went wrong. */
export interface FirstFailure {
  hopId: number;
  messageId: string;
  kind: HopKind;
  status: MessageStatus;
  reason: string;
}

/** `GET /api/chains/:correlationId` */
export interface ChainDetail {
  correlationId: string;
  status: ChainStatus;
  /** Every distinct non-ok status among the messages, most severe first (UI badges). */
  problems: MessageStatus[];
  firstFailure?: FirstFailure;
  services: string[];
  traceIds: string[];
  /** Earliest / latest adjusted timestamp. */
  startTs: number;
  endTs: number;
  durationMs: number;
  hopCount: number;
  messageCount: number;
  /** Clock offsets; every service of the chain appears once. */
  skew: ServiceSkew[];
  /** Messages with no parent in this chain. */
  rootMessageIds: string[];
  messages: ChainMessage[];
  /** All hops, in causal order (`seq` ascending). */
  hops: ChainHop[];
}

/** One row of `GET /api/chains`. */
export interface ChainSummary {
  correlationId: string;
  status: ChainStatus;
  problems: MessageStatus[];
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
  /** Messages that went along this edge. */
  count: number;
  /** Of those, how many failed (handler error, nack/reject, return, dead-letter). */
  errorCount: number;
  errorRate: number;
  /** Queue wait percentiles, on edges into a consuming service. */
  queueWaitP50Ms?: number;
  queueWaitP95Ms?: number;
  /** Messages per second over the queried window. */
  ratePerSec?: number;
}

/** `GET /api/topology` */
export interface Topology {
  nodes: TopologyNode[];
  edges: TopologyEdge[];
  /** Time window the counts cover, epoch ms. */
  from: number;
  to: number;
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
