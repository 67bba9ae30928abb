/**
 * The real RabbitMQ for tests. A missing broker is a failure that says what
 * to do, never a skip.
 */
import { randomUUID } from 'node:crypto';
import amqp, { type ChannelModel } from 'amqplib';
import { brokerAdvice } from '../../collector/broker-advice.ts';

export const AMQP_URL = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

/** Connect to the test broker or throw an error that says how to start it. */
export async function connectBroker(): Promise<ChannelModel> {
  try {
    return await amqp.connect(AMQP_URL);
  } catch (cause) {
    throw new Error(`${brokerAdvice(AMQP_URL, cause)} Then run the tests again.`, { cause });
  }
}

/** A name no other test (or concurrent test run) uses: `prefix.<8 hex>`. */
export function uniqueName(prefix: string): string {
  return `${prefix}.${randomUUID().slice(0, 8)}`;
}

/** Resolve when `predicate()` is truthy; fail with `what` after `timeoutMs`. */
export async function waitFor<T>(
  predicate: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  what: string,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await predicate();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
