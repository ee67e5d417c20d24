-- The audit log, in a database file of its own (`<name>-audit.db` beside the store's): its
-- writes take their own lock and leave the cluster readers' page caches alone. One row per
-- record, hash-chained by seq (see src/domain/audit.rs). The columns are the record's fields;
-- its hash covers them all, so editing any column of a row breaks the chain at that row.
CREATE TABLE audit_records (
    seq INTEGER PRIMARY KEY,
    time_ms INTEGER NOT NULL,
    request_id TEXT NOT NULL,
    door TEXT NOT NULL,
    stage TEXT NOT NULL,
    principal TEXT,
    auth_error TEXT,
    source TEXT,
    action TEXT NOT NULL,
    target TEXT,
    decision TEXT,
    code TEXT,
    messages TEXT NOT NULL,
    status INTEGER,
    duration_us INTEGER,
    prev TEXT NOT NULL,
    hash TEXT NOT NULL,
    signature TEXT
);
CREATE INDEX audit_records_time ON audit_records (time_ms);
CREATE INDEX audit_records_principal ON audit_records (principal, seq);
CREATE INDEX audit_records_target ON audit_records (target, seq);

-- Where retention last cut the log (one row): the last purged record's seq and hash, signed.
CREATE TABLE audit_checkpoint (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    through_seq INTEGER NOT NULL,
    hash TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    signature TEXT NOT NULL
);
