/**
 * Hostile input through the real library and the real broker: whatever a
 * publisher puts in the headers (x-death with negative, fractional or huge
 * counts, absurd times, thousands of entries; broken traceparents; ids that
 * are too long, not strings, full of control characters) and whatever a
 * handler throws (huge messages, names, codes, stacks; strings; objects
 * whose getters throw), every record the library writes is one the
 * collector's parser accepts, the message reaches the user's handler
 * untouched, and nothing of hoptrace's reaches the user's code.
 *
 * Cases come from a seeded generator: the seed is fixed (HOPTRACE_FUZZ_SEED
 * overrides it) and every failure message names it.
 */
import type { Channel, ConsumeMessage, Options } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, ErrorCodes, connect, instrument, telemetryStats } from '../src/index.ts';
import { AMQP_URL, waitFor } from './helpers/broker.ts';
import { int, nastyError, nastyHeaders, nastyProperties, pick, rng } from './helpers/hostile.ts';
import { type Fixture, capture, fixture, hopsOf } from './lib-capture.ts';

const SEED = Number(process.env.HOPTRACE_FUZZ_SEED ?? 0x5eed_2026);
const FUZZ_CASES = 2000;

let fx: Fixture;
beforeAll(async () => {
  fx = await fixture();
});
afterAll(async () => {
  await fx.cleanup();
});

describe('records the collector always accepts', () => {
  it('hostile headers, properties and thrown values give records the collector accepts, and every message reaches its handler', async () => {
    const r = rng(SEED);
    const cap = capture();
    const q = await fx.queue('lib.hostile.property');
    const producer = instrument(await fx.conn.createChannel(), { logger: cap.logger, serviceName: 'producer', recordGraceMs: 60_000 });
    const consumer = instrument(await fx.conn.createChannel(), { logger: cap.logger, serviceName: 'consumer', recordGraceMs: 60_000 });
    const raw: Channel = await fx.conn.createChannel();
    const handlerErrors: unknown[] = [];
    consumer.on('handler-error', (err: unknown) => handlerErrors.push(err));
    await consumer.prefetch(50);
    const errors: unknown[] = [];
    const seen: string[] = [];
    await consumer.consume(q, (m: ConsumeMessage | null) => {
      const [index, action] = m!.content.toString().split(':');
      seen.push(index!);
      if (action === 'ack') return consumer.ack(m!);
      consumer.nack(m!, false, false);
      throw errors[Number(index)];
    });

    const CASES = 300;
    for (let i = 0; i < CASES; i++) {
      const action = pick(r, ['ack', 'throw']);
      errors[i] = nastyError(r);
      const body = Buffer.from(`${i}:${action}`);
      const options: Options.Publish = { ...nastyProperties(r), headers: nastyHeaders(r) };
      // Half through the wrappers (their own records must be accepted too), half as a foreign publisher.
      if (i % 2 === 0) expect(() => producer.sendToQueue(q, body, options), `seed ${SEED}, case ${i}`).not.toThrow();
      else raw.sendToQueue(q, body, options);
    }
    await waitFor(() => seen.length === CASES, `all ${CASES} deliveries (seed ${SEED})`, 30_000);
    await waitFor(() => cap.records().filter((rec) => rec.kind === 'consume').length === CASES, `every consume record (seed ${SEED})`, 30_000);
    // What the handler threw reached amqplib's listener exactly as it was thrown: hoptrace added and changed nothing.
    for (const err of handlerErrors) expect(errors.includes(err), `seed ${SEED}`).toBe(true);
    expect(handlerErrors.length, `seed ${SEED}`).toBe(seen.length - cap.hops('settle').filter((h) => h.outcome === 'ack').length);
    let hops;
    try {
      hops = hopsOf(cap.lines);
    } catch (err) {
      throw new Error(`seed ${SEED}: ${(err as Error).message.slice(0, 2000)}`);
    }
    expect(hops.filter((h) => h.kind === 'receive'), `seed ${SEED}`).toHaveLength(CASES);
    expect(hops.filter((h) => h.kind === 'send'), `seed ${SEED}`).toHaveLength(CASES / 2);
    // Cut values say so.
    const cut = hops.filter((h) => h.truncated || h.error?.truncated);
    expect(cut.length, `seed ${SEED}: some values were cut`).toBeGreaterThan(0);
    for (const h of cut) {
      const strings = [...Object.values(h.headers ?? {}), h.error?.message, h.error?.stack, h.error?.type, h.error?.code];
      if (h.error?.truncated) expect(strings.some((s) => typeof s === 'string' && s.endsWith('…')), `seed ${SEED}`).toBe(true);
    }
    await Promise.all([producer.close(), consumer.close(), raw.close()]);
  }, 90_000);
});

