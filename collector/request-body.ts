/**
 * Reading and parsing ingest request bodies: size-limited, gunzipped with a
 * limit on the decompressed size (a gzip bomb is a 413, not an outage), and
 * parsed as NDJSON or JSON with errors that name the line.
 */
import type { IncomingMessage } from 'node:http';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import { ErrorCodes, ValidationError } from './errors.ts';

const gunzipAsync = promisify(gunzip);

/** Media types of `POST /v1/hops`. */
export const NDJSON_TYPES: readonly string[] = ['application/x-ndjson', 'application/ndjson', 'application/jsonl', 'application/x-jsonlines'];
export const JSON_TYPE = 'application/json';

/** The request's media type, lower-cased, without parameters (`''` when absent). */
export function mediaType(req: IncomingMessage): string {
  const header = req.headers['content-type'] ?? '';
  return header.split(';', 1)[0].trim().toLowerCase();
}

function tooLarge(maxBytes: number, what: string): ValidationError {
  return new ValidationError(
    ErrorCodes.PAYLOAD_TOO_LARGE,
    `${what} is larger than the limit of ${maxBytes} bytes; send smaller batches`,
    { statusCode: 413 },
  );
}

/** Check `Content-Type` against the route's list. @throws ValidationError 415 */
export function requireMediaType(req: IncomingMessage, accepted: readonly string[]): string {
  const type = mediaType(req);
  if (!accepted.includes(type)) {
    throw new ValidationError(
      ErrorCodes.UNSUPPORTED_MEDIA_TYPE,
      `Content-Type ${type ? `"${type}"` : '(none)'} is not accepted here; use one of ${accepted.join(', ')}`,
      { statusCode: 415 },
    );
  }
  return type;
}

/**
 * The whole request body, decompressed when `Content-Encoding: gzip`.
 * @throws ValidationError 413 when the body (compressed or decompressed) exceeds `maxBytes`,
 *   415 for an unsupported content encoding, 400 for a corrupt gzip stream
 */
export async function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const encoding = (req.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
  if (encoding !== 'identity' && encoding !== 'gzip' && encoding !== 'x-gzip') {
    throw new ValidationError(
      ErrorCodes.UNSUPPORTED_MEDIA_TYPE,
      `Content-Encoding "${encoding}" is not supported; send gzip or no encoding`,
      { statusCode: 415 },
    );
  }
  const declared = Number(req.headers['content-length']);
  // Node discards the unread rest of a request once its response is sent.
  if (Number.isFinite(declared) && declared > maxBytes) throw tooLarge(maxBytes, 'the request body');

  const raw = await new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        cleanup();
        reject(tooLarge(maxBytes, 'the request body'));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(Buffer.concat(chunks, size));
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });

  if (encoding === 'identity') return raw;
  try {
    return await gunzipAsync(raw, { maxOutputLength: maxBytes });
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE' || cause instanceof RangeError) {
      throw tooLarge(maxBytes, 'the decompressed request body');
    }
    throw new ValidationError(ErrorCodes.INVALID_BODY, `the gzip body cannot be decompressed: ${(cause as Error).message}`, {
      cause,
    });
  }
}

/** Line (1-based) of a character offset. */
function lineOf(text: string, offset: number): number {
  let line = 1;
  for (let i = text.indexOf('\n'); i !== -1 && i < offset; i = text.indexOf('\n', i + 1)) line++;
  return line;
}

const isBlank = (s: string): boolean => s.trim().length === 0;

function parseLine(source: string, line: number): unknown {
  try {
    return JSON.parse(source);
  } catch (cause) {
    throw new ValidationError(ErrorCodes.INVALID_BODY, `line ${line}: not valid JSON (${(cause as Error).message})`, { cause });
  }
}

/** Parse NDJSON: one JSON value per non-blank line. @throws ValidationError 400 naming the line */
export function parseNdjson(body: string | Buffer): unknown[] {
  const values: unknown[] = [];
  let line = 0;
  if (typeof body !== 'string') {
    // Line by line from the bytes: small strings that die young, never one string of the whole body
    // (a megabyte string lives in V8's old generation until a full collection).
    let start = 0;
    while (start < body.length) {
      let end = body.indexOf(10, start);
      if (end === -1) end = body.length;
      line++;
      const source = body.toString('utf8', start, end);
      if (!isBlank(source)) values.push(parseLine(source, line));
      start = end + 1;
    }
    return values;
  }
  let start = 0;
  while (start <= body.length) {
    let end = body.indexOf('\n', start);
    if (end === -1) end = body.length;
    line++;
    const source = body.slice(start, end);
    if (!isBlank(source)) values.push(parseLine(source, line));
    start = end + 1;
  }
  return values;
}

/**
 * Parse a JSON body: an array of records, or one record.
 * @throws ValidationError 400 naming the line of a syntax error
 */
export function parseJsonRecords(text: string): unknown[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    const message = (cause as Error).message;
    const pos = /position (\d+)/.exec(message);
    const where = pos ? `line ${lineOf(text, Number(pos[1]))}: ` : '';
    throw new ValidationError(ErrorCodes.INVALID_BODY, `${where}not valid JSON (${message})`, { cause });
  }
  if (Array.isArray(value)) return value;
  if (typeof value === 'object' && value !== null) return [value];
  throw new ValidationError(ErrorCodes.INVALID_BODY, 'the JSON body must be an array of hop records or one hop record');
}
