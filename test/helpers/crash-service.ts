/**
 * A service for the crash test (test/lib-records.test.ts): it publishes a
 * message every 10 ms on a ConfirmChannel and consumes them, acking four in
 * five and holding the fifth unsettled, with hop lines to HOP_LOG (pino,
 * synchronous file). Before each publish it appends `messageId ts held?` to
 * TRUTH_LOG, so the test knows what happened even for messages whose
 * records the crash lost. It runs until it is killed.
 */
import { randomUUID } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import pino from 'pino';
import { connect } from '../../src/index.ts';

const env = (name: string): string => {
  const v = process.env[name];
  if (!v) throw new Error(`crash-service: ${name} is not set`);
  return v;
};

const logger = pino(pino.destination({ dest: env('HOP_LOG'), sync: true }));
const conn = await connect(env('AMQP_URL'), { serviceName: 'crashy', logger, recordGraceMs: Number(env('GRACE_MS')) });
const pub = await conn.createConfirmChannel();
const sub = await conn.createChannel();
const queue = env('QUEUE');
await sub.prefetch(10_000);
await sub.consume(queue, (m) => {
  if (m !== null && m.content.toString() !== 'held') sub.ack(m);
});
let n = 0;
setInterval(() => {
  const messageId = randomUUID();
  const held = n++ % 5 === 4;
  appendFileSync(env('TRUTH_LOG'), `${messageId} ${Date.now()} ${held ? 'held' : 'acked'}\n`);
  pub.sendToQueue(queue, Buffer.from(held ? 'held' : 'acked'), { messageId });
}, 10);
process.send?.('ready');
