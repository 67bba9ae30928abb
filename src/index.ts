/**
 * hoptrace: drop-in amqplib wrappers that carry trace, correlation and
 * causation ids and record every hop a message makes (one pino line per
 * message per side).
 */
export { instrument } from './instrument.ts';
export { connect } from './connect.ts';
export { currentHopContext, hoptraceMixin } from './context.ts';
export { telemetryStats } from './internal/telemetry.ts';
export { ErrorCodes, HoptraceError, ConfigError, TelemetryError } from './errors.ts';
export { HOP_KINDS, HOP_SCHEMA_VERSION, HOP_RECORD_V2, HOP_RECORD_V2_KINDS, HOP_LOG_KEY, HopLimits } from './contract/hop.ts';

export type { HoptraceOptions, CapturePayloadOptions, HoptraceHooks, PayloadInfo } from './options.ts';
export type { SocketOptions } from './connect.ts';
export type { HopContext, HoptraceLogFields } from './context.ts';
export type { TelemetryStats } from './internal/telemetry.ts';
export type { ErrorCode } from './errors.ts';
export type {
  HopRecord,
  HopKind,
  DeathEntry,
  HopError,
  HopOutcome,
  HopProperties,
  HopRecordV2,
  HopRecordV2Kind,
  PublishRecordV2,
  ConsumeRecordV2,
  AnyHopRecord,
} from './contract/hop.ts';
