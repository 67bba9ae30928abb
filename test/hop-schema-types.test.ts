/**
 * The hop schema and the contract's record types stay in step: each record
 * kind's schema (collector/hop-schema.ts) accepts exactly the type the
 * contract declares (src/contract/hop.ts). A field added to one and not the
 * other, made optional in one only, or given another type fails
 * `npm run typecheck` (the `Same` assertions) and this test (`expectTypeOf`).
 */
import { describe, expectTypeOf, it } from 'vitest';
import { consumeSchema, hopSchema, publishSchema } from '../collector/hop-schema.ts';
import type { ConsumeRecordV2, HopRecord, PublishRecordV2 } from '../src/contract/hop.ts';
import type { Infer } from '../src/contract/schema.ts';

/** True only when A and B are the same type (not merely assignable one way). */
type Same<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const same = <A, B>(ok: Same<A, B>): Same<A, B> => ok;

type HopOfSchema = Infer<typeof hopSchema>;
type PublishOfSchema = Infer<typeof publishSchema>;
type ConsumeOfSchema = Infer<typeof consumeSchema>;

// Compile-time: `npm run typecheck` fails on a drift.
same<HopOfSchema, HopRecord>(true);
same<PublishOfSchema, PublishRecordV2>(true);
same<ConsumeOfSchema, ConsumeRecordV2>(true);
// The assertion can fail: a record with one more field, or one optional field made required, is not the same type.
same<HopOfSchema, HopRecord & { extra: string }>(false);
same<PublishOfSchema, PublishRecordV2 & { confirmMs: number }>(false);
same<ConsumeOfSchema, Omit<ConsumeRecordV2, 'settleSpanId'>>(false);

describe('the hop schema and the record types', () => {
  it('the version-1 schema accepts exactly HopRecord', () => {
    expectTypeOf<HopOfSchema>().toEqualTypeOf<HopRecord>();
  });

  it('the version-2 schemas accept exactly PublishRecordV2 and ConsumeRecordV2', () => {
    expectTypeOf<PublishOfSchema>().toEqualTypeOf<PublishRecordV2>();
    expectTypeOf<ConsumeOfSchema>().toEqualTypeOf<ConsumeRecordV2>();
  });

  it('tells a drifted type apart', () => {
    expectTypeOf<HopOfSchema>().not.toEqualTypeOf<HopRecord & { extra: string }>();
    expectTypeOf<ConsumeOfSchema>().not.toEqualTypeOf<Omit<ConsumeRecordV2, 'settleSpanId'>>();
  });
});
