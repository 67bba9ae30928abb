import { describe, expect, it } from 'vitest';
import { failureFingerprint, isFingerprint, maskMessage } from '../collector/failure-fingerprint.ts';

const drink = (message: string, over: object = {}) =>
  failureFingerprint({ status: 'dead-lettered', service: 'barista', queue: 'demo.coffee.orders', errorType: 'UnknownDrinkError', message, ...over });

describe('failure fingerprints', () => {
  it('the same error for other values, ids and numbers is one group, with the variable parts masked', () => {
    const a = drink('"unicorn frappuccino" is not on the menu (order order-12-a3f9c1)');
    const b = drink('"oat frappe" is not on the menu (order order-7-0b44e2)');
    const c = drink('"unicorn frappuccino" is not on the menu (order 0192d6f4-8b7e-7c3a-9f2e-1a2b3c4d5e6f)');
    const d = drink('"unicorn frappuccino" is not on the menu (order order-g-4a1b2c3d)');
    expect(a.pattern).toBe('"…" is not on the menu (order …)');
    expect(new Set([a, b, c, d].map((x) => x.fingerprint)).size).toBe(1);
    expect(isFingerprint(a.fingerprint)).toBe(true);
  });

  it('a fingerprint is stored data: the same failure keeps the same fingerprint', () => {
    expect(drink('"unicorn frappuccino" is not on the menu (order order-12-a3f9c1)').fingerprint).toBe('b183a8ae5a348536');
  });

  it('different error types, statuses, services, queues and messages are different groups', () => {
    const base = drink('"x" is not on the menu (order 1)');
    const others = [
      drink('"x" is not on the menu (order 1)', { errorType: 'RangeError' }),
      drink('"x" is not on the menu (order 1)', { status: 'failed' }),
      drink('"x" is not on the menu (order 1)', { service: 'barista-2' }),
      drink('"x" is not on the menu (order 1)', { queue: 'demo.coffee.orders.eu' }),
      drink('"x" is sold out (order 1)'),
    ];
    for (const o of others) expect(o.fingerprint).not.toBe(base.fingerprint);
    // Where a publish failed is its exchange and routing key.
    const returned = (routingKey: string) => failureFingerprint({ status: 'unroutable', service: 'customer', exchange: 'demo.coffee', routingKey, message: 'NO_ROUTE' });
    expect(returned('order.cancelled').fingerprint).not.toBe(returned('order.refunded').fingerprint);
  });

  it.each([
    ['connect ECONNREFUSED 127.0.0.1:5432', 'connect ECONNREFUSED …'],
    ['getaddrinfo ENOTFOUND db-7.internal', 'getaddrinfo ENOTFOUND ….internal'],
    ['duplicate key value violates unique constraint "orders_pkey"', 'duplicate key value violates unique constraint "…"'],
    ["Cannot read properties of undefined (reading 'amount')", "Cannot read properties of undefined (reading '…')"],
    [`Unexpected token 'u', "unparseable" is not valid JSON`, `Unexpected token '…', "…" is not valid JSON`],
    ['Unexpected token u in JSON at position 0', 'Unexpected token u in JSON at position …'],
    [
      "E11000 duplicate key error collection: shop.orders index: _id_ dup key: { _id: ObjectId('64b7f0c2e1d3a4b5c6d7e8f9') }",
      "… duplicate key error collection: shop.orders index: _id_ dup key: { _id: ObjectId('…') }",
    ],
    ['Request failed with status code 503', 'Request failed with status code …'],
    ['timeout of 5000ms exceeded', 'timeout of … exceeded'],
    ['card declined for customer cus_8f3a9b2c1d at 2026-03-02T09:00:03.123Z', 'card declined for customer … at …'],
    ['payment 0xdeadbeef over the limit of 1,000.50 EUR', 'payment … over the limit of … EUR'],
    [
      'Channel closed by server: 406 (PRECONDITION-FAILED) with message "PRECONDITION_FAILED - unknown delivery tag 17"',
      'Channel closed by server: … (PRECONDITION-FAILED) with message "…"',
    ],
    ['stock for sku espresso-beans-1kg is -3', 'stock for sku … is -…'],
    ['invalid utf8 in a sha256 digest over HTTP2', 'invalid utf8 in a sha256 digest over HTTP2'],
    ["it's   the\nbarista's   day off", "it's the barista's day off"],
  ])('masks %j as %j', (message, pattern) => {
    expect(maskMessage(message)).toBe(pattern);
  });

  it('messages of different lengths around the same ids mask alike, and a huge message is cut before masking', () => {
    expect(maskMessage('user 42 not found')).toBe(maskMessage('user 4200000 not found'));
    const huge = `${'x'.repeat(5000)} 123`;
    expect(maskMessage(huge).length).toBe(2000);
  });
});
