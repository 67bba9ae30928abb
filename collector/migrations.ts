/**
 * The SQLite schema, as an append-only list of migrations. `PRAGMA
 * user_version` holds how many have been applied; each runs in its own
 * transaction. Never edit a released migration: add the next one.
 */
import type { DatabaseSync } from 'node:sqlite';

/** Delimiter of the `services` and `statuses` list columns (never inside a name). */
export const LIST_SEP = '\u001f';

export const MIGRATIONS: readonly string[] = [
  // 1: hops and chain summaries.
  `
  CREATE TABLE hops (
    id             INTEGER PRIMARY KEY,
    dedupe_key     BLOB    NOT NULL,
    correlation_id TEXT    NOT NULL,
    message_id     TEXT    NOT NULL,
    trace_id       TEXT    NOT NULL,
    service        TEXT    NOT NULL,
    kind           TEXT    NOT NULL,
    ts             REAL    NOT NULL,
    received_at    INTEGER NOT NULL,
    exchange       TEXT,
    routing_key    TEXT,
    queue          TEXT,
    json           TEXT    NOT NULL
  );
  CREATE UNIQUE INDEX hops_dedupe ON hops (dedupe_key);
  -- a chain's hops; retention deletes by chain
  CREATE INDEX hops_correlation ON hops (correlation_id, ts);
  -- GET /api/messages/:id, q= over message ids (prefix), topology lookups by message
  CREATE INDEX hops_message ON hops (message_id);
  -- q= over trace ids (prefix)
  CREATE INDEX hops_trace ON hops (trace_id);
  -- exchange= and routingKey= filters
  CREATE INDEX hops_exchange ON hops (exchange, correlation_id);
  CREATE INDEX hops_routing_key ON hops (routing_key, correlation_id);
  -- topology time window
  CREATE INDEX hops_ts ON hops (ts);

  CREATE TABLE chains (
    correlation_id TEXT    PRIMARY KEY,
    status         TEXT    NOT NULL,
    -- LIST_SEP-delimited, with a leading and trailing LIST_SEP: status and problems; services
    statuses       TEXT    NOT NULL,
    services       TEXT    NOT NULL,
    start_ts       REAL    NOT NULL,
    end_ts         REAL    NOT NULL,
    hop_count      INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    settled        INTEGER NOT NULL,
    checked_at     INTEGER NOT NULL,
    summary        TEXT    NOT NULL
  ) WITHOUT ROWID;
  -- GET /api/chains: newest first, cursor on (start_ts, correlation_id)
  CREATE INDEX chains_start ON chains (start_ts DESC, correlation_id DESC);
  -- the sweep: unsettled chains, least recently checked first
  CREATE INDEX chains_unsettled ON chains (checked_at) WHERE settled = 0;
  -- retention: least recently updated first
  CREATE INDEX chains_updated ON chains (updated_at);
  `,
  // 2: chains whose hops changed since their summary was written. Marked in the
  // ingest transaction, so a crash between a commit and the summary rebuild
  // loses nothing: the next open rebuilds them. updated_at: the last ingest.
  `
  CREATE TABLE dirty_chains (
    correlation_id TEXT    PRIMARY KEY,
    updated_at     INTEGER NOT NULL
  ) WITHOUT ROWID;
  `,
];

/** Bring a database up to the newest schema. Refuses a database newer than this code. */
export function migrate(db: DatabaseSync): void {
  const row = db.prepare('PRAGMA user_version').get() as { user_version: number };
  const current = row.user_version;
  if (current > MIGRATIONS.length) {
    throw new Error(
      `database schema version ${current} is newer than this hoptrace understands (${MIGRATIONS.length}); upgrade hoptrace`,
    );
  }
  for (let v = current; v < MIGRATIONS.length; v++) {
    db.exec('BEGIN IMMEDIATE');
    try {
      db.exec(MIGRATIONS[v]);
      db.exec(`PRAGMA user_version = ${v + 1}`);
      db.exec('COMMIT');
    } catch (err) {
      db.exec('ROLLBACK');
      throw err;
    }
  }
}
