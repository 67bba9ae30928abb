import amqp from 'amqplib';
import { describe, expect, it } from 'vitest';
import { brokerAdvice, redactAmqpUrl } from '../demo/broker-advice.ts';
import { AMQP_URL } from './helpers/broker.ts';

/** The error the real broker (or the network) gives for `url`. */
async function connectError(url: string): Promise<unknown> {
  try {
    const conn = await amqp.connect(url);
    await conn.close();
  } catch (err) {
    return err;
  }
  throw new Error(`${url} connected`);
}

describe('advice when RabbitMQ cannot be used', () => {
  it('a refused login says to check the user and password, not to start a broker', async () => {
    const url = new URL(AMQP_URL);
    url.username = 'nobody-here';
    url.password = 'wrong';
    const advice = brokerAdvice(url.toString(), await connectError(url.toString()));
    expect(advice).toMatch(/refused the login of user "nobody-here"/);
    expect(advice).toMatch(/Check the user and password in AMQP_URL/);
    expect(advice).not.toMatch(/Start one|rabbitmq-server/);
    expect(advice).not.toContain('wrong');
  });

  it('a broker that is not there says how to start one', async () => {
    const url = 'amqp://guest:guest@127.0.0.1:1';
    const advice = brokerAdvice(url, await connectError(url));
    expect(advice).toMatch(/Cannot reach RabbitMQ at amqp:\/\/guest:\*\*\*@127\.0\.0\.1:1/);
    expect(advice).toMatch(/rabbitmq-server -detached/);
  });

  it('a host that does not resolve says to check AMQP_URL', async () => {
    const url = 'amqp://guest:guest@no-such-host.invalid:5672';
    expect(brokerAdvice(url, await connectError(url))).toMatch(/does not resolve: check AMQP_URL/);
  });

  it('never prints a password', () => {
    expect(redactAmqpUrl('amqp://me:s3cret@host:5672/vh')).toBe('amqp://me:***@host:5672/vh');
  });
});
