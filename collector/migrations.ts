/**
 * The SQLite schema, as an append-only list of migrations. `PRAGMA
 * user_version` holds how many have been applied; each runs in its own
 * transaction. Never edit a released migration: add the next one. A
 * migration is SQL, or a function for data SQL alone cannot compute.
 */
import type { DatabaseSync } from 'node:sqlite';
import type { HopRecord } from '../src/contract/hop.ts';
import { encodeRecord, packId, type StringTable } from './record-codec.ts';
import { dedupeKey, KIND_CODE } from './record-identity.ts';
import { EdgeTally, encodeWaits, messageContributions, TOPOLOGY_HOP_COLUMNS, type TopologyHop } from './topology-buckets.ts';

/** Delimiter of the `services` and `statuses` list columns of schema versions 1 to 5 (never inside a name). */
export const LIST_SEP = '\u001f';

export type Migration = string | ((db: DatabaseSync) => void);

export const MIGRATIONS: readonly Migration[] = [
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
  // 3: what the list filters match on, one row per chain and value, in list
  // order: the filters read an index range newest first instead of testing
  // every chain's lists. Tags: 's:' service, 't:' status or problem,
  // 'x:' exchange, 'r:' routing key of any of the chain's hops (and, from
  // migration 6, 'q:' queue). It replaces
  // two per-hop indexes that cost every insert and served only those filters.
  `
  CREATE TABLE chain_tags (
    tag            TEXT NOT NULL,
    start_ts       REAL NOT NULL,
    correlation_id TEXT NOT NULL,
    PRIMARY KEY (tag, start_ts, correlation_id)
  ) WITHOUT ROWID;
  -- rewriting or deleting one chain's tags
  CREATE INDEX chain_tags_chain ON chain_tags (correlation_id);

  WITH RECURSIVE split (correlation_id, start_ts, prefix, rest, item) AS (
    SELECT correlation_id, start_ts, 's:', substr(services, 2), NULL FROM chains
    UNION ALL
    SELECT correlation_id, start_ts, 't:', substr(statuses, 2), NULL FROM chains
    UNION ALL
    SELECT correlation_id, start_ts, prefix, substr(rest, instr(rest, char(31)) + 1), substr(rest, 1, instr(rest, char(31)) - 1)
    FROM split WHERE rest <> ''
  )
  INSERT OR IGNORE INTO chain_tags (tag, start_ts, correlation_id)
  SELECT prefix || item, start_ts, correlation_id FROM split WHERE item <> '';

  INSERT OR IGNORE INTO chain_tags (tag, start_ts, correlation_id)
  SELECT 'x:' || h.exchange, c.start_ts, c.correlation_id
  FROM (SELECT DISTINCT exchange, correlation_id FROM hops WHERE exchange IS NOT NULL) h
  JOIN chains c ON c.correlation_id = h.correlation_id;

  INSERT OR IGNORE INTO chain_tags (tag, start_ts, correlation_id)
  SELECT 'r:' || h.routing_key, c.start_ts, c.correlation_id
  FROM (SELECT DISTINCT routing_key, correlation_id FROM hops WHERE routing_key IS NOT NULL) h
  JOIN chains c ON c.correlation_id = h.correlation_id;

  DROP INDEX hops_exchange;
  DROP INDEX hops_routing_key;
  `,
  // 4: topology per minute and edge (see topology-buckets.ts), filled from the stored hops.
  (db) => {
    db.exec(`
    CREATE TABLE topology_buckets (
      -- bucket start, epoch ms, a multiple of TOPOLOGY_BUCKET_MS
      bucket    INTEGER NOT NULL,
      -- node ids as in the API: service:NAME, exchange:NAME, queue:NAME
      from_node TEXT    NOT NULL,
      to_node   TEXT    NOT NULL,
      count     INTEGER NOT NULL,
      errors    INTEGER NOT NULL,
      -- queue-wait histogram (encodeWaits), on queue → service edges
      waits     TEXT,
      PRIMARY KEY (bucket, from_node, to_node)
    ) WITHOUT ROWID;
    `);
    fillTopologyBuckets(db);
  },
  // 5: a flag tag in chain_tags for the chains list's redelivered filter: any delivery was a redelivery.
  `
  INSERT OR IGNORE INTO chain_tags (tag, start_ts, correlation_id)
  SELECT 'f:redelivered', start_ts, correlation_id FROM chains WHERE json_extract(summary, '$.redelivered') = 1;
  `,
  // 6: lean records instead of JSON hops (see record-codec.ts and sqlite-commit.ts). A row is one
  // record (a version-1 hop or a version-2 record); ids UUID-packed; the dedupe key a hash of what
  // makes a record one event (record-identity.ts) instead of SHA-256 of canonical JSON; no trace-id
  // or ts index per hop (trace ids per chain in chain_traces, written with the summary). Summaries
  // follow the records through chains.flushed_id and meta 'flushed_through' instead of dirty marks.
  // Chains get an integer id that tags and trace ids refer to, instead of repeating the correlation id.
  (db) => {
    db.exec(`
    CREATE TABLE strings (
      id   INTEGER PRIMARY KEY,
      text TEXT NOT NULL
    );
    CREATE TABLE records (
      id             INTEGER PRIMARY KEY,
      -- packed ids (record-codec.ts packId): a UUID as 16 bytes, else the text
      message_id     NOT NULL,
      correlation_id NOT NULL,
      -- record-identity.ts dedupeKey
      dkey           INTEGER NOT NULL,
      -- record-identity.ts KIND_CODE
      kind           INTEGER NOT NULL,
      ts             REAL    NOT NULL,
      received_at    INTEGER NOT NULL,
      -- record-codec.ts encodeRecord
      body           BLOB    NOT NULL
    );
    -- dedupe, GET /api/messages/:id, q= over message ids, topology per message
    CREATE UNIQUE INDEX records_message ON records (message_id, dkey);
    -- a chain's records
    CREATE INDEX records_chain ON records (correlation_id);
    -- topology's partial minutes: the records that start a publish or a delivery, by time
    CREATE INDEX records_start_ts ON records (ts) WHERE kind IN (0, 3, 6, 7);

    CREATE TABLE chains_v6 (
      id             INTEGER PRIMARY KEY,
      correlation_id TEXT    NOT NULL UNIQUE,
      status         TEXT    NOT NULL,
      start_ts       REAL    NOT NULL,
      end_ts         REAL    NOT NULL,
      hop_count      INTEGER NOT NULL,
      updated_at     INTEGER NOT NULL,
      settled        INTEGER NOT NULL,
      checked_at     INTEGER NOT NULL,
      -- the largest record id this chain's summary, tags and topology contributions include
      flushed_id     INTEGER NOT NULL DEFAULT 0,
      -- ChainSummary as JSON, without the fields the columns hold (sqlite-chain-list.ts storedSummary)
      summary        TEXT    NOT NULL
    );
    INSERT INTO chains_v6 (correlation_id, status, start_ts, end_ts, hop_count, updated_at, settled, checked_at, summary)
      SELECT correlation_id, status, start_ts, end_ts, hop_count, updated_at, settled, checked_at, summary FROM chains;
    CREATE TABLE chain_tags_v6 (
      tag      TEXT    NOT NULL,
      start_ts REAL    NOT NULL,
      chain_id INTEGER NOT NULL,
      PRIMARY KEY (tag, start_ts, chain_id)
    ) WITHOUT ROWID;
    INSERT INTO chain_tags_v6 SELECT t.tag, t.start_ts, c.id FROM chain_tags t JOIN chains_v6 c ON c.correlation_id = t.correlation_id;
    -- 'q:' tags for the chains list's queue filter (the topology's queue nodes link to it)
    INSERT OR IGNORE INTO chain_tags_v6 (tag, start_ts, chain_id)
    SELECT 'q:' || h.queue, c.start_ts, c.id
    FROM (SELECT DISTINCT queue, correlation_id FROM hops WHERE queue IS NOT NULL) h
    JOIN chains_v6 c ON c.correlation_id = h.correlation_id;
    DROP TABLE chain_tags;
    DROP TABLE chains;
    ALTER TABLE chains_v6 RENAME TO chains;
    ALTER TABLE chain_tags_v6 RENAME TO chain_tags;
    -- GET /api/chains: newest first, cursor on (start_ts, id)
    CREATE INDEX chains_start ON chains (start_ts, id);
    -- the sweep: unsettled chains, least recently checked first
    CREATE INDEX chains_unsettled ON chains (checked_at) WHERE settled = 0;
    -- retention: least recently updated first
    CREATE INDEX chains_updated ON chains (updated_at);

    -- q= over trace ids: each chain's trace ids (16 bytes), written with its summary
    CREATE TABLE chain_traces (
      trace_id BLOB    NOT NULL,
      chain_id INTEGER NOT NULL,
      PRIMARY KEY (trace_id, chain_id)
    ) WITHOUT ROWID;
    CREATE TABLE meta (
      key   TEXT PRIMARY KEY,
      value
    ) WITHOUT ROWID;
    `);
    copyHopsToRecords(db);
  },
  // 7: failure groups (failure-fingerprint.ts, chain-failures.ts): each group as first seen, and its
  // problem deliveries per minute, kept like topology_buckets from the chains' summaries
  // (ChainSummary.failureTally). Chains with a problem are marked to be summarized again, which
  // adds their failures (and their 'g:' failure-group tags) as the store opens.
  `
  CREATE TABLE failure_groups (
    fingerprint       TEXT PRIMARY KEY,
    status            TEXT NOT NULL,
    service           TEXT NOT NULL,
    queue             TEXT,
    exchange          TEXT,
    routing_key       TEXT,
    error_type        TEXT,
    -- the error message with its variable parts masked
    pattern           TEXT NOT NULL,
    -- one real message of the group, as first seen
    example           TEXT,
    dead_letter_queue TEXT
  ) WITHOUT ROWID;
  CREATE TABLE failure_buckets (
    fingerprint TEXT    NOT NULL,
    -- minute start, epoch ms
    bucket      INTEGER NOT NULL,
    count       INTEGER NOT NULL,
    -- of count: not replayed since
    unresolved  INTEGER NOT NULL,
    PRIMARY KEY (fingerprint, bucket)
  ) WITHOUT ROWID;
  -- GET /api/failures: a time window
  CREATE INDEX failure_buckets_time ON failure_buckets (bucket);
  INSERT OR IGNORE INTO dirty_chains (correlation_id, updated_at)
    SELECT correlation_id, updated_at FROM chains WHERE status NOT IN ('ok', 'in-flight') OR summary LIKE '%"failure":%';
  `,
];

