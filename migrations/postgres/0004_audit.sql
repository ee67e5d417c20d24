-- The audit log (migrations/sqlite_audit 0001). SQLite keeps it in a database file of its own
-- for its write lock; PostgreSQL locks rows, so it lives beside the other tables. One row per
-- record, hash-chained by seq (see src/domain/audit.rs). The columns are the record's fields;
-- its hash covers them all, so editing any column of a row breaks the chain at that row.
-- `messages` is the JSON text the record was written with, byte for byte.
CREATE TABLE audit_records (
    seq         BIGINT PRIMARY KEY,
    time_ms     BIGINT NOT NULL,
    request_id  TEXT   NOT NULL,
    door        TEXT   NOT NULL,
    stage       TEXT   NOT NULL,
    principal   TEXT,
    auth_error  TEXT,
    source      TEXT,
    action      TEXT   NOT NULL,
    target      TEXT,
    decision    TEXT,
    code        TEXT,
    messages    TEXT   NOT NULL,
    status      BIGINT,
    duration_us BIGINT,
    prev        TEXT   NOT NULL,
    hash        TEXT   NOT NULL,
    signature   TEXT
);
CREATE INDEX audit_records_time ON audit_records (time_ms);
CREATE INDEX audit_records_principal ON audit_records (principal, seq);
CREATE INDEX audit_records_target ON audit_records (target, seq);

-- Where retention last cut the log (one row): the last purged record's seq and hash, signed.
CREATE TABLE audit_checkpoint (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    through_seq BIGINT NOT NULL,
    hash        TEXT   NOT NULL,
    at_ms       BIGINT NOT NULL,
    signature   TEXT   NOT NULL
);
