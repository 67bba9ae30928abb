/**
 * A collector's one long-lived PostgreSQL session, outside the pool, for
 * what lasts as long as the process does:
 *
 * - `LISTEN hoptrace_chains`: chain changes any collector's flush or sweep
 *   announced (`pg-summaries.ts`), so `/api/live` on this collector hears
 *   them too;
 * - the sweep lock (`LOCK.sweep`, a session advisory lock): the collector
 *   holding it runs the lost/stuck sweep and retention. When its process
 *   dies, PostgreSQL ends the session and frees the lock; the next collector
 *   to ask takes over.
 *
 * A lost connection is opened again (the lock is asked for anew then).
 */
import pg from 'pg';
import { clientConfig, LOCK, lockArgs, lockCall, type PgTarget } from './pg-db.ts';
import { NOTIFY_CHANNEL, type ChainNotice } from './pg-summaries.ts';

const RECONNECT_MS = 1_000;

export class PgCoordinator {
  readonly #target: PgTarget;
  readonly #applicationName: string;
  readonly #onNotice: (notice: ChainNotice) => void;
  #client: pg.Client | undefined;
  #connecting: Promise<pg.Client | undefined> | undefined;
  #sweeper = false;
  #closed = false;
  #retry: NodeJS.Timeout | undefined;

  constructor(target: PgTarget, applicationName: string, onNotice: (notice: ChainNotice) => void) {
    this.#target = target;
    this.#applicationName = applicationName;
    this.#onNotice = onNotice;
  }

  /** Whether this collector holds the sweep lock (and runs the sweep and retention). */
  get sweeper(): boolean {
    return this.#sweeper;
  }

  /** Open the session and listen; throws when PostgreSQL cannot be reached. */
  async start(): Promise<void> {
    const client = await this.#connect();
    if (!client) throw new Error('the store is closed');
  }

  #connect(): Promise<pg.Client | undefined> {
    if (this.#client) return Promise.resolve(this.#client);
    this.#connecting ??= (async () => {
      if (this.#closed) return undefined;
      const client = new pg.Client(clientConfig(this.#target, `${this.#applicationName} coordinator`));
      client.on('notification', (msg) => {
        if (msg.channel !== NOTIFY_CHANNEL || !msg.payload) return;
        try {
          this.#onNotice(JSON.parse(msg.payload) as ChainNotice);
        } catch {
          // not ours
        }
      });
      const lost = () => {
        if (this.#client !== client) return;
        this.#client = undefined;
        this.#sweeper = false;
        if (!this.#closed) {
          this.#retry = setTimeout(() => void this.#connect().catch(() => {}), RECONNECT_MS);
          this.#retry.unref();
        }
      };
      client.on('error', lost);
      client.on('end', lost);
      try {
        await client.connect();
        await client.query(`LISTEN ${NOTIFY_CHANNEL}`);
      } catch (err) {
        client.end().catch(() => {});
        throw err;
      }
      if (this.#closed) {
        await client.end().catch(() => {});
        return undefined;
      }
      this.#client = client;
      return client;
    })().finally(() => {
      this.#connecting = undefined;
    });
    return this.#connecting;
  }

  /**
   * Hold the sweep lock, or take it when its holder is gone.
   * @returns whether this collector runs the sweep now
   */
  async claimSweep(): Promise<boolean> {
    if (this.#sweeper) return true;
    let client: pg.Client | undefined;
    try {
      client = await this.#connect();
    } catch {
      return false;
    }
    if (!client) return false;
    const { rows } = await client.query<{ ok: boolean }>(`SELECT ${lockCall('pg_try_advisory_lock', 1)} AS ok`, lockArgs(LOCK.sweep, this.#target.schema));
    this.#sweeper = rows[0].ok;
    return this.#sweeper;
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#retry) clearTimeout(this.#retry);
    await this.#connecting?.catch(() => undefined);
    const client = this.#client;
    this.#client = undefined;
    this.#sweeper = false;
    // Ending the session frees the sweep lock and the LISTEN.
    if (client) await client.end().catch(() => {});
  }
}