/** Migration 6's data: every JSON hop re-encoded as a record (same ids), each chain's trace ids, the flush marks. */
function copyHopsToRecords(db: DatabaseSync): void {
  const ids = new Map<string, number>();
  const insertString = db.prepare('INSERT INTO strings (id, text) VALUES (?, ?)');
  const strings: StringTable = {
    idOf(text) {
      let id = ids.get(text);
      if (id === undefined && text.length <= 256) {
        id = ids.size + 1;
        ids.set(text, id);
        insertString.run(id, text);
      }
      return id;
    },
    textOf() {
      throw new Error('not used while migrating');
    },
  };
  const insert = db.prepare(
    `INSERT INTO records (id, message_id, correlation_id, dkey, kind, ts, received_at, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (message_id, dkey) DO NOTHING`,
  );
  const maxIdOf = new Map<string, number>();
  let maxId = 0;
  const rows = db.prepare('SELECT id, received_at, json FROM hops ORDER BY id').iterate() as Iterable<{ id: number; received_at: number; json: string }>;
  for (const row of rows) {
    const hop = JSON.parse(row.json) as HopRecord;
    insert.run(
      row.id,
      packId(hop.messageId),
      packId(hop.correlationId),
      dedupeKey(hop),
      KIND_CODE[hop.kind],
      hop.ts,
      row.received_at,
      encodeRecord(hop as unknown as Record<string, unknown>, strings),
    );
    maxIdOf.set(hop.correlationId, row.id);
    if (row.id > maxId) maxId = row.id;
  }
  const flushed = db.prepare('UPDATE chains SET flushed_id = ? WHERE correlation_id = ?');
  for (const [correlationId, id] of maxIdOf) flushed.run(id, correlationId);
  const trace = db.prepare('INSERT OR IGNORE INTO chain_traces (trace_id, chain_id) VALUES (?, ?)');
  const chains = db.prepare('SELECT id, summary FROM chains').iterate() as Iterable<{ id: number; summary: string }>;
  for (const c of chains) {
    for (const t of (JSON.parse(c.summary) as { traceIds?: unknown[] }).traceIds ?? []) {
      if (typeof t === 'string' && /^[0-9a-f]{32}$/.test(t)) trace.run(Buffer.from(t, 'hex'), c.id);
    }
  }
  // Every record so far is in its chain's summary and topology, except the chains still marked dirty
  // (their summaries are rebuilt when the store opens; topology was kept at ingest then).
  db.prepare("INSERT INTO meta (key, value) VALUES ('flushed_through', ?)").run(maxId);
  db.exec('DROP TABLE hops');
}

