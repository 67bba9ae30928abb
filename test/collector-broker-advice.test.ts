import { createServer as createHttpServer } from 'node:http';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import amqp from 'amqplib';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { brokerAdvice, classifyBrokerFailure } from '../collector/broker-advice.ts';
import { redactUrl } from '../src/contract/url.ts';
import { ReplayBroker } from '../collector/replay-broker.ts';
import { AMQP_URL } from './helpers/broker.ts';
import { closedPort } from './helpers/ports.ts';

/** The error the real broker (or the network) gives for `url`. */
async function connectError(url: string, socketOptions?: { timeout?: number }): Promise<unknown> {
  try {
    const conn = await amqp.connect(url, socketOptions);
    await conn.close();
  } catch (err) {
    return err;
  }
  throw new Error(`${url} connected`);
}

/** The test broker's URL with other credentials or another vhost. */
function brokerUrl(change: { user?: string; password?: string; vhost?: string }): string {
  const url = new URL(AMQP_URL);
  if (change.user !== undefined) url.username = change.user;
  if (change.password !== undefined) url.password = change.password;
  if (change.vhost !== undefined) url.pathname = `/${encodeURIComponent(change.vhost)}`;
  return url.toString();
}

const START_A_BROKER = /docker run|rabbitmq-server|Start one/;


// Real sockets that are not RabbitMQ: one that accepts and never speaks, one that speaks HTTP.
let silent: Server;
const silentSockets = new Set<Socket>();
let web: ReturnType<typeof createHttpServer>;
const portOf = (s: { address(): unknown }) => (s.address() as AddressInfo).port;
beforeAll(async () => {
  silent = createServer((socket) => {
    silentSockets.add(socket);
    socket.on('close', () => silentSockets.delete(socket));
  });
  web = createHttpServer((_req, res) => res.end('not amqp'));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  await new Promise<void>((resolve) => web.listen(0, '127.0.0.1', resolve));
});
afterAll(async () => {
  for (const socket of silentSockets) socket.destroy();
  await new Promise((resolve) => silent.close(resolve));
  web.closeAllConnections();
  await new Promise((resolve) => web.close(resolve));
});

describe('advice when RabbitMQ cannot be used', () => {
  it('a refused login (403 ACCESS-REFUSED) says to check the user and password, not to start a broker', async () => {
    const url = brokerUrl({ user: 'guest', password: 'wrong' });
    const cause = await connectError(url);
    expect(classifyBrokerFailure(cause)).toBe('access-refused');
    const advice = brokerAdvice(url, cause);
    expect(advice).toMatch(/refused the login of user "guest" \(403 ACCESS-REFUSED\): the broker is running/);
    expect(advice).toMatch(/Check the user and password in AMQP_URL/);
    expect(advice).toMatch(/guest\/guest only from localhost/);
    expect(advice).not.toMatch(START_A_BROKER);
    expect(advice).not.toContain('wrong');
  });

  it('an unknown user is refused the same way, named in the advice', async () => {
    const url = brokerUrl({ user: 'nobody-here', password: 'secret-pw' });
    const advice = brokerAdvice(url, await connectError(url));
    expect(advice).toMatch(/refused the login of user "nobody-here"/);
    expect(advice).not.toContain('secret-pw');
  });

  it('a virtual host that does not exist is named, with the commands that create it, not a broker to start', async () => {
    const url = brokerUrl({ vhost: 'no-such-vhost' });
    const cause = await connectError(url);
    expect(classifyBrokerFailure(cause)).toBe('vhost');
    const advice = brokerAdvice(url, cause);
    expect(advice).toMatch(/would not open the virtual host "no-such-vhost" for user "guest"/);
    expect(advice).toContain('rabbitmqctl add_vhost no-such-vhost');
    expect(advice).not.toMatch(START_A_BROKER);
  });

  it('a closed port says nothing listens there and how to start a broker', async () => {
    const url = `amqp://guest:guest@127.0.0.1:${await closedPort()}`;
    const cause = await connectError(url);
    expect(classifyBrokerFailure(cause)).toBe('refused');
    const advice = brokerAdvice(url, cause);
    expect(advice).toContain(`Cannot reach RabbitMQ at ${redactUrl(url)}`);
    expect(advice).toMatch(/ECONNREFUSED/);
    expect(advice).toContain('docker run -d --name rabbitmq -p 5672:5672');
    expect(advice).toMatch(/rabbitmq-server -detached/);
  });

  it('a host that does not resolve says to check the host name', async () => {
    const url = 'amqp://guest:guest@no-such-host.invalid:5672';
    const cause = await connectError(url);
    expect(classifyBrokerFailure(cause)).toBe('dns');
    const advice = brokerAdvice(url, cause);
    expect(advice).toMatch(/does not resolve .*check the host name in AMQP_URL/);
    expect(advice).not.toMatch(START_A_BROKER);
  });

  it('a server that accepts and never answers is a timeout: check host, port and firewall', async () => {
    const url = `amqp://guest:guest@127.0.0.1:${portOf(silent)}`;
    const cause = await connectError(url, { timeout: 300 });
    expect(classifyBrokerFailure(cause)).toBe('timeout');
    const advice = brokerAdvice(url, cause);
    expect(advice).toMatch(/did not answer in time .*check the host and port in AMQP_URL.*firewall/);
    expect(advice).not.toMatch(START_A_BROKER);
  });

  it('a port that speaks another protocol (HTTP) says it is not an AMQP broker', async () => {
    const url = `amqp://guest:guest@127.0.0.1:${portOf(web)}`;
    const cause = await connectError(url);
    expect(classifyBrokerFailure(cause)).toBe('not-amqp');
    expect(brokerAdvice(url, cause)).toMatch(/not as an AMQP 0-9-1 broker.*15672 is the management UI; AMQP is 5672/);
  });

  it('names the setting the user gave the URL with', async () => {
    const url = brokerUrl({ password: 'wrong' });
    expect(brokerAdvice(url, await connectError(url), { setting: '--amqp-url' })).toMatch(/Check the user and password in --amqp-url/);
  });

  it('never prints a password', () => {
    expect(redactUrl('amqp://me:s3cret@host:5672/vh')).toBe('amqp://me:***@host:5672/vh');
  });
});

describe("the collector's replay connection", () => {
  it('a refused login reaches the replay result as login advice, not as a broker to start', async () => {
    const broker = new ReplayBroker(brokerUrl({ password: 'wrong' }), pino({ level: 'silent' }));
    try {
      const failure = await broker
        .pass('any-queue', { wanted: () => false, found: async () => 'keep' }, { maxScan: 1, stopWhen: () => false })
        .then(
          () => undefined,
          (err: Error) => err,
        );
      expect(failure?.message).toMatch(/refused the login of user "guest" .*Check the user and password in --amqp-url/);
      expect(failure?.message).not.toMatch(START_A_BROKER);
      expect(failure?.message).not.toContain('wrong');
    } finally {
      await broker.close();
    }
  });
});
