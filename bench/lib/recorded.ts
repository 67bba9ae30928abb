/**
 * "Recorded", proven: read a hop file back the way the collector does
 * (every line through `checkHopRecord`, version 2 expanded into hops) and
 * check that every message of a benchmark run has all its hops: a round-trip
 * message its send, broker confirm (ack), receive, process (ok) and settle
 * (ack); a fire-and-forget message its send. Also how many bytes of hop
 * lines each round trip cost.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { checkHopRecord } from '../../collector/hop-schema.ts';

const SEND = 1;
const CONFIRM = 2;
const RECEIVE = 4;
const PROCESS = 8;
const SETTLE = 16;
const ROUND_TRIP = SEND | CONFIRM | RECEIVE | PROCESS | SETTLE;

export interface RecordedSide {
  /** Messages the run sent this way. */
  expected: number;
  /** Of those, messages with every hop present and as expected. */
  complete: number;
  /** Bytes of hop lines (newline included) about these messages. */
  bytes: number;
}

export interface Recorded {
  lines: number;
  /** Lines the collector's parser refuses. */
  invalid: number;
  /** Why the first refused line was refused. */
  firstInvalid?: string;
  roundtrip: RecordedSide;
  publish: RecordedSide;
}

/**
 * @param queues the run's queues: round trip and fire-and-forget (a message is told by its routing key / queue)
 * @param expected how many messages the run sent each way
 */
export async function checkRecorded(
  file: string,
  queues: { roundtrip: string; publish: string },
  expected: { roundtrip: number; publish: number },
): Promise<Recorded> {
  const seen = new Map<string, number>();
  const which = new Map<string, 'roundtrip' | 'publish'>();
  const out: Recorded = {
    lines: 0,
    invalid: 0,
    roundtrip: { expected: expected.roundtrip, complete: 0, bytes: 0 },
    publish: { expected: expected.publish, complete: 0, bytes: 0 },
  };
  const lines = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
  for await (const line of lines) {
    if (line === '') continue;
    out.lines++;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      out.invalid++;
      out.firstInvalid ??= 'not JSON';
      continue;
    }
    const r = checkHopRecord(value);
    if (!r.ok) {
      out.invalid++;
      out.firstInvalid ??= `${r.field} ${r.reason}`;
      continue;
    }
    let side: 'roundtrip' | 'publish' | undefined;
    for (const hop of r.hops) {
      const where = hop.queue ?? hop.routingKey;
      side = where === queues.roundtrip ? 'roundtrip' : where === queues.publish ? 'publish' : side;
      let bit = 0;
      if (hop.kind === 'send') bit = SEND;
      else if (hop.kind === 'confirm' && hop.outcome === 'ack') bit = CONFIRM;
      else if (hop.kind === 'receive') bit = RECEIVE;
      else if (hop.kind === 'process' && hop.outcome === 'ok') bit = PROCESS;
      else if (hop.kind === 'settle' && hop.outcome === 'ack') bit = SETTLE;
      seen.set(hop.messageId, (seen.get(hop.messageId) ?? 0) | bit);
      if (side !== undefined) which.set(hop.messageId, side);
    }
    if (side !== undefined) out[side].bytes += Buffer.byteLength(line) + 1;
  }
  for (const [id, bits] of seen) {
    const side = which.get(id);
    if (side === 'roundtrip' && bits === ROUND_TRIP) out.roundtrip.complete++;
    else if (side === 'publish' && (bits & SEND) !== 0) out.publish.complete++;
  }
  return out;
}

/** True when every message of the run has all its hops and every line parses. */
export function fullyRecorded(r: Recorded): boolean {
  return r.invalid === 0 && r.roundtrip.complete === r.roundtrip.expected && r.publish.complete === r.publish.expected;
}
