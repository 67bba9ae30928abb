/**
 * What each header and property hoptrace may add to a message costs in
 * amqplib's own encoder and decoder, in a process of its own: the publish
 * path amqplib runs (`Args.publish` then the BasicProperties encoder) and
 * the decoder a consumer runs on the content-header frame, per message, with
 * the round trip's options (persistent, contentType, type) as the baseline.
 *
 * amqplib copies the headers with `Object.create(options.headers)` and
 * enumerates that object with for-in, which V8 cannot do on its fast path
 * when the prototype has keys, and a new prototype per message costs V8 a
 * prototype map each time: the first header costs far more than the next
 * ones, unless the same headers object comes back (the "reused" rows, what
 * hoptrace does when only its own headers go out).
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { workerMain } from './lib/child.ts';

export interface HeadersInput {
  iterations: number;
}

export interface HeaderRow {
  name: string;
  /** ns per message more than the baseline, to encode (publish). */
  encodeNs: number;
  /** ns per message more than the baseline, to decode (deliver). */
  decodeNs: number;
  /** bytes per message more than the baseline in the content-header frame. */
  bytes: number;
  /** Whether hoptrace adds this (now). */
  added: string;
}

type Options = Record<string, unknown>;
interface Defs {
  encodeProperties(id: number, channel: number, size: number, fields: unknown): Buffer;
  decode(id: number, buf: Buffer): unknown;
  BasicProperties: number;
}
interface Args {
  publish(exchange: string, routingKey: string, options: Options): unknown;
}

const TP = '00-f202ab7bfa8b77ff1aa0b751db447702-c40c04dba58a80c2-01';
const ID = '01a20fc6-3518-70f5-b5d3-b8b3acbefa69';
const ID2 = '01a20fc6-3519-7000-b5d3-b8b3acbefa70';

async function main(input: HeadersInput): Promise<HeaderRow[]> {
  const require = createRequire(import.meta.url);
  const lib = join(dirname(require.resolve('amqplib')), 'lib');
  const defs = require(join(lib, 'defs.js')) as Defs;
  const args = require(join(lib, 'api_args.js')) as Args;
  const base: Options = { persistent: true, contentType: 'application/json', type: 'order.placed' };
  const shared: Options = { traceparent: '' };
  const sharedAll: Options = { traceparent: '', 'x-correlation-id': '', 'x-causation-id': '' };
  const cases: { name: string; added: string; make: () => Options }[] = [
    { name: 'the round trip’s options (baseline)', added: '', make: () => ({ ...base }) },
    { name: '+ messageId (property)', added: 'when the caller set none', make: () => ({ ...base, messageId: ID }) },
    { name: '+ traceparent (a first header)', added: 'always', make: () => ({ ...base, headers: { traceparent: TP } }) },
    { name: '+ traceparent, x-correlation-id', added: 'correlation: not on a chain’s first message', make: () => ({ ...base, headers: { traceparent: TP, 'x-correlation-id': ID } }) },
    {
      name: '+ traceparent, x-correlation-id, x-causation-id',
      added: 'causation: published from a handler',
      make: () => ({ ...base, headers: { traceparent: TP, 'x-correlation-id': ID, 'x-causation-id': ID2 } }),
    },
    { name: '+ appId', added: 'no longer (the record says the service)', make: () => ({ ...base, appId: 'billing-service' }) },
    { name: '+ timestamp', added: 'no longer (the record says when)', make: () => ({ ...base, timestamp: 1_796_000_000 }) },
    {
      name: '+ traceparent, reused headers object',
      added: 'always (reused when the caller gave no headers)',
      make: () => {
        shared.traceparent = TP;
        return { ...base, headers: shared };
      },
    },
    {
      name: '+ traceparent, x-correlation-id, x-causation-id, reused headers object',
      added: 'from a handler (reused when the caller gave no headers)',
      make: () => {
        sharedAll.traceparent = TP;
        sharedAll['x-correlation-id'] = ID;
        sharedAll['x-causation-id'] = ID2;
        return { ...base, headers: sharedAll };
      },
    },
    {
      name: 'what hoptrace adds to a chain’s first message now: messageId, traceparent (reused)',
      added: 'now',
      make: () => {
        shared.traceparent = TP;
        return { ...base, messageId: ID, headers: shared };
      },
    },
    {
      name: 'what it added before: messageId, traceparent, x-correlation-id, appId, timestamp',
      added: 'before',
      make: () => ({ ...base, messageId: ID, appId: 'bench', timestamp: 1_796_000_000, headers: { traceparent: TP, 'x-correlation-id': ID } }),
    },
  ];
  const best = new Map<string, { enc: number; dec: number; bytes: number }>();
  let sink = 0;
  for (let round = 0; round < 7; round++) {
    for (const c of cases) {
      let frame: Buffer = Buffer.alloc(0);
      let t0 = process.hrtime.bigint();
      for (let i = 0; i < input.iterations; i++) {
        frame = defs.encodeProperties(defs.BasicProperties, 1, 250, args.publish('', 'orders', c.make()));
      }
      const enc = Number(process.hrtime.bigint() - t0) / input.iterations;
      // The content-header frame's properties: after type(1) channel(2) size(4) class(2) weight(2) body size(8).
      const props = frame.subarray(19, frame.length - 1);
      t0 = process.hrtime.bigint();
      for (let i = 0; i < input.iterations; i++) sink += (defs.decode(defs.BasicProperties, props) as object) ? 1 : 0;
      const dec = Number(process.hrtime.bigint() - t0) / input.iterations;
      const b = best.get(c.name) ?? { enc: Infinity, dec: Infinity, bytes: frame.length };
      best.set(c.name, { enc: Math.min(b.enc, enc), dec: Math.min(b.dec, dec), bytes: frame.length });
    }
  }
  if (sink < 0) console.log(sink);
  const baseline = best.get(cases[0]!.name)!;
  return cases.map((c) => {
    const b = best.get(c.name)!;
    return {
      name: c.name,
      encodeNs: c === cases[0] ? b.enc : b.enc - baseline.enc,
      decodeNs: c === cases[0] ? b.dec : b.dec - baseline.dec,
      bytes: c === cases[0] ? b.bytes : b.bytes - baseline.bytes,
      added: c.added,
    };
  });
}

workerMain(main);
