-- A non-admin caller's list (`owner = $me OR team = $mine`, in (created_ms, id) order) read
-- every cluster ever kept: the planner had no index on either column over all phases, so it
-- scanned the table and sorted (1.8 ms at 10,000 records, growing with them; found by
-- benches/store.rs). With these, it ORs two index scans over the caller's own rows.
CREATE INDEX clusters_owner_created ON clusters (owner, created_ms, id);
CREATE INDEX clusters_team_created ON clusters (team, created_ms, id);
