/**
 * A pino log file as services write it with hoptrace: one JSON line per hop
 * (`{"level":30,"time":…,"pid":…,"hostname":…,"name":…,"hop":{…},"msg":"hop send"}`),
 * with the services' own ordinary log lines in between, which the import
 * must skip.
 */
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { HopGenerator, hopsInTimeOrder } from './hop-gen.ts';

export interface PinoLogOptions {
  path: string;
  hops: number;
  seed: number;
  startTs: number;
  chainGapMs: number;
  /** One ordinary (non-hop) line after every this many hop lines. @default 10 */
  otherLineEvery?: number;
}

/** Write the file; resolves with its size in bytes and its line count. */
export async function writePinoLog(options: PinoLogOptions): Promise<{ bytes: number; lines: number }> {
  const out = createWriteStream(options.path);
  const generator = new HopGenerator({ seed: options.seed, startTs: options.startTs, chainGapMs: options.chainGapMs });
  const every = options.otherLineEvery ?? 10;
  let bytes = 0;
  let lines = 0;
  let n = 0;
  let chunk = '';
  for (const hop of hopsInTimeOrder(generator, options.hops)) {
    const [host, pid] = hop.instance.split('/');
    chunk += `{"level":30,"time":${Math.floor(hop.ts)},"pid":${pid},"hostname":"${host}","name":"${hop.service}","hop":${JSON.stringify(hop)},"msg":"hop ${hop.kind}"}\n`;
    lines++;
    if (++n % every === 0) {
      chunk += `{"level":30,"time":${Math.floor(hop.ts)},"pid":${pid},"hostname":"${host}","name":"${hop.service}","orderId":"ord_${n}","msg":"handled request in ${n % 97} ms"}\n`;
      lines++;
    }
    if (chunk.length > 1 << 20) {
      bytes += Buffer.byteLength(chunk);
      if (!out.write(chunk)) await once(out, 'drain');
      chunk = '';
    }
  }
  bytes += Buffer.byteLength(chunk);
  out.end(chunk);
  await once(out, 'finish');
  return { bytes, lines };
}
