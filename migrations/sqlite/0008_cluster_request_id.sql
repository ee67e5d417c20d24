-- The id of the request that last said what a cluster should be (its create, its deletion),
-- so the reconciler's log lines for the cluster carry it (`docs/MONITORING.md`, "Logs").
-- NULL for vcm's own decisions (TTL, idleness) and for clusters from before this column.
ALTER TABLE clusters ADD COLUMN request_id TEXT;
