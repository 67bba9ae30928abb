import { connect } from 'hoptrace';                                  // was: import amqp from 'amqplib'

const conn = await connect(process.env.AMQP_URL ?? 'amqp://localhost', { serviceName: 'family-account' });
const ch = await conn.createChannel();                                // an ordinary amqplib Channel
const { queue } = await ch.assertQueue('', { exclusive: true });      // this process's own queue, gone when it disconnects

await ch.consume(queue, async (msg) => {
  ch.ack(msg);
  if (msg.properties.type === 'member.removed') {
    // a publish from inside the handler carries the consumed message's correlation id
    ch.sendToQueue(queue, Buffer.from('{"memberId":42}'), { type: 'family.member.withdrawn' });
  } else {
    await conn.close();                                               // two messages, one chain: done
  }
});
ch.sendToQueue(queue, Buffer.from('{"memberId":42}'), { type: 'member.removed' }); // the chain's first message
