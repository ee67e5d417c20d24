-- vcm state, SQLite flavour. Times are INTEGER milliseconds since the Unix epoch, durations
-- INTEGER seconds, labels a JSON object in TEXT. STRICT tables make SQLite refuse a value of the
-- wrong type instead of storing it silently.

CREATE TABLE clusters (
    id                 TEXT    NOT NULL PRIMARY KEY,
    name               TEXT    NOT NULL,
    owner              TEXT    NOT NULL,
    team               TEXT,
    phase              TEXT    NOT NULL
        CHECK (phase IN ('Pending', 'Provisioning', 'Ready', 'Deleting', 'Deleted', 'Failed')),
    message            TEXT    NOT NULL,
    size               TEXT    NOT NULL,
    kubernetes_version TEXT    NOT NULL,
    ttl_secs           INTEGER NOT NULL,
    idle_timeout_secs  INTEGER,
    host               TEXT    NOT NULL,
    labels             TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(labels)),
    created_ms         INTEGER NOT NULL,
    ready_ms           INTEGER,
    expires_ms         INTEGER NOT NULL,
    last_activity_ms   INTEGER NOT NULL,
    deleted_ms         INTEGER,
    endpoint           TEXT,
    delete_reason      TEXT,
    attempts           INTEGER NOT NULL DEFAULT 0,
    next_reconcile_ms  INTEGER NOT NULL,
    cleaned_up         INTEGER NOT NULL DEFAULT 0 CHECK (cleaned_up IN (0, 1)),
    version            INTEGER NOT NULL
) STRICT;

-- A name belongs to at most one live cluster. The database enforces it, so two concurrent
-- creates with the same name cannot both succeed; a Deleted cluster gives its name back.
CREATE UNIQUE INDEX clusters_live_name ON clusters (name) WHERE phase <> 'Deleted';
-- Listing order and keyset pagination.
CREATE INDEX clusters_created ON clusters (created_ms, id);
-- The reconciler's work queue.
CREATE INDEX clusters_next_reconcile ON clusters (next_reconcile_ms);

CREATE TABLE cluster_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    cluster_id TEXT    NOT NULL REFERENCES clusters (id) ON DELETE CASCADE,
    at_ms      INTEGER NOT NULL,
    kind       TEXT    NOT NULL,
    from_phase TEXT,
    to_phase   TEXT,
    reason     TEXT,
    message    TEXT    NOT NULL
) STRICT;

CREATE INDEX cluster_events_cluster ON cluster_events (cluster_id, id);

CREATE TABLE idempotency_keys (
    principal    TEXT    NOT NULL,
    key          TEXT    NOT NULL,
    request_hash TEXT    NOT NULL,
    cluster_id   TEXT    NOT NULL REFERENCES clusters (id) ON DELETE CASCADE,
    created_ms   INTEGER NOT NULL,
    PRIMARY KEY (principal, key)
) STRICT;

CREATE INDEX idempotency_keys_cluster ON idempotency_keys (cluster_id);

CREATE TABLE api_tokens (
    id         TEXT    NOT NULL PRIMARY KEY,
    name       TEXT    NOT NULL,
    hash       TEXT    NOT NULL UNIQUE,
    role       TEXT    NOT NULL,
    team       TEXT,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER,
    revoked_ms INTEGER
) STRICT;

CREATE INDEX api_tokens_created ON api_tokens (created_ms);
