import { startTracing } from 'hoptrace/otel';
import { connect } from 'hoptrace';

const tracing = startTracing({ serviceName: 'billing' }); // OTLP/HTTP protobuf to $OTEL_EXPORTER_OTLP_ENDPOINT or http://localhost:4318
process.on('SIGTERM', () => void tracing.shutdown().finally(() => process.exit(0)));

const conn = await connect(process.env.AMQP_URL ?? 'amqp://localhost', { serviceName: 'billing' });
const ch = await conn.createChannel();
const { queue } = await ch.assertQueue('', { exclusive: true });
await ch.consume(queue, async (msg) => {
  ch.ack(msg);                                            // ends the consumer span (process → settle)
  await conn.close();
  await tracing.shutdown();                               // flushes the spans still buffered
});
ch.sendToQueue(queue, Buffer.from('{"invoice":"INV-1"}'), { type: 'invoice.issued' });
