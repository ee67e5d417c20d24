-- vcm state, PostgreSQL flavour: the schema of migrations/sqlite 0001-0004, 0007 and 0008 in
-- one step. Times are BIGINT milliseconds since the Unix epoch and durations BIGINT seconds, as
-- in SQLite (the Rust side reads every integer as an i64); labels are JSONB, so label selectors
-- are a containment test a GIN index answers. Ids and owners compare bytewise (COLLATE "C"),
-- whatever the database's collation: listing pages are keyset pages on (created_ms, id), and
-- must sort as SQLite and the Rust side do.

CREATE TABLE clusters (
    id                 TEXT COLLATE "C" NOT NULL,
    name               TEXT    NOT NULL,
    owner              TEXT COLLATE "C" NOT NULL,
    team               TEXT,
    phase              TEXT    NOT NULL
        CHECK (phase IN ('Pending', 'Provisioning', 'Ready', 'Deleting', 'Deleted', 'Failed')),
    message            TEXT    NOT NULL,
    size               TEXT    NOT NULL,
    kubernetes_version TEXT    NOT NULL,
    ttl_secs           BIGINT  NOT NULL,
    idle_timeout_secs  BIGINT,
    host               TEXT    NOT NULL,
    labels             JSONB   NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(labels) = 'object'),
    created_ms         BIGINT  NOT NULL,
    ready_ms           BIGINT,
    expires_ms         BIGINT  NOT NULL,
    last_activity_ms   BIGINT  NOT NULL,
    deleted_ms         BIGINT,
    endpoint           TEXT,
    delete_reason      TEXT,
    attempts           BIGINT  NOT NULL DEFAULT 0,
    next_reconcile_ms  BIGINT  NOT NULL,
    cleaned_up         BOOLEAN NOT NULL DEFAULT FALSE,
    version            BIGINT  NOT NULL,
    -- The id of the request that last said what the cluster should be (migrations/sqlite 0008).
    request_id         TEXT,
    CONSTRAINT clusters_pkey PRIMARY KEY (id)
);

-- A name belongs to at most one live cluster. The database enforces it, so two concurrent
-- creates with the same name (from two replicas) cannot both succeed; a Deleted cluster gives
-- its name back.
CREATE UNIQUE INDEX clusters_live_name ON clusters (name) WHERE phase <> 'Deleted';
-- Listing order and keyset pagination.
CREATE INDEX clusters_created ON clusters (created_ms, id);
-- The reconciler's work queue.
CREATE INDEX clusters_next_reconcile ON clusters (next_reconcile_ms);
-- Label selectors (`labels @> '{"repo":"web"}'`).
CREATE INDEX clusters_labels ON clusters USING GIN (labels jsonb_path_ops);
-- Quotas and the policy's input count an owner's and a team's live clusters on every create.
CREATE INDEX clusters_live_owner ON clusters (owner) WHERE phase IN ('Pending', 'Provisioning', 'Ready');
CREATE INDEX clusters_live_team ON clusters (team) WHERE phase IN ('Pending', 'Provisioning', 'Ready');

CREATE TABLE cluster_events (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    cluster_id TEXT COLLATE "C" NOT NULL REFERENCES clusters (id) ON DELETE CASCADE,
    at_ms      BIGINT NOT NULL,
    kind       TEXT   NOT NULL,
    from_phase TEXT,
    to_phase   TEXT,
    reason     TEXT,
    message    TEXT   NOT NULL
);

CREATE INDEX cluster_events_cluster ON cluster_events (cluster_id, id);

CREATE TABLE idempotency_keys (
    principal    TEXT   NOT NULL,
    key          TEXT   NOT NULL,
    request_hash TEXT   NOT NULL,
    cluster_id   TEXT COLLATE "C" NOT NULL REFERENCES clusters (id) ON DELETE CASCADE,
    created_ms   BIGINT NOT NULL,
    CONSTRAINT idempotency_keys_pkey PRIMARY KEY (principal, key)
);

CREATE INDEX idempotency_keys_cluster ON idempotency_keys (cluster_id);

CREATE TABLE api_tokens (
    id           TEXT COLLATE "C" NOT NULL,
    name         TEXT   NOT NULL,
    hash         TEXT   NOT NULL,
    role         TEXT   NOT NULL,
    team         TEXT,
    created_ms   BIGINT NOT NULL,
    expires_ms   BIGINT,
    revoked_ms   BIGINT,
    -- When the token last authenticated a request (written at most once a minute per token).
    last_used_ms BIGINT,
    CONSTRAINT api_tokens_pkey PRIMARY KEY (id),
    CONSTRAINT api_tokens_hash_key UNIQUE (hash)
);

CREATE INDEX api_tokens_created ON api_tokens (created_ms);

-- This store's installation id: generated once, here, and the same for every vcm replica that
-- shares the store. Host namespaces carry it (label vcm.dev/installation), so the orphan sweeper
-- of one installation never deletes another's. 16 hex digits of a random UUID's MD5.
CREATE TABLE installation (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    id TEXT NOT NULL
);
INSERT INTO installation (singleton, id) VALUES (1, left(md5(gen_random_uuid()::text), 16));

-- Gateway credentials: the bearer tokens of kubeconfigs that point at the cluster gateway. Only
-- the SHA-256 of the secret is kept. Each opens one cluster for one principal until it expires
-- or is revoked; they go with their cluster when its record is purged. A CI job's credential
-- keeps the repository grant its principal had (`repo` or `repo-id` and the value).
CREATE TABLE gateway_credentials (
    id          TEXT COLLATE "C" NOT NULL,
    hash        TEXT   NOT NULL,
    cluster_id  TEXT COLLATE "C" NOT NULL,
    subject     TEXT   NOT NULL,
    display     TEXT   NOT NULL,
    role        TEXT   NOT NULL,
    team        TEXT,
    grant_label TEXT,
    grant_value TEXT,
    created_ms  BIGINT NOT NULL,
    expires_ms  BIGINT NOT NULL,
    revoked_ms  BIGINT,
    CONSTRAINT gateway_credentials_pkey PRIMARY KEY (id),
    CONSTRAINT gateway_credentials_hash_key UNIQUE (hash)
);
CREATE INDEX gateway_credentials_cluster ON gateway_credentials (cluster_id);