describe('fuzzing the header parsing', () => {
  it(`${FUZZ_CASES} deliveries with random hostile headers: each reaches its handler untouched, no hoptrace error reaches user code, every record is accepted`, async () => {
    const r = rng(SEED ^ 0xf00d);
    const cap = capture();
    const q = await fx.queue('lib.hostile.fuzz');
    const consumer = instrument(await fx.conn.createChannel(), { logger: cap.logger, serviceName: 'fuzzed' });
    const raw: Channel = await fx.conn.createChannel();
    const handlerErrors: unknown[] = [];
    consumer.on('handler-error', (err: unknown) => handlerErrors.push(err));
    let channelError: unknown;
    consumer.on('error', (err: unknown) => (channelError = err));
    await consumer.prefetch(500);
    const got = new Map<string, string>();
    await consumer.consume(q, (m: ConsumeMessage | null) => {
      got.set(m!.properties.messageId as string, m!.content.toString());
      consumer.ack(m!);
    });
    const internalBefore = telemetryStats().internalErrors;
    const sent = new Map<string, string>();
    for (let i = 0; i < FUZZ_CASES; i++) {
      const id = `fuzz-${i}`;
      const body = `body ${i} ${'·'.repeat(int(r, 20))}`;
      sent.set(id, body);
      raw.sendToQueue(q, Buffer.from(body), { ...nastyProperties(r), messageId: id, headers: nastyHeaders(r) });
      if (i % 200 === 199) await new Promise((resolve) => setImmediate(resolve));
    }
    await waitFor(() => got.size === FUZZ_CASES || channelError, `${FUZZ_CASES} deliveries (seed ${SEED})`, 60_000);
    expect(channelError, `seed ${SEED}`).toBeUndefined();
    expect(handlerErrors, `seed ${SEED}`).toEqual([]);
    expect(got, `seed ${SEED}: every body as it was sent`).toEqual(sent);
    expect(telemetryStats().internalErrors - internalBefore, `seed ${SEED}: no internal failure in hoptrace`).toBe(0);
    let hops;
    try {
      hops = hopsOf(cap.lines);
    } catch (err) {
      throw new Error(`seed ${SEED}: ${(err as Error).message.slice(0, 2000)}`);
    }
    const settled = new Set(hops.filter((h) => h.kind === 'settle' && h.outcome === 'ack').map((h) => h.messageId));
    expect(settled.size, `seed ${SEED}`).toBe(FUZZ_CASES);
    console.log(`fuzz (seed ${SEED}): ${FUZZ_CASES} cases, ${cap.records().length} records, all accepted by the collector's parser`);
    await Promise.all([consumer.close(), raw.close()]);
  }, 120_000);
});

describe('options copied into AMQP fields', () => {
  it('a serviceName over 255 bytes in UTF-8 is refused at instrument() and connect(), naming the limit', async () => {
    const raw = await fx.conn.createChannel();
    const long = 'ü'.repeat(128); // 256 bytes
    let error: unknown;
    try {
      instrument(raw, { serviceName: long });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).code).toBe(ErrorCodes.INVALID_OPTION);
    expect((error as Error).message).toMatch(/"serviceName" must be at most 255 bytes in UTF-8.*got 256 bytes/);
    await expect(connect(AMQP_URL, { serviceName: long })).rejects.toThrow(/at most 255 bytes/);
    expect(() => instrument(raw, { serviceName: 'billing\nservice' })).toThrow(/control characters/);
    expect(() => instrument(raw, { serviceName: 'ü'.repeat(127) })).not.toThrow();
    await raw.close();
  });

  it('publishes never fail because of hoptrace: a 255-byte service name and hostile caller options publish exactly as plain amqplib does', async () => {
    const cap = capture();
    const q = await fx.queue('lib.hostile.publish');
    const ch = instrument(await fx.conn.createChannel(), { logger: cap.logger, serviceName: `${'ü'.repeat(127)}x` });
    const plain = await fx.conn.createChannel();
    const r = rng(SEED + 1);
    for (let i = 0; i < 200; i++) {
      const options: Options.Publish = { ...nastyProperties(r), headers: nastyHeaders(r) };
      let ours: unknown;
      let theirs: unknown;
      try {
        ch.sendToQueue(q, Buffer.from('x'), options);
      } catch (err) {
        ours = err;
      }
      try {
        plain.sendToQueue(q, Buffer.from('x'), options);
      } catch (err) {
        theirs = err;
      }
      expect(String(ours), `seed ${SEED + 1}, case ${i}`).toBe(String(theirs));
    }
    expect(() => hopsOf(cap.lines)).not.toThrow();
    await ch.purgeQueue(q);
    await Promise.all([ch.close(), plain.close()]);
  });

  it('a capturePayload.maxBytes a record could not carry is refused', async () => {
    const raw = await fx.conn.createChannel();
    expect(() => instrument(raw, { capturePayload: { maxBytes: 2 * 1024 * 1024 } })).toThrow(/"capturePayload.maxBytes" must be a positive integer of at most 1048576/);
    await raw.close();
  });
});
