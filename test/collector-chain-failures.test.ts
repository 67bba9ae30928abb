import { describe, expect, it } from 'vitest';
import { buildChain, DEFAULT_ENGINE_OPTIONS, summarizeChain } from '../collector/chain-engine.ts';
import { chainTags } from '../collector/chain-summary.ts';
import { ChainFixture, deadLetterChain, REPLAY_DLQ, replayedChain, twoProblemChain, unroutableChain } from './helpers/chain-fixtures.ts';

const settings = { ...DEFAULT_ENGINE_OPTIONS, deadLetterQueues: { 'billing.order-placed': REPLAY_DLQ } };

describe('failures and replays of a chain', () => {
  it('a dead-lettered message replayed and then handled is ok (replayed); its failure stays as history', () => {
    const f = replayedChain({ seed: 41 });
    const detail = buildChain(f.correlationId, f.hops, { ...settings, now: f.now });
    const [original, replay] = f.messageIds;
    expect(detail.status).toBe('ok');
    expect(detail.problems).toEqual([]);
    expect(detail.replayed).toBe(true);
    // The dead-lettered message keeps what happened to it.
    const m = detail.messages.find((x) => x.messageId === original)!;
    expect(m.status).toBe('dead-lettered');
    expect(m.statusReason).toContain(`replayed as ${replay}`);
    expect(m.childMessageIds).toEqual([replay]);
    // Its first failure is shown, marked as replayed.
    expect(detail.firstFailure).toMatchObject({ messageId: original, status: 'dead-lettered', replayed: true });
    // The replay is a new branch from the dead letter: the reject, then the replay, then the replayed delivery.
    const reject = detail.hops.find((h) => h.messageId === original && h.kind === 'settle')!;
    const replayHop = detail.hops.find((h) => h.kind === 'replay')!;
    const receive = detail.hops.find((h) => h.messageId === replay && h.kind === 'receive')!;
    expect(replayHop.messageId).toBe(replay);
    expect(replayHop.causationId).toBe(original);
    expect(replayHop.waitSinceHopId).toBe(reject.id);
    expect(receive.waitSinceHopId).toBe(replayHop.id);
    expect(reject.seq).toBeLessThan(replayHop.seq);
    expect(replayHop.seq).toBeLessThan(receive.seq);
    expect(detail.messages.find((x) => x.messageId === replay)!.publisher?.service).toBe('hoptrace-collector');
    expect(detail.replays).toEqual([
      expect.objectContaining({ messageId: original, outcome: 'replayed', replayMessageId: replay, replayStatus: 'ok', requestedBy: 'ui', deadLetterQueue: REPLAY_DLQ }),
    ]);
    // Failure groups still count the dead letter, as resolved.
    expect(detail.failures).toEqual([expect.objectContaining({ messageId: original, status: 'dead-lettered', replayed: true, deadLetterQueue: REPLAY_DLQ })]);
    const summary = summarizeChain(detail, 1);
    expect(summary).toMatchObject({ status: 'ok', replayed: true, failure: { status: 'dead-lettered', replayed: true } });
    expect(summary.failureTally).toEqual([expect.objectContaining({ count: 1, unresolved: 0 })]);
    expect(chainTags(summary, f.hops)).toEqual(expect.arrayContaining([{ kind: 'replayed' }, { kind: 'failure', value: detail.failures![0].fingerprint }]));
  });

  it('a replay that is dead-lettered again leaves the chain dead-lettered, its first failure the replay’s', () => {
    const f = replayedChain({ seed: 42, replay: 'fails-again' });
    const detail = buildChain(f.correlationId, f.hops, { ...settings, now: f.now });
    const [original, replay] = f.messageIds;
    expect(detail.status).toBe('dead-lettered');
    expect(detail.firstFailure).toMatchObject({ messageId: replay, status: 'dead-lettered' });
    expect(detail.firstFailure!.replayed).toBeUndefined();
    expect(detail.failures!.map((x) => [x.messageId, x.replayed])).toEqual([
      [original, true],
      [replay, false],
    ]);
    // The same failure twice: one group.
    expect(new Set(detail.failures!.map((x) => x.fingerprint)).size).toBe(1);
    // A minute apart: two buckets of the group, the replayed one resolved.
    expect(summarizeChain(detail, 1).failureTally!.map((t) => [t.count, t.unresolved])).toEqual([
      [1, 0],
      [1, 1],
    ]);
  });

  it('a replay that found nothing in the dead-letter queue moves nothing: the chain stays dead-lettered and says so', () => {
    const f = replayedChain({ seed: 43, replay: 'not-found' });
    const detail = buildChain(f.correlationId, f.hops, { ...settings, now: f.now });
    expect(detail.status).toBe('dead-lettered');
    expect(detail.replayed).toBeUndefined();
    expect(detail.replays).toEqual([expect.objectContaining({ messageId: f.messageIds[0], outcome: 'not-found', reason: expect.stringContaining(REPLAY_DLQ) })]);
    const attempt = detail.hops.find((h) => h.kind === 'replay')!;
    const reject = detail.hops.find((h) => h.kind === 'settle')!;
    expect(attempt.waitSinceHopId).toBe(reject.id);
    expect(attempt.seq).toBeGreaterThan(reject.seq);
  });

  it('a reject on a queue whose dead-letter queue is configured is dead-lettered at once; unconfigured it waits for a copy, then is discarded', () => {
    const f = new ChainFixture({ seed: 44 });
    const id = f.publish({ service: 'order-api', at: 0, exchange: 'orders', routingKey: 'order.placed' });
    f.consume({ messageId: id, service: 'billing', queue: 'billing.order-placed', at: 10, outcome: 'error', settle: 'nack', requeue: false });
    const configured = buildChain(f.correlationId, f.hops(), { ...settings, now: f.now() });
    expect(configured.status).toBe('dead-lettered');
    expect(configured.messages[0].deadLetters).toEqual([expect.objectContaining({ queue: 'billing.order-placed', deadLetterQueue: REPLAY_DLQ })]);
    expect(configured.failures![0]).toMatchObject({ deadLetterQueue: REPLAY_DLQ, errorType: 'TypeError' });
    const waiting = buildChain(f.correlationId, f.hops(), { ...DEFAULT_ENGINE_OPTIONS, now: f.now() });
    expect(waiting.status).toBe('failed');
    expect(waiting.problems).toContain('in-flight');
    expect(buildChain(f.correlationId, f.hops(), { ...DEFAULT_ENGINE_OPTIONS, now: f.now(120_000) }).status).toBe('discarded');
  });

  it('a handler error that got the message dead-lettered is one problem delivery, with the handler’s error; the copy names its dead-letter queue', () => {
    const f = deadLetterChain({ seed: 45 });
    const detail = buildChain(f.correlationId, f.hops, { ...DEFAULT_ENGINE_OPTIONS, now: f.now });
    expect(detail.failures).toEqual([
      expect.objectContaining({
        status: 'dead-lettered',
        service: 'billing',
        queue: 'billing.order-placed',
        errorType: 'PaymentDeclinedError',
        message: 'card declined: insufficient funds',
        deadLetterQueue: 'billing.order-placed.dlq',
        replayed: false,
      }),
    ]);
  });

  it('problems in different places are different groups; a publish’s problem is placed on its exchange and routing key', () => {
    const two = buildChain('two', twoProblemChain({ seed: 46 }).hops, { ...DEFAULT_ENGINE_OPTIONS, now: twoProblemChain({ seed: 46 }).now });
    expect(new Set(two.failures!.map((x) => x.fingerprint)).size).toBe(two.failures!.length);
    const u = unroutableChain({ seed: 47 });
    const unroutable = buildChain(u.correlationId, u.hops, { ...DEFAULT_ENGINE_OPTIONS, now: u.now });
    expect(unroutable.failures).toEqual([expect.objectContaining({ status: 'unroutable', exchange: expect.any(String), routingKey: expect.any(String), message: 'NO_ROUTE' })]);
    expect(unroutable.failures![0].queue).toBeUndefined();
  });
});

describe('a replayed chain exported', () => {
  it('exports the replay as the new message’s producer span, and the replayed delivery as its consumer', async () => {
    const { chainToJaeger } = await import('../collector/chain-export.ts');
    const f = replayedChain({ seed: 48 });
    const detail = buildChain(f.correlationId, f.hops, { ...settings, now: f.now });
    const trace = chainToJaeger(detail).data[0];
    const replayHop = detail.hops.find((h) => h.kind === 'replay')!;
    const producer = trace.spans.find((s) => s.spanID === replayHop.spanId)!;
    expect(producer.operationName).toMatch(/^send /);
    expect(trace.processes[producer.processID].serviceName).toBe('hoptrace-collector');
    const consumers = trace.spans.filter((s) => s.references.some((r) => r.spanID === producer.spanID));
    expect(consumers).toHaveLength(1);
  });
});
