/**
 * `GET /api/live`: server-sent events of new and changed chains
 * (`event: chain`, data {@link LiveChainEvent}), with heartbeat comments so
 * proxies keep the connection open, and cleanup when the client goes away.
 */
import type { Request, Response } from 'express';
import type { LiveChainEvent } from './api-types.ts';

export class LiveHub {
  readonly #clients = new Set<Response>();
  readonly #heartbeat: NodeJS.Timeout;

  /** @param heartbeatMs interval of `: ping` comments */
  constructor(heartbeatMs = 15_000) {
    this.#heartbeat = setInterval(() => this.#write(': ping\n\n'), heartbeatMs);
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
    res.write('retry: 3000\n\n');
    this.#clients.add(res);
    const drop = () => this.#clients.delete(res);
    req.on('close', drop);
    res.on('close', drop);
  };

  publish(events: readonly LiveChainEvent[]): void {
    if (this.#clients.size === 0) return;
    let text = '';
    for (const event of events) text += `event: chain\ndata: ${JSON.stringify(event)}\n\n`;
    if (text) this.#write(text);
  }

  #write(text: string): void {
    for (const res of this.#clients) {
      if (res.writableEnded || res.destroyed) {
        this.#clients.delete(res);
        continue;
      }
      res.write(text);
    }
  }

  /** End every stream (on collector close). */
  close(): void {
    clearInterval(this.#heartbeat);
    for (const res of this.#clients) res.end();
    this.#clients.clear();
  }
}
