/**
 * `GET /api/live`: server-sent events of new and changed chains
 * (`event: chain`, data {@link LiveChainEvent}), with heartbeat comments so
 * proxies keep the connection open, and cleanup when the client goes away.
 *
 * Each client has a bounded buffer. While its socket takes what is written
 * (`write()` returns true) events go straight out; once it does not, events
 * wait in the client's buffer until `drain`. A client whose buffer would
 * exceed `maxBufferBytes` has fallen behind for good: it gets a final
 * `event: reload` (what it holds is stale; reload and fetch again), its
 * stream is ended and, if it still reads nothing, destroyed after a grace
 * period. A client that never reads costs the collector at most its buffer.
 */
import type { Request, Response } from 'express';
import type { LiveChainEvent } from './api-types.ts';

export interface LiveOptions {
  /** Interval of `: ping` comments. @default 15_000 */
  heartbeatMs?: number;
  /** Bytes of events one client may fall behind by before it is cut off. @default 1_048_576 (1 MiB) */
  maxBufferBytes?: number;
  /**
   * How long a cut-off client has to read its final event before its socket is destroyed. Cheap:
   * the client's buffer is already gone, only what the socket itself holds is kept meanwhile.
   * @default 15_000
   */
  cutGraceMs?: number;
  /** Called once for each client cut off for falling behind (counted in /metrics). */
  onCut?: () => void;
}

/** The final event of a client that fell behind. */
export const RELOAD_EVENT = `event: reload\ndata: ${JSON.stringify({ reason: 'this client fell too far behind the live events; reload' })}\n\n`;

interface Client {
  res: Response;
  /** Events waiting for `drain`. */
  pending: string[];
  pendingBytes: number;
  /** The socket did not take the last write: hold events until it drains. */
  blocked: boolean;
}

export class LiveHub {
  readonly #clients = new Set<Client>();
  readonly #heartbeat: NodeJS.Timeout;
  readonly #maxBufferBytes: number;
  readonly #cutGraceMs: number;
  readonly #onCut: () => void;

  constructor(options: LiveOptions = {}) {
    this.#maxBufferBytes = options.maxBufferBytes ?? 1024 * 1024;
    this.#cutGraceMs = options.cutGraceMs ?? 15_000;
    this.#onCut = options.onCut ?? (() => {});
    this.#heartbeat = setInterval(() => this.#broadcast(': ping\n\n'), options.heartbeatMs ?? 15_000);
    this.#heartbeat.unref();
  }

  get clients(): number {
    return this.#clients.size;
  }

  /** Express handler: turn the response into an event stream. */
  readonly handle = (req: Request, res: Response): void => {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    const client: Client = { res, pending: [], pendingBytes: 0, blocked: false };
    this.#clients.add(client);
    const drop = () => this.#clients.delete(client);
    req.on('close', drop);
    res.on('close', drop);
    res.on('drain', () => this.#drained(client));
    this.#send(client, 'retry: 3000\n\n');
  };

  publish(events: readonly LiveChainEvent[]): void {
    if (this.#clients.size === 0) return;
    let text = '';
    for (const event of events) text += `event: chain\ndata: ${JSON.stringify(event)}\n\n`;
    if (text) this.#broadcast(text);
  }

  #broadcast(text: string): void {
    for (const client of this.#clients) this.#send(client, text);
  }

  #send(client: Client, text: string): void {
    const { res } = client;
    if (res.writableEnded || res.destroyed) {
      this.#clients.delete(client);
      return;
    }
    if (client.blocked) {
      const bytes = Buffer.byteLength(text);
      if (client.pendingBytes + bytes > this.#maxBufferBytes) {
        this.#cut(client);
        return;
      }
      client.pending.push(text);
      client.pendingBytes += bytes;
      return;
    }
    if (!res.write(text)) client.blocked = true;
  }

  #drained(client: Client): void {
    if (!this.#clients.has(client)) return;
    client.blocked = false;
    if (client.pending.length === 0) return;
    const text = client.pending.join('');
    client.pending = [];
    client.pendingBytes = 0;
    if (!client.res.write(text)) client.blocked = true;
  }

  /** Cut off a client that fell behind: a final reload event, the end of the stream, and its socket if it still does not read. */
  #cut(client: Client): void {
    this.#clients.delete(client);
    client.pending = [];
    client.pendingBytes = 0;
    this.#onCut();
    const { res } = client;
    const destroy = setTimeout(() => res.destroy(), this.#cutGraceMs);
    destroy.unref();
    res.on('close', () => clearTimeout(destroy));
    res.end(RELOAD_EVENT);
  }

  /** End every stream (on collector close). */
  close(): void {
    clearInterval(this.#heartbeat);
    for (const client of this.#clients) client.res.end();
    this.#clients.clear();
  }
}
