/**
 * Generators of hostile input for the library's tests (test/lib-hostile-input.test.ts):
 * headers, properties and thrown values meant to break a record, all of them
 * encodable by amqplib and accepted by RabbitMQ (a publish that amqplib
 * itself refuses is tested separately: hoptrace must fail it the same way).
 */
import type { Options } from 'amqplib';

/** mulberry32: small, fast, deterministic. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export type Rng = () => number;
export const pick = <T>(r: Rng, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
export const int = (r: Rng, n: number): number => Math.floor(r() * n);

/** Strings meant to break things: long, quoted, control characters, lone surrogates, non-ASCII. */
export function nastyString(r: Rng): string {
  return pick(r, [
    () => '',
    () => 'x'.repeat(1 + int(r, 3000)),
    () => '"\\\n\r\t\u0000\u001f'.repeat(1 + int(r, 50)),
    () => '\ud800 lone \udfff surrogates',
    () => 'ü€😀'.repeat(1 + int(r, 500)),
    () => `</script><img src=x onerror=alert(1)>${'{'.repeat(int(r, 100))}`,
    () => String(r()),
  ])();
}

/** A value amqplib can encode into a header table, from harmless to hostile. */
export function nastyValue(r: Rng, depth = 0): unknown {
  const choices: (() => unknown)[] = [
    () => nastyString(r),
    // Finite only: amqplib cannot encode NaN, and RabbitMQ cannot decode an infinite double (it closes the connection).
    () => pick(r, [-1, 0, 1.5, -0.5, 2 ** 40, -(2 ** 50), 1e306, Number.MAX_SAFE_INTEGER]),
    () => r() < 0.5,
    () => null,
    () => Buffer.from([0xff, 0xfe, 0x00, 0xc3, int(r, 256)]),
    () => ({ '!': 'timestamp', value: int(r, 2 ** 31) }),
  ];
  if (depth < 24) {
    choices.push(() => Array.from({ length: int(r, 6) }, () => nastyValue(r, depth + 1)));
    choices.push(() => Object.fromEntries(Array.from({ length: int(r, 4) }, (_, i) => [`k${i}`, nastyValue(r, depth + 1)])));
  }
  return pick(r, choices)();
}

/** An x-death header as no broker would write it. */
export function nastyDeath(r: Rng): unknown {
  const entry = (): unknown =>
    pick(r, [
      () => ({
        queue: pick(r, ['q', 'y'.repeat(1500), nastyString(r)]),
        reason: pick(r, ['rejected', { nested: ['table'] }, 42]),
        count: pick(r, [-1, 1.5, 0, 3, 1e306, 2 ** 60, -(2 ** 40), '7', null]),
        exchange: pick(r, ['', 'ex', 'z'.repeat(1200)]),
        'routing-keys': pick(r, [
          ['rk'],
          Array.from({ length: 1000 + int(r, 200) }, (_, i) => `k${i}`),
          ['w'.repeat(1500)],
          'not an array',
        ]),
        time: pick(r, [{ '!': 'timestamp', value: 1_700_000_000 }, 1e306, -5, 'yesterday', undefined]),
      }),
      () => 'not a table',
      () => null,
      () => [1, 2, 3],
    ])();
  return pick(r, [
    () => Array.from({ length: 1 + int(r, 3) }, entry),
    // More entries than a record may keep (1,000), each small so the table stays under amqplib's 64 KiB.
    () => Array.from({ length: 1000 + int(r, 200) }, () => ({ count: 1 })),
    () => 'x-death as a string',
    () => ({ table: 'not an array' }),
  ])();
}

/** Headers a hostile (or just careless) publisher sends. */
export function nastyHeaders(r: Rng): Record<string, unknown> {
  const headers: Record<string, unknown> = {};
  if (r() < 0.5) headers['x-death'] = nastyDeath(r);
  if (r() < 0.6) {
    headers.traceparent = pick(r, [
      () => '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      () => '00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01',
      () => `00-${'0'.repeat(32)}-${'0'.repeat(16)}-01`,
      () => `ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01`,
      () => `01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-${nastyString(r)}`,
      () => nastyString(r),
      () => nastyValue(r),
    ])();
  }
  if (r() < 0.3) headers.tracestate = nastyValue(r);
  if (r() < 0.3) headers.baggage = pick(r, [() => `k=${'v'.repeat(9000)}`, () => nastyValue(r)])();
  if (r() < 0.5) headers['x-correlation-id'] = pick(r, [() => nastyString(r), () => nastyValue(r), () => 'c'.repeat(1100)])();
  if (r() < 0.5) headers['x-causation-id'] = pick(r, [() => nastyString(r), () => nastyValue(r)])();
  const others = int(r, r() < 0.1 ? 60 : 5);
  for (let i = 0; i < others; i++) headers[pick(r, [`h${i}`, `ü-${i}`, `${'n'.repeat(200)}${i}`])] = nastyValue(r);
  return headers;
}

/** Properties amqplib accepts, with awkward values. */
export function nastyProperties(r: Rng): Options.Publish {
  const p: Options.Publish = {};
  if (r() < 0.5) p.messageId = pick(r, ['m', 'é'.repeat(127), '"quoted"\n', '\u0000']);
  if (r() < 0.5) p.contentType = pick(r, ['application/json', '"', 'c'.repeat(255)]);
  if (r() < 0.5) p.type = pick(r, ['order.placed', 't'.repeat(255), '\\']);
  if (r() < 0.3) p.priority = pick(r, [0, 9, 1.5]);
  if (r() < 0.3) p.expiration = pick(r, ['60000', 60_000]);
  if (r() < 0.3) p.timestamp = pick(r, [0, 1_700_000_000, 2 ** 40]);
  if (r() < 0.3) p.appId = pick(r, ['a', 'b'.repeat(255)]);
  if (r() < 0.3) p.correlationId = pick(r, ['rpc-1', 'r'.repeat(255)]);
  return p;
}

/** Something a handler throws. */
export function nastyError(r: Rng): unknown {
  return pick(r, [
    () => new Error('m'.repeat(70 * 1024)),
    () => Object.assign(new Error('named'), { name: 'N'.repeat(2000), code: 'C'.repeat(2000) }),
    () => {
      const e = new TypeError('long stack');
      e.stack = 's'.repeat(1.2 * 1024 * 1024);
      return e;
    },
    () => 'thrown string '.repeat(6000),
    () => ({ toString: () => { throw new Error('toString throws'); } }),
    () => Object.defineProperty(new Error('x'), 'message', { get: () => { throw new Error('getter throws'); } }),
    () => Object.assign(new Error('odd fields'), { name: { not: 'a string' }, code: { nested: true } }),
    () => null,
    () => undefined,
    () => Symbol('thrown symbol'),
    () => 42,
    () => Object.assign(new RangeError('\ud800\u0000"'), { code: 'E_ODD' }),
  ])();
}

