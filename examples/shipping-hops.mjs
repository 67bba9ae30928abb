import pino from 'pino';
import { connect } from 'hoptrace';

const logger = pino({}, pino.transport({
  targets: [
    { target: 'hoptrace/transport', options: {} },          // to HOPTRACE_URL, else http://localhost:4400
    { target: 'pino/file', options: { destination: 1 } },  // keep logging to stdout too
  ],
}));
const conn = await connect(process.env.AMQP_URL ?? 'amqp://localhost', { serviceName: 'billing', logger });

const ch = await conn.createChannel();
const { queue } = await ch.assertQueue('', { exclusive: true });
await ch.consume(queue, async (msg) => {
  ch.ack(msg);
  await conn.close();                                      // the transport ships what is left as the process exits
});
ch.sendToQueue(queue, Buffer.from('{"invoice":"INV-1"}'), { type: 'invoice.issued' });
