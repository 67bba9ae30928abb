/**
 * Failure fingerprints: what makes two problem deliveries "the same failure".
 *
 * A fingerprint is a hash of the status, the service, where it happened (the
 * queue of a consumer's delivery; the exchange and routing key of a publish)
 * and the error's type and message with its variable parts masked: quoted
 * values, UUIDs, hex ids, numbers and words with digits in them (ids). So
 * `UnknownDrinkError: "unicorn frappuccino" is not on the menu (order 1234)`
 * and the same error for another drink and order are one group,
 * `UnknownDrinkError: "…" is not on the menu (order …)`, while another error
 * type, status, service or queue is another group.
 *
 * Fingerprints are stored data (chain tags and failure buckets): a change to
 * the masking or the hash changes every group and needs a migration that
 * re-summarizes the chains with failures.
 */
import { createHash } from 'node:crypto';

/** What a fingerprint is made of. */
export interface FailureKey {
  /** The problem status of the delivery (`dead-lettered`, `failed`, …). */
  status: string;
  /** The service whose hop the failure shows at (the consumer; the publisher for a publish). */
  service: string;
  /** The queue of a consumer's delivery. */
  queue?: string;
  /** The exchange of a publish (publish-side failures: unroutable, lost before any queue). */
  exchange?: string;
  /** The routing key of a publish (publish-side failures). */
  routingKey?: string;
  /** The error's class or `name`, when there was an error. */
  errorType?: string;
  /** The error's message (or the broker's reply text), unmasked. */
  message?: string;
}

/** The masked message and the fingerprint of a {@link FailureKey}. */
export interface Fingerprinted {
  /** 16 lowercase hex characters. */
  fingerprint: string;
  /** The message with its variable parts masked (see {@link maskMessage}). */
  pattern: string;
}

/** What a masked value becomes. */
export const MASK = '…';

/** Longest message masked; the rest is cut first (a message that long varies in its tail anyway). */
const MAX_MESSAGE = 2000;

// Quoted values: "…", '…', `…`, “…”, ‘…’ (not spanning lines; an apostrophe inside a word is not a quote).
const QUOTED = /"[^"\n]*"|(?<![\p{L}\p{N}])'[^'\n]*'(?![\p{L}\p{N}])|`[^`\n]*`|“[^”\n]*”|‘[^’\n]*’/gu;
const UUID = /\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/gi;
// 0x-prefixed hex, and bare hex runs of 8 or more with at least one digit (ObjectIds, hashes, span ids).
const HEX = /\b0x[0-9a-f]+\b|\b(?=[0-9a-f]*\d)[0-9a-f]{8,}\b/gi;
// A word with a digit in it (ids like order-12-a3f9c1 or cus_8f3a9b2c, numbers, 5000ms, E11000), …
const WITH_DIGIT = /[\p{L}\p{N}_]*\p{N}[\p{L}\p{N}_]*(?:-[\p{L}\p{N}_]+)*|[\p{L}\p{N}_]+(?:-[\p{L}\p{N}_]+)+/gu;
// … except a name with a short version number (utf8, sha256, http2, ipv4, v2), which names a thing, not an instance.
const NAME_WITH_VERSION = /^[\p{L}]+\d{1,3}$/u;
// Masks joined only by separators (an IP and port, a date and time, 1,000.50) are one mask.
const RUNS = new RegExp(`${MASK}(?:[-.:/_,+T ]*${MASK})+`, 'g');

/**
 * The message with what varies between occurrences masked: quoted values
 * (keeping their quotes), UUIDs, hex ids, numbers and words with a digit in
 * them (`order-12-a3f9c1`, `5000ms`, but not a name with a short version
 * number such as `utf8` or `sha256`), each becoming `…`; masks joined only by
 * separators become one; whitespace collapsed.
 *
 * @example
 * maskMessage('"unicorn frappuccino" is not on the menu (order 0192d6f4-8b7e-7c3a-9f2e-1a2b3c4d5e6f)');
 * // '"…" is not on the menu (order …)'
 */
export function maskMessage(message: string): string {
  let s = message.length > MAX_MESSAGE ? message.slice(0, MAX_MESSAGE) : message;
  s = s.replace(QUOTED, (q) => {
    const open = q[0];
    const close = q[q.length - 1];
    return `${open}${MASK}${close}`;
  });
  // Whole words first: an id like order-g-4a1b2c3d goes as one, not as "order-g-" and a masked hex part.
  s = s.replace(WITH_DIGIT, (word) => (/\p{N}/u.test(word) && !NAME_WITH_VERSION.test(word) ? MASK : word));
  s = s.replace(UUID, MASK).replace(HEX, MASK);
  s = s.replace(RUNS, MASK);
  return s.replace(/\s+/g, ' ').trim();
}

/** Fingerprints of recent keys: one chain's failures are fingerprinted on every flush of the chain. */
const cache = new Map<string, Fingerprinted>();
const CACHE_SIZE = 5_000;

/**
 * The fingerprint of a failure.
 *
 * @example
 * failureFingerprint({ status: 'dead-lettered', service: 'barista', queue: 'coffee.orders',
 *   errorType: 'UnknownDrinkError', message: '"oat frappe" is not on the menu (order 17)' });
 * // { fingerprint: '3f9c…', pattern: '"…" is not on the menu (order …)' }
 */
export function failureFingerprint(key: FailureKey): Fingerprinted {
  const raw = [key.status, key.service, key.queue ?? '', key.exchange ?? '', key.routingKey ?? '', key.errorType ?? '', key.message ?? ''].join('\u0000');
  const hit = cache.get(raw);
  if (hit !== undefined) return hit;
  const pattern = key.message === undefined ? '' : maskMessage(key.message);
  const parts = [key.status, key.service, key.queue ?? '', key.exchange ?? '', key.routingKey ?? '', key.errorType ?? '', pattern];
  const fingerprint = createHash('sha256').update(parts.join('\u0000')).digest('hex').slice(0, 16);
  const result = { fingerprint, pattern };
  if (cache.size >= CACHE_SIZE) cache.delete(cache.keys().next().value!);
  cache.set(raw, result);
  return result;
}

/** Whether a string is a fingerprint this collector makes (for route parameters). */
export const isFingerprint = (s: string): boolean => /^[0-9a-f]{16}$/.test(s);
