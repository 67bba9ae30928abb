/**
 * The collector's HTTP API response shapes: the contract between the chain
 * engine, the HTTP server and the UI. JSON over the wire; every timestamp is
 * epoch milliseconds as the recording host's clock gave it unless named
 * `adjusted…`.
 */
import type { HopKind, HopRecord } from '../src/contract/hop.ts';

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
   * reject that dead-lettered it. On a `replay`: the dead letter it started
   * from (the reject, or the receive of the dead-lettered copy). Absent when
   * none of those was recorded.
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
  /**
   * True when the failing message was replayed since (see {@link ReplayAttempt}):
   * the chain's status follows the replay, and this failure is its history. A
   * chain's first failure is one that was not replayed whenever there is one.
   */
  replayed?: boolean;
}

/**
 * One problem delivery of a chain, as failure groups count it: a message's
 * worst problem at one place (a consumer's queue, or a publish), with the
 * fingerprint of its group (`failure-fingerprint.ts`).
 */
export interface ChainFailure {
  /** 16 hex characters: the group (`GET /api/failures/:fingerprint`). */
  fingerprint: string;
  status: MessageStatus;
  messageId: string;
  /** Store id of the hop the problem shows at (the failing handler's reject, the return, …). */
  hopId: number;
  /** That hop's raw timestamp: when the problem happened, to the group's minute buckets. */
  ts: number;
  service: string;
  /** The queue of a consumer's delivery. */
  queue?: string;
  /** The exchange and routing key of a publish (problems of the publish: unroutable, lost before any queue). */
  exchange?: string;
  routingKey?: string;
  /** The error's type, when there was an error. */
  errorType?: string;
  /** The error's message (or the broker's reply text) as it was, at most 300 characters. */
  message?: string;
  /** The message with numbers, ids and quoted values masked: the group's pattern. */
  pattern: string;
  /** The message was replayed since: the replay decides what became of it. */
  replayed: boolean;
  /** For a dead-lettered message: the queue holding the dead-lettered copy, when known (a receive of the copy, or `--dead-letter-queue`). */
  deadLetterQueue?: string;
}

/** What a replay attempt did (the `replay` hop's outcome). */
export type ReplayOutcome = 'replayed' | 'unroutable' | 'rejected' | 'not-found' | 'error';

/** One replay attempt of a dead-lettered message of a chain (a `replay` hop). */
export interface ReplayAttempt {
  /** Store id of the `replay` hop. */
  hopId: number;
  /** The dead-lettered message it replays. */
  messageId: string;
  /** When the collector made the attempt (its clock), epoch ms. */
  ts: number;
  requestedBy?: string;
  outcome: ReplayOutcome;
  /** `replayed`: the republished message (a new id, caused by the dead-lettered one). */
  replayMessageId?: string;
  /** `replayed`: the republished message's status now; the chain's status follows it. */
  replayStatus?: MessageStatus;
  /** Why it moved nothing (the message stays in its dead-letter queue, or was not there). */
  reason?: string;
  /** The dead-letter queue it was taken from (or looked for in). */
  deadLetterQueue?: string;
  /** Where it was republished to: the newest `x-death` entry's exchange and routing key. */
  exchange?: string;
  routingKey?: string;
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
  /**
   * True when a dead-lettered message of the chain was replayed (republished
   * from its dead-letter queue): the chain's `status` and `problems` follow
   * the replays, the replayed messages keep their own status as history.
   * Absent when none was.
   */
  replayed?: boolean;
  /** Every problem delivery of the chain with its failure group, replayed ones included; absent when none. */
  failures?: ChainFailure[];
  /** Every replay attempt, oldest first; absent when none. */
  replays?: ReplayAttempt[];
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
  /** True when the failing message was replayed since (the chain's status follows the replay; see {@link FirstFailure.replayed}). */
  replayed?: boolean;
}

/**
 * A chain's problem deliveries of one failure group in one minute: what
 * `GET /api/failures` adds up. `unresolved` counts those not replayed since.
 */
