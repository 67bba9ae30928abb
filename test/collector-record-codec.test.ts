import { randomBytes, randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { decodeRecord, encodeRecord, hexPrefixRange, packedPrefixRanges, packId, unpackId, type StringTable } from '../collector/record-codec.ts';
import { dedupeKey, KIND_CODE } from '../collector/record-identity.ts';
import { RowPacker, unpackRows } from '../collector/record-rows.ts';
import type { HopRecord } from '../src/contract/hop.ts';
import { deadLetterChain, largeChain, redeliveryLoopChain, threeServiceChain } from './helpers/chain-fixtures.ts';
import { makeHop } from './helpers/collector.ts';

/** An in-memory string table like the store's, with a size limit so inline names are exercised too. */
function table(limit = Infinity): StringTable {
  const ids = new Map<string, number>();
  const texts = [''];
  return {
    idOf(text) {
      let id = ids.get(text);
      if (id === undefined && ids.size < limit) {
        id = texts.length;
        texts.push(text);
        ids.set(text, id);
      }
      return id;
    },
    textOf(id) {
      const t = texts[id];
      if (t === undefined) throw new RangeError(`no string ${id}`);
      return t;
    },
  };
}

const COLUMNS = ['v', 'kind', 'ts', 'messageId'] as const;

function roundTrip(record: Record<string, unknown>, strings: StringTable): Record<string, unknown> {
  const body = Buffer.from(encodeRecord(record, strings));
  const into: Record<string, unknown> = {};
  for (const c of COLUMNS) if (record[c] !== undefined) into[c] = record[c];
  const out = decodeRecord(body, strings, into);
  // correlationId is left out of the body when it equals the message id; the store sets it from its column.
  if (out.correlationId === undefined && record.correlationId !== undefined) out.correlationId = record.correlationId;
  return out;
}

describe('the stored form of a record', () => {
  it('gives back every field of every fixture hop, interned or inline', () => {
    const hops = [threeServiceChain(), deadLetterChain(), redeliveryLoopChain({ attempts: 3 }), largeChain(40)].flatMap((f) =>
      f.hops.map(({ id: _i, receivedAt: _r, ...h }) => h as HopRecord),
    );
    for (const strings of [table(), table(3)]) {
      for (const hop of hops) expect(roundTrip(hop as unknown as Record<string, unknown>, strings)).toEqual(hop);
    }
  });

  it('keeps values it has no tag for, hostile keys and awkward numbers exactly', () => {
    const strings = table();
    const hop = {
      ...makeHop({ kind: 'receive', queue: 'q', consumerTag: 'ü-tag ✓', deliveryTag: 2 ** 53 - 1, durationMs: 0.001 }),
      causationId: 'not-a-uuid',
      correlationId: 'order-42',
      traceId: 'ABCDEF0123456789ABCDEF0123456789', // not lowercase: kept as given
      bodySize: -1,
      replyCode: 1.5,
      headers: JSON.parse('{"__proto__":"x","x-ü":"snow ☃","empty":""}') as Record<string, string>,
      properties: { deliveryMode: 2, priority: 0, timestamp: 1.5e9, expiration: '60000', nested: { a: [1, null] }, flag: true, nil: null },
      somethingNew: { deep: [1, 'two'] },
      error: { type: 'TypeError', message: 'x'.repeat(70_000), stack: 'at f (x.ts:1:1)' },
    } as unknown as Record<string, unknown>;
    const back = roundTrip(hop, strings);
    expect(back).toEqual(hop);
    expect(Object.keys(back.headers as object)).toContain('__proto__');
  });

  it('a version-2 record comes back whole', () => {
    const rec = {
      v: 2, kind: 'consume', ts: 1_700_000_000_000.25, service: 's', instance: 'h/1', traceId: randomBytes(16).toString('hex'),
      spanId: randomBytes(8).toString('hex'), messageId: randomUUID(), queue: 'q', processMs: 1.5, settle: 'nack', settleMs: 2, requeue: false,
      open: true, settleSpanId: randomBytes(8).toString('hex'), confirmMs: 0,
    };
    expect(roundTrip(rec, table())).toEqual(rec);
  });

  it('a corrupt body is an error, never a wrong record', () => {
    const strings = table();
    const body = Buffer.from(encodeRecord(makeHop() as unknown as Record<string, unknown>, strings));
    expect(() => decodeRecord(body.subarray(0, body.length - 3), strings, {})).toThrow(RangeError);
    expect(() => decodeRecord(Buffer.from([99]), strings, {})).toThrow(/unknown field tag/);
  });

  it('packs UUIDs into 16 bytes and every other id as text, both ways', () => {
    const uuid = randomUUID();
    expect(packId(uuid)).toHaveLength(16);
    expect(unpackId(packId(uuid))).toBe(uuid);
    for (const id of ['order-42', uuid.toUpperCase(), `${uuid}x`, '']) expect(unpackId(packId(id))).toBe(id);
  });

  it('turns an id prefix into the byte range holding every id that starts with it', () => {
    const ids = Array.from({ length: 300 }, () => randomUUID());
    const inRange = (id: string, r: { lo: Uint8Array; hi: Uint8Array | undefined }) => {
      const b = packId(id) as Uint8Array;
      return Buffer.compare(b, r.lo) >= 0 && (r.hi === undefined || Buffer.compare(b, r.hi) < 0);
    };
    for (const prefix of [ids[0].slice(0, 1), ids[1].slice(0, 7), ids[2].slice(0, 9), ids[3].slice(0, 23), ids[4]]) {
      const range = packedPrefixRanges(prefix).find((r) => typeof r.lo !== 'string') as { lo: Uint8Array; hi: Uint8Array | undefined };
      for (const id of ids) expect(inRange(id, range), `${id} vs ${prefix}`).toBe(id.startsWith(prefix));
    }
    expect(hexPrefixRange('ff').hi).toBeUndefined();
    expect(packedPrefixRanges('order-4')).toHaveLength(1);
  });

  it('packs rows for the writer thread and unpacks the same values', () => {
    const strings = table();
    const packer = new RowPacker();
    const records = [makeHop(), makeHop({ correlationId: 'text-chain', messageId: 'text-message' }), makeHop({ correlationId: randomUUID() })];
    for (const r of records) packer.add(r, strings);
    const { bytes, rows } = packer.take();
    expect(rows).toBe(3);
    // The walk reuses one row object: copy what each row holds before the next.
    const out: { messageId: string; correlationId: string; dkey: number; kind: number; ts: number; body: Buffer }[] = [];
    for (const r of unpackRows(bytes)) out.push({ ...r, messageId: unpackId(r.messageId), correlationId: unpackId(r.correlationId), body: Buffer.from(r.body) });
    records.forEach((r, i) => {
      expect(out[i]).toMatchObject({ messageId: r.messageId, correlationId: r.correlationId, dkey: dedupeKey(r), kind: KIND_CODE[r.kind], ts: r.ts });
      expect(decodeRecord(out[i].body, strings, { v: 1, kind: r.kind, ts: r.ts, messageId: r.messageId, correlationId: r.correlationId })).toEqual(r);
    });
  });
});
