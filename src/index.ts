export { HOP_KINDS, HOP_SCHEMA_VERSION } from './hop.ts';
export type { HopRecord, HopKind } from './hop.ts';
