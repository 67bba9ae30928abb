import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AnyHopRecord, type ConsumeRecordV2, instrument, telemetryStats } from '../src/index.ts';
import { waitFor } from './helpers/broker.ts';
import { type Fixture, capture, delay, fixture } from './lib-capture.ts';

let fx: Fixture;
beforeAll(async () => {
  fx = await fixture();
});
afterAll(async () => {
  await fx.cleanup();
});

describe('telemetry never breaks the flow', () => {
  it('a logger that throws on every line breaks neither publish nor consume, and is reported once as a process warning', async () => {
    const broken = pino({}, { write: () => { throw new Error('disk full'); } });
    const warnings: Error[] = [];
    const onWarning = (w: Error) => {
      if ((w as Error & { code?: string }).code === 'HOPTRACE_ERR_TELEMETRY') warnings.push(w);
    };
    process.on('warning', onWarning);
    try {
      const q = await fx.queue('lib.tel.logger');
      const ch = instrument(await fx.conn.createChannel(), { logger: broken });
      const got: string[] = [];
      await ch.consume(q, (m) => {
        got.push(m!.content.toString());
        ch.ack(m!);
      });
      const before = telemetryStats().loggerErrors;
      for (let i = 0; i < 3; i++) expect(() => ch.sendToQueue(q, Buffer.from(String(i)))).not.toThrow();
      await waitFor(() => got.length === 3, 'three deliveries');
      await delay(20);
      // a publish and a consume record for each of three messages: every one failed and was counted
      expect(telemetryStats().loggerErrors - before).toBe(6);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]!.message).toContain('disk full');
      await ch.close();
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('a hook that throws or rejects is contained, counted, and reported once through the logger', async () => {
    const cap = capture();
    const q = await fx.queue('lib.tel.hook');
    let calls = 0;
    const ch = instrument(await fx.conn.createChannel(), {
      logger: cap.logger,
      hooks: {
        onHop: (record) => {
          calls++;
          if (record.kind === 'publish') throw new Error('hook bug');
          return Promise.reject(new Error('async hook bug')) as unknown as void;
        },
      },
    });
    await ch.consume(q, (m) => ch.ack(m!));
    const before = telemetryStats().hookErrors;
    expect(() => ch.sendToQueue(q, Buffer.from('x'))).not.toThrow();
    await waitFor(() => cap.hops('settle').length === 1, 'the settle');
    await delay(10);
    // One publish and one consume record.
    expect(calls).toBe(2);
    expect(telemetryStats().hookErrors - before).toBe(2);
    const reports = cap.warnings().filter((w) => w.code === 'HOPTRACE_ERR_TELEMETRY');
    expect(reports).toHaveLength(1);
    expect(reports[0]!.msg).toContain('hook bug');
    expect(cap.hops().map((h) => h.kind)).toEqual(['send', 'receive', 'process', 'settle']);
    await ch.close();
  });

  it('the onHop hook sees every record exactly as it is logged', async () => {
    const cap = capture();
    const seen: AnyHopRecord[] = [];
    const q = await fx.queue('lib.tel.seen');
    const ch = instrument(await fx.conn.createChannel(), { logger: cap.logger, hooks: { onHop: (record) => void seen.push(record) } });
    await ch.consume(q, (m) => ch.ack(m!));
    ch.sendToQueue(q, Buffer.from('x'));
    await waitFor(() => seen.length === 2, 'two records');
    // The line leaves out `instance` when its own hostname and pid say it; the hook's record always has it.
    const line = cap.recordLines()[0]!;
    expect(JSON.parse(JSON.stringify(seen))).toEqual(cap.records().map((r) => ({ instance: `${line.hostname}/${line.pid}`, ...r })));
    expect(seen.map((r) => r.kind)).toEqual(['publish', 'consume']);
    await ch.close();
  });

  it('a redact function that throws leaves the payload out rather than logging it unredacted', async () => {
    const cap = capture();
    const q = await fx.queue('lib.tel.redact');
    const ch = instrument(await fx.conn.createChannel(), {
      logger: cap.logger,
      capturePayload: { redact: () => { throw new Error('regex bug'); } },
    });
    const before = telemetryStats().redactErrors;
    ch.sendToQueue(q, Buffer.from('{"password":"hunter2"}'));
    const send = cap.hops('send')[0]!;
    expect(send.payload).toBeUndefined();
    expect(JSON.stringify(cap.lines)).not.toContain('hunter2');
    expect(telemetryStats().redactErrors - before).toBe(1);
    await ch.close();
  });

  it('log levels: warn for returns, nacks and rejects; error for a failed handler', async () => {
    const cap = capture();
    const q = await fx.queue('lib.tel.levels');
    const ch = instrument(await fx.conn.createChannel(), { logger: cap.logger });
    await ch.consume(q, (m) => {
      if (m!.content.toString() === 'nack') ch.nack(m!, false, false);
      else ch.reject(m!, false);
    });
    ch.sendToQueue(q, Buffer.from('nack'));
    ch.sendToQueue(q, Buffer.from('reject'));
    await waitFor(() => cap.hops('process').length === 2, 'two handlers');
    const consumed = cap.recordLines().filter((l) => l.hop?.kind === 'consume');
    expect(consumed.map((l) => [(l.hop as ConsumeRecordV2).settle, (l.hop as ConsumeRecordV2).requeue, l.level])).toEqual([
      ['nack', false, 40],
      ['reject', false, 40],
    ]);
    expect(cap.recordLines().filter((l) => l.hop?.kind === 'publish').every((l) => l.level === 30)).toBe(true);
    await ch.close();
  });
});
