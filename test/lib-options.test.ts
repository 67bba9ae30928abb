import { EventEmitter } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ConfigError,
  ErrorCodes,
  HOP_KINDS,
  HOP_SCHEMA_VERSION,
  HoptraceError,
  type HoptraceOptions,
  connect,
  instrument,
} from '../src/index.ts';
import { AMQP_URL, waitFor } from './helpers/broker.ts';
import { type Fixture, capture, fixture } from './lib-capture.ts';

let fx: Fixture;
beforeAll(async () => {
  fx = await fixture();
});
afterAll(async () => {
  await fx.cleanup();
});

describe('options', () => {
  const invalid: [string, HoptraceOptions][] = [
    ['serviceName', { serviceName: '' }],
    ['logger', { logger: {} as never }],
    ['settleTimeoutMs', { settleTimeoutMs: -1 }],
    ['settleTimeoutMs', { settleTimeoutMs: Number.NaN }],
    ['consumerSpanParent', { consumerSpanParent: 'sibling' as never }],
    ['capturePayload.maxBytes', { capturePayload: { maxBytes: 0 } }],
    ['capturePayload.redact', { capturePayload: { redact: 'yes' as never } }],
    ['hooks.onHop', { hooks: { onHop: 42 as never } }],
    ['headerNames', { headerNames: { correlationId: 'x-id', causationId: 'x-id' } }],
    ['headerNames.correlationId', { headerNames: { correlationId: 'has space' } }],
    ['recordHeaders', { recordHeaders: 'no' as never }],
    ['tracerProvider', { tracerProvider: {} as never }],
    ['servicename', { servicename: 'typo' } as never],
  ];
  it.each(invalid)('a bad %s is a ConfigError naming the option, raised when the channel is wrapped', async (option, options) => {
    const raw = await fx.conn.createChannel();
    let error: unknown;
    try {
      instrument(raw, options);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).code).toBe(ErrorCodes.INVALID_OPTION);
    expect((error as Error).message).toContain(`"${option}"`);
    await raw.close();
  });

  it('instrument refuses something that is not an amqplib channel', () => {
    expect(() => instrument({} as never)).toThrow(ConfigError);
  });

  it('serviceName defaults to OTEL_SERVICE_NAME, then to unknown_service:node', async () => {
    const saved = process.env.OTEL_SERVICE_NAME;
    try {
      const q = await fx.queue('lib.opt.svc');
      process.env.OTEL_SERVICE_NAME = 'from-env';
      const a = capture();
      const chA = instrument(await fx.conn.createChannel(), { logger: a.logger });
      chA.sendToQueue(q, Buffer.from('x'));
      delete process.env.OTEL_SERVICE_NAME;
      const b = capture();
      const chB = instrument(await fx.conn.createChannel(), { logger: b.logger });
      chB.sendToQueue(q, Buffer.from('x'));
      expect(a.hops('send')[0]!.service).toBe('from-env');
      expect(b.hops('send')[0]!.service).toBe('unknown_service:node');
      // The record carries the service: no appId is stamped on the message.
      const sent = await chA.get(q, { noAck: true });
      expect(sent && sent.properties.appId).toBeUndefined();
      await Promise.all([chA.close(), chB.close()]);
    } finally {
      if (saved === undefined) delete process.env.OTEL_SERVICE_NAME;
      else process.env.OTEL_SERVICE_NAME = saved;
    }
  });
});

describe('connect', () => {
  it('an unreachable broker is a HoptraceError saying which URL (without its password) and what to do', async () => {
    const error = await connect('amqp://guest:s3cret@127.0.0.1:1', { logger: capture().logger }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HoptraceError);
    expect((error as HoptraceError).code).toBe(ErrorCodes.BROKER_UNREACHABLE);
    const message = (error as Error).message;
    expect(message).toContain('127.0.0.1:1');
    expect(message).not.toContain('s3cret');
    expect(message).toMatch(/Check that the broker is running/);
    expect((error as Error).cause).toBeDefined();
  });

  it('validates options before connecting', async () => {
    await expect(connect('amqp://127.0.0.1:1', { settleTimeoutMs: 0 })).rejects.toThrow(ConfigError);
  });

  it('uses AMQP_URL when no url is given, and instruments both channel kinds', async () => {
    const saved = process.env.AMQP_URL;
    process.env.AMQP_URL = AMQP_URL;
    try {
      const cap = capture();
      const conn = await connect(undefined, { logger: cap.logger });
      const ch = await conn.createChannel();
      const cch = await conn.createConfirmChannel();
      const q = await fx.queue('lib.opt.connect');
      ch.sendToQueue(q, Buffer.from('a'));
      cch.sendToQueue(q, Buffer.from('b'));
      await cch.waitForConfirms();
      expect(cap.hops('send')).toHaveLength(2);
      expect(cap.hops('confirm')).toHaveLength(1);
      await conn.close();
    } finally {
      if (saved === undefined) delete process.env.AMQP_URL;
      else process.env.AMQP_URL = saved;
    }
  });
});

describe('the instrumented channel', () => {
  it('is still amqplib’s channel: other methods, events, state and chaining work as before', async () => {
    const cap = capture();
    const raw = await fx.conn.createChannel();
    const ch = instrument(raw, { logger: cap.logger });
    expect(ch).toBeInstanceOf(EventEmitter);
    expect(ch.constructor).toBe(raw.constructor);
    expect(instrument(ch)).toBe(ch);
    // Chained calls stay on the instrumented channel.
    const closes: number[] = [];
    expect(ch.on('close', () => closes.push(1))).toBe(ch);
    // Writes land on the real channel.
    (ch as unknown as Record<string, unknown>).custom = 1;
    expect((raw as unknown as Record<string, unknown>).custom).toBe(1);
    const q = await fx.queue('lib.opt.passthrough');
    expect((await ch.checkQueue(q)).queue).toBe(q);
    await ch.prefetch(3);
    await ch.close();
    await waitFor(() => closes.length === 1, 'the close event');
  });

  it('the package exports the hop schema constants', () => {
    expect(HOP_SCHEMA_VERSION).toBe(1);
    expect(HOP_KINDS).toEqual(['send', 'confirm', 'return', 'receive', 'process', 'settle', 'replay']);
  });
});
