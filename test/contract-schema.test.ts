/**
 * The shared validation vocabulary (src/contract/schema.ts), on its own, and
 * the messages each of its users makes of a failure.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../src/contract/errors.ts';
import {
  arrayOf,
  exactObject,
  Failure,
  finite,
  object,
  oneOf,
  optional,
  parse,
  recordOf,
  string,
  Value,
  withDefault,
} from '../src/contract/schema.ts';
import { startCollector } from '../collector/server.ts';
import hoptraceTransport from '../src/transport.ts';
import { compileQuery, integer, text } from '../collector/query-schema.ts';

const entry = object({ queue: string(10), count: finite({ min: 0, max: 100, integer: true }) }, ['queue']);
const record = object({ id: string(10, { nonEmpty: true }), kind: oneOf(['a', 'b']), entries: arrayOf(entry, 3) }, ['id']);

describe('the schema vocabulary', () => {
  it('passes a valid record as it is, without copying it', () => {
    expect(record({ id: 'x', kind: 'a', entries: [{ queue: 'q', count: 1 }] })).toBeUndefined();
  });

  it('leaves out fields a record schema does not know, at every level, in a copy', () => {
    const input = { id: 'x', extra: 1, entries: [{ queue: 'q', deep: { a: 1 } }] };
    const r = record(input);
    expect(r).toBeInstanceOf(Value);
    expect((r as Value).value).toEqual({ id: 'x', entries: [{ queue: 'q' }] });
    expect(input.extra).toBe(1);
  });

  it('names the path and what the value must be on failure', () => {
    const r = record({ id: 'x', entries: [{ queue: 'q' }, { queue: 'q', count: 1.5 }] }) as Failure;
    expect(r).toBeInstanceOf(Failure);
    expect([r.field, r.must, r.got]).toEqual(['entries[1].count', 'be an integer', 1.5]);
    expect((record({ kind: 'a' }) as Failure).field).toBe('id');
    expect((record({ id: 'x', kind: 'c' }) as Failure).must).toBe('be one of "a", "b"');
  });

  it('refuses unknown fields of an exact object, and fills defaults', () => {
    const options = exactObject({ size: withDefault(finite({ min: 1, max: 10 }), 5), name: optional(string(5)) });
    expect((options({}) as Value).value).toEqual({ size: 5, name: undefined });
    const typo = options({ nmae: 'x' }) as Failure;
    expect([typo.field, typo.unknown]).toEqual(['nmae', true]);
    expect(() => parse(options, { size: 0 }, (f) => new ConfigError(`option "${f.field}" must ${f.must}`))).toThrow('option "size" must be at least 1');
    expect((recordOf(string(5, { nonEmpty: true }))({ orders: '' }) as Failure).field).toBe('orders');
  });
});

describe('the messages its users make', () => {
  it('a query names the parameter, and an unknown one lists what the route takes', () => {
    const q = compileQuery({ limit: integer(1, 10, 5), q: text() });
    expect(q({})).toEqual({ limit: 5, q: undefined });
    expect(q({ limit: '7', q: ['x'] })).toEqual({ limit: 7, q: 'x' });
    expect(() => q({ limit: '0' })).toThrow('query parameter "limit" must be an integer from 1 to 10');
    expect(() => q({ limit: ['1', '2'] })).toThrow('query parameter "limit" must be given once');
    expect(() => q({ lmit: '1' })).toThrow('unknown query parameter "lmit"; this route takes limit, q');
  });

  it('the transport names its option and the value', async () => {
    await expect(hoptraceTransport({ batchSize: 0 })).rejects.toThrow('hoptrace transport option "batchSize" must be an integer of at least 1, got 0');
  });

  it('the collector names its option, and hides the credentials of a URL it shows', async () => {
    await expect(startCollector({ port: -1 })).rejects.toThrow('option "port" must be a non-negative integer, got -1');
    const err = await startCollector({ amqpUrl: 'http://user:secret@broker' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toBe('option "amqpUrl" must be an amqp:// or amqps:// URL, got "http://…@broker"');
    await expect(startCollector({ deadLetterQueues: { orders: '' } })).rejects.toThrow(/option "deadLetterQueues.orders" must be a non-empty string/);
  });
});
