import pino from 'pino';
import { connect, currentHopContext, hoptraceMixin } from 'hoptrace';

const log = pino({ mixin: hoptraceMixin });   // inside a handler: correlationId, causationId, messageId, traceId, spanId
const conn = await connect(process.env.AMQP_URL ?? 'amqp://localhost', { serviceName: 'notification', logger: log });

const ch = await conn.createChannel();
const { queue } = await ch.assertQueue('', { exclusive: true });
await ch.consume(queue, async (msg) => {
  log.info('sending the withdrawal email');   // this line carries the message's ids
  console.error(currentHopContext());         // { correlationId, causationId, messageId, traceId } | undefined
  ch.ack(msg);
  await conn.close();
});
ch.sendToQueue(queue, Buffer.from('{"memberId":42}'), { type: 'family.member.withdrawn' });
