/**
 * Records as the collector takes them in: a version-1 hop, or a version-2
 * record with its `instance` resolved (see `src/contract/hop.ts`). What a record is
 * called in the store (its kind code), when two records are the same record
 * (the dedupe key), and the hops it stands for.
 */
import type { HopKind, HopRecord, HopRecordV2, HopRecordV2Kind } from '../src/contract/hop.ts';
import { expandRecordV2 } from './hop-v2.ts';

/** A validated record, ready to store. */
export type IngestRecord = HopRecord | (HopRecordV2 & { instance: string });

/** The store's number for a record's kind (stored data: never renumber). */
export const KIND_CODE: Readonly<Record<HopKind | HopRecordV2Kind, number>> = {
  send: 0,
  confirm: 1,
  return: 2,
  receive: 3,
  process: 4,
  settle: 5,
  publish: 6,
  consume: 7,
  replay: 8,
};
const KIND_OF_CODE: readonly (HopKind | HopRecordV2Kind)[] = ['send', 'confirm', 'return', 'receive', 'process', 'settle', 'publish', 'consume', 'replay'];

/** The kind behind a {@link KIND_CODE}. */
export function kindOfCode(code: number): HopKind | HopRecordV2Kind {
  const kind = KIND_OF_CODE[code];
  if (kind === undefined) throw new RangeError(`unknown record kind code ${code}`);
  return kind;
}

/** Whether a kind code is a version-2 record's. */
export const isV2Code = (code: number): boolean => code === KIND_CODE.publish || code === KIND_CODE.consume;

/** Two 32-bit FNV-1a lanes over the fields of a key, kept in module state between calls (no allocation). */
let laneA = 0;
let laneB = 0;

function mix(s: string): void {
  let a = laneA;
  let b = laneB;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x01000193);
  }
  // A separator after each field, so ("ab", "c") and ("a", "bc") differ.
  laneA = Math.imul(a ^ 0x1f, 0x01000193);
  laneB = Math.imul(b ^ 0x1f, 0x01000193);
}

/**
 * The dedupe key of a record within its message: 52 bits of a hash of what
 * makes it one event — its kind, span, time, recording instance, queue,
 * delivery tag, outcome (version 1) or completeness (version 2). An exact
 * resend (in any field order, or as a pino line or bare) has the same key and
 * is stored once; a record that differs in any of these is another event and
 * is kept, even when everything else matches. The key is stored data: a
 * change to it needs a migration that recomputes every stored key.
 */
export function dedupeKey(r: IngestRecord): number {
  laneA = 0x811c9dc5;
  laneB = 0x050c5d1f;
  mix(r.kind);
  mix(r.spanId);
  mix(String(r.ts));
  mix(r.instance);
  if (r.v === 1) {
    mix(r.queue ?? '');
    mix(r.deliveryTag === undefined ? '' : String(r.deliveryTag));
    mix(r.outcome ?? '');
  } else if (r.kind === 'consume') {
    mix(r.queue);
    mix(r.deliveryTag === undefined ? '' : String(r.deliveryTag));
    mix(r.open === true ? 'open' : '');
  } else {
    mix('');
    mix('');
    mix(r.open === true ? 'open' : '');
  }
  return ((laneA >>> 0) & 0xfffff) * 0x100000000 + (laneB >>> 0);
}

/** The hops a record stands for (one for version 1). */
export function recordHops(r: IngestRecord): HopRecord[] {
  return r.v === 1 ? [r] : expandRecordV2(r, r.instance);
}

/**
 * What makes two hops the same event, as {@link dedupeKey} does for records:
 * an `open` version-2 record and its complete successor expand to hops with
 * equal keys, which a chain keeps once (the later one).
 */
export function hopKey(h: HopRecord): string {
  return `${h.kind}\u0000${h.messageId}\u0000${h.spanId}\u0000${h.ts}\u0000${h.instance}\u0000${h.queue ?? ''}\u0000${h.deliveryTag ?? ''}\u0000${h.outcome ?? ''}`;
}

/** Hops without repeats by {@link hopKey}, the later of two kept in its place; `hops` in id order. */
export function distinctHops<H extends HopRecord>(hops: readonly H[]): H[] {
  const at = new Map<string, number>();
  const out: H[] = [];
  for (const h of hops) {
    const key = hopKey(h);
    const i = at.get(key);
    if (i === undefined) {
      at.set(key, out.length);
      out.push(h);
    } else out[i] = h;
  }
  return out;
}