export interface FailureTally {
  fingerprint: string;
  /** Start of the minute, epoch ms (a multiple of 60,000). */
  bucket: number;
  count: number;
  unresolved: number;
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
  /** True when a dead-lettered message of the chain was replayed (see {@link ChainDetail.replayed}); `ok` with it reads "ok (replayed)". */
  replayed?: boolean;
  /** The chain's problem deliveries by failure group and minute; absent when none. */
  failureTally?: FailureTally[];
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
  /** Whether dead-lettered messages can be replayed from the UI, and why not. */
  replay?: ReplayConfig;
}

/** Whether this collector replays dead-lettered messages (`--amqp-url`, and a token to guard it). */
export interface ReplayConfig {
  enabled: boolean;
  /** Why replay is off, in words a person can act on. */
  reason?: string;
  /** True when replay needs `--admin-token` (the UI asks for it); false when the ingest token (the UI's session) will do. */
  adminToken: boolean;
  /** Messages replayed per second at most. */
  ratePerSec: number;
}

/** One failure group of `GET /api/failures`: problem deliveries with the same fingerprint. */
export interface FailureGroup {
  fingerprint: string;
  status: MessageStatus;
  service: string;
  queue?: string;
  exchange?: string;
  routingKey?: string;
  errorType?: string;
  /** The error message with numbers, ids and quoted values masked (`"…" is not on the menu (order …)`). */
  pattern: string;
  /** One real message of the group, as it was (the first seen). */
  example?: string;
  /** Problem deliveries in the window. */
  count: number;
  /** Of those, how many were not replayed since. */
  unresolved: number;
  /** The services and queues involved: the group's service, its queue and, for dead letters, the dead-letter queue. */
  services: string[];
  queues: string[];
  /** Start of the first and of the last minute with an occurrence in the window, epoch ms. */
  firstSeen: number;
  lastSeen: number;
  /** True when the group had an occurrence in the last {@link FailureGroupList.ongoingMs}: it is still happening. */
  ongoing: boolean;
  /** Occurrences per bin over the list's sparkline window, oldest first. */
  sparkline: number[];
  /** True when replay can move these messages: dead-lettered, and some not replayed yet. */
  replayable: boolean;
}

/** `GET /api/failures` */
export interface FailureGroupList {
  items: FailureGroup[];
  /** The window counted, epoch ms. */
  from: number;
  to: number;
  /** Every group's sparkline covers [sparklineFrom, to] in bins of `binMs`. */
  sparklineFrom: number;
  binMs: number;
  /** How recent an occurrence makes a group `ongoing`. */
  ongoingMs: number;
}

/** `POST /api/replay` body. */
export interface ReplayRequest {
  /** Replay every unreplayed dead-lettered message of this failure group… */
  group?: string;
  /** …or these messages. */
  messageIds?: string[];
  /** List what would be replayed, move nothing. @default false */
  dryRun?: boolean;
  /** Who asks (written into each `replay` hop). @default 'api' */
  requestedBy?: string;
  /** At most this many messages. @default 1000 */
  limit?: number;
}

/** What became of one message of a replay. */
export interface ReplayMessageResult {
  messageId: string;
  correlationId?: string;
  /**
   * `would-replay` (dry run); `replayed` (republished, confirmed, its dead-letter copy removed);
   * `not-found` (not in its dead-letter queue: expired, consumed, or moved by someone else);
   * `already-replayed` (this collector replayed it before); `unroutable` and `rejected` (the broker
   * returned or nacked the republish: the message stays in the dead-letter queue); `no-dead-letter-queue`
   * (the chain never said where it was dead-lettered to); `not-dead-lettered`; `error`.
   */
  outcome: 'would-replay' | 'replayed' | 'not-found' | 'already-replayed' | 'unroutable' | 'rejected' | 'no-dead-letter-queue' | 'not-dead-lettered' | 'error';
  deadLetterQueue?: string;
  /** Where it went (or would go) when known: the newest `x-death` entry's exchange and routing key. */
  exchange?: string;
  routingKey?: string;
  /** `replayed`: the new message id. */
  replayMessageId?: string;
  /** A sentence for a person. */
  detail?: string;
}

/** `POST /api/replay` answer. */
export interface ReplayResult {
  dryRun: boolean;
  /** Per outcome, how many messages. */
  counts: Partial<Record<ReplayMessageResult['outcome'], number>>;
  messages: ReplayMessageResult[];
  /** True when the group had more candidates than `limit`: run it again for the rest. */
  truncated: boolean;
}
