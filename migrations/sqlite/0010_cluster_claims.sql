-- Reconcile claims (as migrations/postgres/0005): one process owns an SQLite store, so a
-- claim never meets another holder's there, but the contract and its code path are the same.
CREATE TABLE cluster_claims (
    cluster_id TEXT    PRIMARY KEY,
    holder     TEXT    NOT NULL,
    until_ms   INTEGER NOT NULL
);