/** Add every stored message's topology contributions to topology_buckets (empty before). */
function fillTopologyBuckets(db: DatabaseSync): void {
  const tally = new EdgeTally();
  let message: string | undefined;
  let hops: TopologyHop[] = [];
  const rows = db.prepare(`SELECT message_id, ${TOPOLOGY_HOP_COLUMNS} FROM hops ORDER BY message_id`).iterate() as Iterable<
    TopologyHop & { message_id: string }
  >;
  for (const row of rows) {
    if (row.message_id !== message) {
      if (hops.length > 0) tally.addContributions(messageContributions(hops), 1, true);
      message = row.message_id;
      hops = [];
    }
    hops.push(row);
  }
  if (hops.length > 0) tally.addContributions(messageContributions(hops), 1, true);
  const insert = db.prepare('INSERT INTO topology_buckets (bucket, from_node, to_node, count, errors, waits) VALUES (?, ?, ?, ?, ?, ?)');
  for (const e of tally.changed()) insert.run(e.bucket, e.from, e.to, e.count, e.errors, encodeWaits(e.waits));
}

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
      const migration = MIGRATIONS[v];
      if (typeof migration === 'string') db.exec(migration);
      else migration(db);
      db.exec(`PRAGMA user_version = ${v + 1}`);
      db.exec('COMMIT');
    } catch (err) {
      db.exec('ROLLBACK');
      throw err;
    }
  }
}
