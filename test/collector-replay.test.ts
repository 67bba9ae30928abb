import type { ChainDetail, ChainList, FailureGroup, ReplayResult } from '../collector/api-types.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../collector/cli.ts';
import { AMQP_URL, uniqueName, waitFor } from './helpers/broker.ts';
import { getJson, startTestCollector } from './helpers/collector.ts';
import { ADMIN, depth, groupOf, openShops, type Shop, type Shops } from './helpers/replay-shop.ts';

let shops: Shops;
let conn: Shops['conn'];
const shop = (options?: Parameters<Shops['open']>[0]) => shops.open(options);

beforeAll(async () => {
  shops = await openShops();
  conn = shops.conn;
});

afterAll(async () => {
  await shops?.close();
});

async function replay(s: Shop, body: object, token = ADMIN): Promise<{ status: number; body: any }> {
  const res = await fetch(`${s.collector.url}/api/replay`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

async function chain(s: Shop, id: string): Promise<ChainDetail> {
  return (await getJson(s.collector.url, `/api/chains/${encodeURIComponent(id)}`)).body as ChainDetail;
}

describe('dead-letter replay against the real RabbitMQ', () => {
  it('20 orders dead-lettered by a failing consumer, replayed as a group after the fix: 20 chains ok (replayed), lineage kept, DLQ empty, nothing twice', async () => {
    const s = await shop();
    const ids = Array.from({ length: 20 }, (_, i) => `order-${i}-${uniqueName('x').slice(2)}`);
    for (const id of ids) await s.order(id, 'unicorn frappuccino');
    const group = await groupOf(s, 20);
    expect(group).toMatchObject({
      status: 'dead-lettered',
      service: 'barista',
      queue: s.queue,
      errorType: 'UnknownDrinkError',
      pattern: '"…" is not on the menu (order …)',
      unresolved: 20,
      replayable: true,
      ongoing: true,
    });
    expect(group.queues).toEqual([s.queue, s.dlq]);
    expect(group.sparkline.reduce((a, b) => a + b, 0)).toBe(20);
    await waitFor(async () => (await depth(s, s.dlq)) === 20, 'the 20 dead letters in the DLQ');
    // The group's chains are a tag-filtered chain list, each dead-lettered.
    const listed = (await getJson(s.collector.url, `/api/failures/${group.fingerprint}/chains?limit=50`)).body as ChainList;
    expect(listed.items.map((c) => c.correlationId).sort()).toEqual([...ids].sort());
    expect(listed.items.every((c) => c.status === 'dead-lettered')).toBe(true);

    // A dry run lists all 20 and moves nothing.
    const dry = await replay(s, { group: group.fingerprint, dryRun: true });
    expect(dry.status).toBe(200);
    expect((dry.body as ReplayResult).counts).toEqual({ 'would-replay': 20 });
    expect((dry.body as ReplayResult).messages[0]).toMatchObject({ deadLetterQueue: s.dlq, exchange: s.exchange, routingKey: 'order.placed' });
    expect(await depth(s, s.dlq)).toBe(20);

    // The fix: the menu learns the drink. Then the group is replayed.
    s.menu.add('unicorn frappuccino');
    const done = await replay(s, { group: group.fingerprint, requestedBy: 'test:alice' });
    expect(done.status).toBe(200);
    expect((done.body as ReplayResult).counts).toEqual({ replayed: 20 });
    expect(await depth(s, s.dlq)).toBe(0);

    const replayed = await waitFor(
      async () => {
        const list = (await getJson(s.collector.url, '/api/chains?status=replayed&limit=50')).body as ChainList;
        return list.items.length === 20 && list.items.every((c) => c.status === 'ok' && c.replayed === true) ? list : undefined;
      },
      '20 chains ok (replayed)',
      30_000,
    );
    expect(replayed.items.map((c) => c.correlationId).sort()).toEqual([...ids].sort());
    for (const id of ids) {
      const d = await chain(s, id);
      expect(d.status).toBe('ok');
      expect(d.replayed).toBe(true);
      // The original failure stays visible.
      expect(d.firstFailure).toMatchObject({ messageId: id, status: 'dead-lettered', replayed: true });
      const original = d.messages.find((m) => m.messageId === id)!;
      expect(original.status).toBe('dead-lettered');
      expect(original.deadLetters[0]).toMatchObject({ queue: s.queue, deadLetterQueue: s.dlq });
      expect(d.hops.some((h) => h.messageId === id && h.kind === 'process' && h.error?.type === 'UnknownDrinkError')).toBe(true);
      // The replay: a new message caused by the dead-lettered one, in the same chain, handled fine.
      expect(d.replays).toHaveLength(1);
      const attempt = d.replays![0];
      expect(attempt).toMatchObject({ messageId: id, outcome: 'replayed', replayStatus: 'ok', requestedBy: 'test:alice', deadLetterQueue: s.dlq });
      const again = d.messages.find((m) => m.messageId === attempt.replayMessageId)!;
      expect(again.parentMessageId).toBe(id);
      expect(again.status).toBe('ok');
      expect(again.publisher).toMatchObject({ service: 'hoptrace-collector', exchange: s.exchange, routingKey: 'order.placed' });
      const receive = d.hops.find((h) => h.messageId === again.messageId && h.kind === 'receive')!;
      expect(receive.causationId).toBe(id);
      expect(receive.correlationId).toBe(id);
      expect(receive.headers).toMatchObject({ 'x-replay-of': id, 'x-replay-count': '1', 'x-shop': 'main' });
      expect(receive.headers?.['x-death']).toBeUndefined();
      expect(receive.messageType).toBe('OrderPlaced');
      // The replay hangs off the dead letter.
      const reject = d.hops.find((h) => h.messageId === id && h.kind === 'settle')!;
      const replayHop = d.hops.find((h) => h.kind === 'replay')!;
      expect(replayHop.waitSinceHopId).toBe(reject.id);
      expect(receive.waitSinceHopId).toBe(replayHop.id);
    }
    // Nothing was delivered twice: each order failed once and was served once.
    expect([...s.served.values()]).toEqual(new Array(20).fill(1));
    expect(s.handled).toHaveLength(40);
    // The group now says it is resolved; replaying it again finds nothing left to move.
    const after = await groupOf(s, 20);
    await waitFor(async () => ((await getJson(s.collector.url, `/api/failures/${group.fingerprint}`)).body as FailureGroup).unresolved === 0, 'the group resolved');
    expect(after.fingerprint).toBe(group.fingerprint);
    const nothing = await replay(s, { group: group.fingerprint });
    expect((nothing.body as ReplayResult).messages).toEqual([]);
    const byId = await replay(s, { messageIds: [ids[0]] });
    expect((byId.body as ReplayResult).messages[0]).toMatchObject({ messageId: ids[0], outcome: 'already-replayed' });
  });

  it('an unroutable republish leaves the message in the dead-letter queue, and its chain shows the attempt', async () => {
    const s = await shop();
    const id = `order-u-${uniqueName('x').slice(2)}`;
    await s.order(id, 'unicorn frappuccino');
    await groupOf(s, 1);
    await waitFor(async () => (await depth(s, s.dlq)) === 1, 'the dead letter');
    // Nothing is bound for the routing key any more.
    await s.setup.unbindQueue(s.queue, s.exchange, 'order.placed');
    const r = await replay(s, { messageIds: [id], requestedBy: 'test' });
    expect(r.body.messages).toEqual([expect.objectContaining({ messageId: id, outcome: 'unroutable', detail: expect.stringContaining('312 NO_ROUTE') })]);
    expect(await depth(s, s.dlq)).toBe(1);
    const d = await waitFor(async () => {
      const x = await chain(s, id);
      return x.replays?.[0]?.outcome === 'unroutable' ? x : undefined;
    }, 'the unroutable attempt in its chain');
    expect(d.status).toBe('dead-lettered');
    expect(d.replayed).toBeUndefined();
    expect(d.replays![0]).toMatchObject({ messageId: id, requestedBy: 'test', reason: expect.stringContaining('NO_ROUTE') });
    // Bound again, the same message replays fine: it was never lost.
    await s.setup.bindQueue(s.queue, s.exchange, 'order.placed');
    s.menu.add('unicorn frappuccino');
    expect((await replay(s, { messageIds: [id] })).body.counts).toEqual({ replayed: 1 });
    expect(await depth(s, s.dlq)).toBe(0);
    await waitFor(async () => s.served.get(id) === 1, 'the replayed order served');
  });

  it('a republish the broker nacks (the target queue refuses it) leaves the message in the dead-letter queue', async () => {
    // An orders queue that refuses publishes once it holds one message: the broker nacks what it cannot take.
    const s = await shop({ queueArgs: { 'x-max-length': 1, 'x-overflow': 'reject-publish' } });
    const id = `order-n-${uniqueName('x').slice(2)}`;
    await s.order(id, 'unicorn frappuccino');
    await groupOf(s, 1);
    await waitFor(async () => (await depth(s, s.dlq)) === 1, 'the dead letter');
    await s.stopBarista();
    const plain = await conn.createChannel();
    plain.sendToQueue(s.queue, Buffer.from('{"orderId":"filler","drink":"cortado"}'));
    await waitFor(async () => (await depth(s, s.queue)) === 1, 'the orders queue full');
    await plain.close();
    const r = await replay(s, { messageIds: [id] });
    expect(r.body.messages).toEqual([expect.objectContaining({ messageId: id, outcome: 'rejected', detail: expect.stringContaining('nacked') })]);
    expect(await depth(s, s.dlq)).toBe(1);
    expect(await depth(s, s.queue)).toBe(1);
    const d = await waitFor(async () => {
      const x = await chain(s, id);
      return x.replays?.[0]?.outcome === 'rejected' ? x : undefined;
    }, 'the nacked attempt in its chain');
    expect(d.status).toBe('dead-lettered');
  });

  it('a republish to an exchange that no longer exists fails the channel, and the broker puts the message back: nothing lost', async () => {
    const s = await shop();
    const ids = [`order-x1-${uniqueName('x').slice(2)}`, `order-x2-${uniqueName('x').slice(2)}`];
    for (const id of ids) await s.order(id, 'unicorn frappuccino');
    const group = await groupOf(s, 2);
    await waitFor(async () => (await depth(s, s.dlq)) === 2, 'two dead letters');
    await s.setup.deleteExchange(s.exchange);
    const r = await replay(s, { group: group.fingerprint });
    expect(r.status).toBe(200);
    // The first republish closes the channel (404 NOT_FOUND); the second message is never reached.
    expect(r.body.messages.map((m: { outcome: string }) => m.outcome)).toEqual(['error', 'error']);
    expect(r.body.messages[0].detail).toContain('NOT_FOUND');
    await waitFor(async () => (await depth(s, s.dlq)) === 2, 'both messages back in the dead-letter queue');
    // The collector opens a new channel for the next replay: with the exchange back, both go.
    await s.setup.assertExchange(s.exchange, 'direct', { autoDelete: false });
    await s.setup.bindQueue(s.queue, s.exchange, 'order.placed');
    s.menu.add('unicorn frappuccino');
    expect((await replay(s, { group: group.fingerprint })).body.counts).toEqual({ replayed: 2 });
    expect(await depth(s, s.dlq)).toBe(0);
  });

  it('a message that has left the dead-letter queue is reported as not found, by the API and by `hoptrace replay`', async () => {
    const s = await shop();
    const gone = `order-g-${uniqueName('x').slice(2)}`;
    const there = `order-t-${uniqueName('x').slice(2)}`;
    await s.order(gone, 'unicorn frappuccino');
    await s.order(there, 'unicorn frappuccino');
    const group = await groupOf(s, 2);
    await waitFor(async () => (await depth(s, s.dlq)) === 2, 'two dead letters');
    // Someone drains one of them by hand (no hoptrace involved).
    const drain = await conn.createChannel();
    for (;;) {
      const m = await drain.get(s.dlq, { noAck: false });
      if (m === false) break;
      if (m.properties.messageId === gone) drain.ack(m);
    }
    // Closing the channel puts back what it did not ack.
    await drain.close();
    expect(await depth(s, s.dlq)).toBe(1);
    s.menu.add('unicorn frappuccino');
    const out: string[] = [];
    const write = process.stdout.write;
    process.stdout.write = ((chunk: string) => (out.push(String(chunk)), true)) as typeof process.stdout.write;
    let code: number;
    try {
      code = await main(['replay', '--group', group.fingerprint, '--url', s.collector.url, '--token', ADMIN]);
    } finally {
      process.stdout.write = write;
    }
    const text = out.join('');
    expect(code).toBe(1);
    expect(text).toMatch(new RegExp(`replayed\\s+${there}`));
    expect(text).toMatch(new RegExp(`not-found\\s+${gone}.*not in ${s.dlq.replace(/\./g, '\\.')}`));
    expect(text).toContain('2 messages: replayed 1, not-found 1');
    expect(await depth(s, s.dlq)).toBe(0);
    const d = await waitFor(async () => {
      const x = await chain(s, gone);
      return x.replays?.[0]?.outcome === 'not-found' ? x : undefined;
    }, 'the not-found attempt in its chain');
    expect(d.replays![0].requestedBy).toMatch(/^cli:/);
    expect(d.status).toBe('dead-lettered');
  });

  it('two concurrent replays of the same group move each message once', async () => {
    const s = await shop();
    const ids = Array.from({ length: 10 }, (_, i) => `order-c${i}-${uniqueName('x').slice(2)}`);
    for (const id of ids) await s.order(id, 'unicorn frappuccino');
    const group = await groupOf(s, 10);
    await waitFor(async () => (await depth(s, s.dlq)) === 10, 'ten dead letters');
    s.menu.add('unicorn frappuccino');
    const [a, b] = await Promise.all([replay(s, { group: group.fingerprint }), replay(s, { group: group.fingerprint })]);
    const moved = [...a.body.messages, ...b.body.messages].filter((m: { outcome: string }) => m.outcome === 'replayed').map((m: { messageId: string }) => m.messageId);
    expect(moved.sort()).toEqual([...ids].sort());
    for (const m of [...a.body.messages, ...b.body.messages]) expect(['replayed', 'already-replayed', 'not-found']).toContain(m.outcome);
    expect(await depth(s, s.dlq)).toBe(0);
    await waitFor(async () => s.served.size === 10, 'every order served');
    // Give a second copy every chance to arrive before checking there is none.
    await waitFor(async () => {
      const list = (await getJson(s.collector.url, '/api/chains?status=replayed&limit=50')).body as ChainList;
      return list.items.length === 10 && list.items.every((c) => c.status === 'ok');
    }, 'ten chains ok (replayed)', 30_000);
    expect([...s.served.values()]).toEqual(new Array(10).fill(1));
    for (const id of ids) expect((await chain(s, id)).replays!.filter((r) => r.outcome === 'replayed')).toHaveLength(1);
  });

  it('replay needs its token, and says why it is off without --amqp-url', async () => {
    const s = await shop({ collector: { token: 'ingest-secret', adminToken: ADMIN } });
    const fp = '0123456789abcdef';
    expect((await replay(s, { group: fp }, 'ingest-secret')).status).toBe(401);
    const none = await fetch(`${s.collector.url}/api/replay`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(none.status).toBe(401);
    expect((await replay(s, { group: fp })).body).toMatchObject({ messages: [], counts: {} });
    expect((await replay(s, { group: 'nope' })).status).toBe(400);
    const config = await fetch(`${s.collector.url}/api/replay`, { headers: { authorization: 'Bearer ingest-secret' } });
    expect(await config.json()).toMatchObject({ enabled: true, adminToken: true });

    const off = await startTestCollector();
    shops.track(off);
    const status = (await getJson(off.url, '/api/replay')).body;
    expect(status).toMatchObject({ enabled: false, reason: expect.stringContaining('--amqp-url') });
    const refused = await fetch(`${off.url}/api/replay`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ group: fp }) });
    expect(refused.status).toBe(409);
    expect(await refused.json()).toMatchObject({ code: 'HOPTRACE_ERR_REPLAY_DISABLED', message: expect.stringContaining('--amqp-url') });
    const unguarded = await startTestCollector({ amqpUrl: AMQP_URL });
    shops.track(unguarded);
    expect((await getJson(unguarded.url, '/api/config')).body.replay).toMatchObject({ enabled: false, reason: expect.stringContaining('--admin-token') });
  });
});
